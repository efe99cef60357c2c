import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import YAML from 'yaml';

import { PolicyEngine, RegoError, RegoErrors } from './index.js';
import { compare, fromJSON, keyOf, type PlainObject, toJSON, type Value } from './value.js';

/** ConformanceCase is one entry of an OPA YAML test file. */
export interface ConformanceCase {
  id: string;
  folder: string;
  note: string;
  query: string;
  modules?: string[];
  data?: unknown;
  input?: unknown;
  input_term?: string;
  strict_error?: boolean;
  want_result?: Array<Record<string, unknown>>;
  want_error?: string;
  want_error_code?: string;
  sort_bindings?: boolean;
  ignore_generated_vars?: boolean;
}

/** CaseResult is the verdict on one case. */
export interface CaseResult {
  id: string;
  folder: string;
  note: string;
  status: 'pass' | 'fail' | 'skip';
  reason?: string;
}

/**
 * SKIPS are cases deliberately not run, each with its reason. Keep this list short: only behaviour
 * that cannot exist in Skiff's engine, never merely unimplemented features.
 */
export const SKIPS: Record<string, string> = {};

/** loadSuite reads every `<folder>/<file>.yaml` under dir. */
export function loadSuite(dir: string): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  for (const folder of readdirSync(dir).sort()) {
    const fdir = join(dir, folder);
    if (!statSync(fdir).isDirectory()) continue;
    for (const file of readdirSync(fdir).sort()) {
      if (!file.endsWith('.yaml') && !file.endsWith('.yml')) continue;
      const doc = YAML.parse(readFileSync(join(fdir, file), 'utf8'), { intAsBigInt: true }) as { cases?: Array<Record<string, unknown>> };
      (doc?.cases ?? []).forEach((c, i) => out.push({ ...(c as unknown as ConformanceCase), id: `${folder}/${file}#${i}`, folder }));
    }
  }
  return out;
}

function rowKey(row: Record<string, Value>): string {
  const o = Object.create(null) as PlainObject;
  for (const k of Object.keys(row).sort()) o[k] = row[k]!;
  return keyOf(o);
}

/** runCase evaluates one case and judges it as OPA's runner does (see the suite README). */
export function runCase(c: ConformanceCase): CaseResult {
  const base = { id: c.id, folder: c.folder, note: c.note };
  if (SKIPS[c.folder]) return { ...base, status: 'skip', reason: SKIPS[c.folder] };
  let rows: Array<Record<string, Value>> = [];
  let err: unknown;
  const collected: RegoError[] = [];
  try {
    // OPA's suite runs with its test built-ins (test.sleep) registered, as `opa test` does
    const engine = new PolicyEngine({ testBuiltins: true });
    (c.modules ?? []).forEach((m, i) => engine.addModule(`test-${i}.rego`, m));
    if (c.data !== undefined) engine.setData(c.data);
    const q = engine.prepare(c.query, { strict: !!c.strict_error, hideDeclaredVars: true });
    const run = (strict: boolean) =>
      q.eval({
        input: c.input_term === undefined && c.input !== undefined ? fromJSON(c.input) : undefined,
        inputTerm: c.input_term,
        timeoutMs: 10_000,
        print: () => {},
        builtinErrors: collected,
        strict,
      });
    try {
      rows = run(!!c.strict_error).map((r) => r.bindings);
    } catch (e) {
      // OPA reports a strict built-in error together with the results the rest of the query produced
      if (!(e instanceof RegoError) || !['eval_builtin_error', 'eval_type_error'].includes(e.code) || c.want_result === undefined) throw e;
      err = e;
      rows = run(false).map((r) => r.bindings);
    }
  } catch (e) {
    err = e;
  }
  // OPA's runner also reports built-in errors that non-strict evaluation turned into undefined
  if (err === undefined && collected.length && (c.want_error !== undefined || c.want_error_code !== undefined)) err = collected[0];
  const fail = (reason: string): CaseResult => ({ ...base, status: 'fail', reason });
  const errText = err instanceof Error ? err.message : err !== undefined ? String(err) : '';
  const errCode = err instanceof RegoErrors ? err.errors[0]?.code : err instanceof RegoError ? err.code : undefined;
  if (c.want_error !== undefined || c.want_error_code !== undefined) {
    if (err === undefined) return fail(`expected error ${c.want_error_code ?? ''} ${c.want_error ?? ''}, got none`);
    if (c.want_error !== undefined && !errText.includes(c.want_error)) return fail(`error ${JSON.stringify(errText)} does not contain ${JSON.stringify(c.want_error)}`);
    if (c.want_error_code !== undefined && errCode !== c.want_error_code) return fail(`error code ${errCode} (${errText}), want ${c.want_error_code}`);
  } else if (err !== undefined) {
    return fail(`unexpected error: ${errText}${err instanceof Error && !(err instanceof RegoError) && !(err instanceof RegoErrors) ? `\n${err.stack}` : ''}`);
  }
  if (c.want_result !== undefined) {
    const want = new Set(c.want_result.map((r) => rowKey(fromJSON(r) as Record<string, Value>)));
    const got = new Set(
      rows.map((r) => {
        const row: Record<string, Value> = {};
        for (const [k, v] of Object.entries(r)) {
          if (c.ignore_generated_vars && k.startsWith('__localq')) continue;
          let j = fromJSON(toJSON(v));
          if (c.sort_bindings && Array.isArray(j)) j = [...j].sort(compare);
          row[k] = j;
        }
        return rowKey(row);
      }),
    );
    const same = want.size === got.size && [...want].every((w) => got.has(w));
    if (!same) return fail(`results differ\n  want: ${[...want].join(' | ')}\n  got:  ${[...got].join(' | ')}`);
  }
  return { ...base, status: 'pass' };
}

/** Scoreboard sums results per folder. */
export function scoreboard(results: CaseResult[]): Array<{ folder: string; pass: number; fail: number; skip: number }> {
  const m = new Map<string, { folder: string; pass: number; fail: number; skip: number }>();
  for (const r of results) {
    let e = m.get(r.folder);
    if (!e) m.set(r.folder, (e = { folder: r.folder, pass: 0, fail: 0, skip: 0 }));
    e[r.status]++;
  }
  return [...m.values()];
}

/** missingBuiltins counts undefined-function failures by built-in name. */
export function missingBuiltins(results: CaseResult[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of results) {
    const mm = r.reason && /undefined function ([\w.]+)/.exec(r.reason);
    if (mm) m.set(mm[1]!, (m.get(mm[1]!) ?? 0) + 1);
  }
  return m;
}

