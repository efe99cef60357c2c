import type { Decision } from './decision-log.js';
import { toJSON, type Value } from './value.js';

/** The parts of an engine replay uses (PolicyEngine has them; declared here so this file does not import the engine's). */
interface Rows {
  expressions: Array<{ value: Value }>;
  bindings: Record<string, Value>;
}
interface Prepared {
  eval(opts: { input?: unknown }): Rows[];
}
interface Engine {
  prepare(query: string, opts: { timeoutMs?: number }): Prepared;
}

/** ReplayOutcome is what one evaluation gave: a result (undefined when the query was undefined) or an error. */
export interface ReplayOutcome {
  result?: unknown;
  error?: string;
}

/** QueryRunner evaluates one logged query against one policy set. */
export type QueryRunner = (query: string, input: unknown) => ReplayOutcome;

/** ReplayChange is one decision whose outcome the candidate would change. */
export interface ReplayChange {
  decision_id: string;
  timestamp: string;
  query: string;
  input?: unknown;
  old: ReplayOutcome;
  new: ReplayOutcome;
}

/** ReplaySummary is what `status.replay` reports. */
export interface ReplaySummary {
  /** decisions evaluated against both the live policies and the candidate */
  evaluated: number;
  /** of those, how many would come out differently */
  changed: number;
  /** logged decisions whose input was masked: replaying them would evaluate a redacted input, so they are counted, not guessed */
  notReplayable: number;
  /** the oldest decision time considered (ISO) */
  since: string;
  /** a few changed decisions, oldest first */
  examples: ReplayChange[];
  /** more matching decisions were logged than `maxDecisions`: only the most recent were replayed */
  truncated?: boolean;
}

/** ReplayOptions bound a replay. */
export interface ReplayOptions {
  since: Date;
  /** replay at most this many of the most recent decisions (default 10,000) */
  maxDecisions?: number;
  /** examples kept in the summary (default 5) */
  maxExamples?: number;
  /** only decisions carrying these labels (the decisions this policy set made) */
  labels?: Record<string, string>;
  /** called for every changed decision (the CLI prints each) */
  onChange?: (c: ReplayChange) => void;
  /** stop evaluating after this long (default 10 s); the summary then says `truncated` */
  budgetMs?: number;
}

/**
 * resultOf shapes an evaluation's rows as the decision log records them: the value of a single
 * expression without bindings, else the list of bindings, undefined when there are no rows.
 */
export function resultOf(rows: Rows[]): unknown {
  if (rows.length === 1 && rows[0]!.expressions.length === 1 && !Object.keys(rows[0]!.bindings).length) return toJSON(rows[0]!.expressions[0]!.value);
  if (!rows.length) return undefined;
  return rows.map((r) => Object.fromEntries(Object.entries(r.bindings).map(([k, v]) => [k, toJSON(v)])));
}

/** engineRunner evaluates queries on an engine, preparing each query once. A query that does not compile is an error outcome. */
export function engineRunner(engine: Engine, timeoutMs = 100): QueryRunner {
  const prepared = new Map<string, Prepared | Error>();
  return (query, input) => {
    let q = prepared.get(query);
    if (!q) {
      try {
        q = engine.prepare(query, { timeoutMs });
      } catch (e) {
        q = e as Error;
      }
      prepared.set(query, q);
    }
    if (q instanceof Error) return { error: q.message };
    try {
      const result = resultOf(q.eval({ input }));
      return result === undefined ? {} : { result };
    } catch (e) {
      return { error: (e as Error).message };
    }
  };
}

/** stable renders JSON with sorted keys, so equal results compare equal whatever their key order. */
function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return v === undefined ? 'undefined' : JSON.stringify(v);
}

const same = (a: ReplayOutcome, b: ReplayOutcome): boolean => (a.error !== undefined || b.error !== undefined ? a.error !== undefined && b.error !== undefined : stable(a.result) === stable(b.result));

const yieldNow = () => new Promise<void>((r) => setImmediate(r));

/**
 * replayDecisions re-evaluates logged decisions against the live policy set and a candidate and
 * counts those that would change. Both sides are evaluated now (not compared with the logged
 * result), so a change already made by an earlier revision is not blamed on this one. A decision
 * whose input was masked is counted as not replayable. Evaluation yields to other work every few
 * hundred decisions.
 */
export async function replayDecisions(decisions: AsyncIterable<Decision>, live: QueryRunner, candidate: QueryRunner, opts: ReplayOptions): Promise<ReplaySummary> {
  const max = opts.maxDecisions ?? 10_000;
  const labels = Object.entries(opts.labels ?? {});
  const window: Decision[] = [];
  let truncated = false;
  let seen = 0;
  for await (const d of decisions) {
    if (labels.some(([k, v]) => d.labels?.[k] !== v) || typeof d.query !== 'string') continue;
    window.push(d);
    if (window.length > max) {
      window.shift();
      truncated = true;
    }
    if (++seen % 4096 === 0) await yieldNow();
  }
  const summary: ReplaySummary = { evaluated: 0, changed: 0, notReplayable: 0, since: opts.since.toISOString(), examples: [], ...(truncated ? { truncated } : {}) };
  const stopAt = Date.now() + (opts.budgetMs ?? 10_000);
  for (const d of window) {
    if (Date.now() > stopAt) {
      summary.truncated = true;
      break;
    }
    if (d.erased?.length) {
      summary.notReplayable++;
      continue;
    }
    const before = live(d.query, d.input);
    const after = candidate(d.query, d.input);
    summary.evaluated++;
    if (!same(before, after)) {
      summary.changed++;
      const change: ReplayChange = { decision_id: d.decision_id, timestamp: d.timestamp, query: d.query, ...(d.input !== undefined ? { input: d.input } : {}), old: before, new: after };
      if (summary.examples.length < (opts.maxExamples ?? 5)) summary.examples.push(change);
      opts.onChange?.(change);
    }
    if (summary.evaluated % 256 === 0) await yieldNow();
  }
  return summary;
}
