import { readFileSync, writeFileSync } from 'node:fs';

import type { Command } from 'commander';

import { DecisionLogger, formatModule, fromJSON, readDecisions, RegoError, RegoErrors, stringifyJSON, toJSON, type TraceEvent, walkNodes } from '../../policy/index.js';
import { describeError, engineFrom, type Loaded,loadPaths } from '../../policy/loader.js';
import { UpstreamGuard } from '../../security/index.js';
import { CheckFailedError, SkiffError, UsageError } from '../../util/errors.js';

import { type BundleFlags, bundleOptions, registerBuild, withBundles } from './policy-bundle.js';
import { registerReplay } from './policy-replay.js';
import { registerVerify } from './policy-verify.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];
// the AST's back-references and compiled caches, which lead to other rules' lines
const COVERAGE_SKIP = new Set(['module', 'loc', 'target', 'fast', 'ix', 'annotations']);

function load(paths: string[]): Loaded {
  try {
    return loadPaths(paths);
  } catch (e) {
    throw new UsageError(`cannot load ${paths.join(', ')}: ${(e as Error).message}`);
  }
}

function sourcesOf(l: Loaded): Map<string, string> {
  return new Map(l.modules.map((m) => [m.file, m.text]));
}

/** VersionFlags are `opa`'s Rego version flags, which every `skiff policy` command that reads Rego takes. */
interface VersionFlags {
  v0?: boolean;
  v0Compatible?: boolean;
  v1Compatible?: boolean;
}

/**
 * regoVersion picks the Rego version for modules as `opa` 1.x does: v1 by default (and with
 * `--v1-compatible`), v0 with `--v0` or `--v0-compatible` (v0 wins when both are given, as in
 * `opa`). Per module, `import rego.v1` still makes a v0 module v1-checked.
 */
function regoVersion(opts: VersionFlags): 0 | 1 {
  return opts.v0 || opts.v0Compatible ? 0 : 1;
}

/** versionOptions adds the version flags to a command. */
function versionOptions(cmd: Command, what = 'parse modules with Rego v0 syntax (default: v1, as opa 1.x)'): Command {
  return cmd
    .option('--v0', what)
    .option('--v0-compatible', 'the same as --v0 (opa\'s name for it)')
    .option('--v1-compatible', 'parse modules with Rego v1 syntax (the default)');
}

/** lineDiff is a minimal unified-style diff (enough to review `fmt --diff`). */
function lineDiff(file: string, a: string, b: string): string {
  const x = a.split('\n');
  const y = b.split('\n');
  const out = [`--- ${file}`, `+++ ${file} (formatted)`];
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) {
    if (x[i] === y[i]) continue;
    out.push(`@@ line ${i + 1} @@`);
    if (x[i] !== undefined) out.push(`-${x[i]}`);
    if (y[i] !== undefined) out.push(`+${y[i]}`);
  }
  return out.join('\n');
}

/** register adds `skiff policy eval|test|fmt|check|decisions|verify|build`. */
export function register(program: Command): void {
  const policy = program.command('policy').description('Evaluate, test, format and check Rego policies');

  const evalCmd = policy
    .command('eval')
    .description('Evaluate a Rego query (like `opa eval`)')
    .argument('<query>', 'Rego query, e.g. data.authz.allow')
    .option('-d, --data <path>', 'policy or data file or directory (repeatable)', collect, [])
    .option('-i, --input <file>', 'input document (JSON or YAML)')
    .option('-o, --output <format>', 'json or pretty', 'json')
    .option('--strict', 'built-in errors fail the query')
    .option('--timeout <ms>', 'evaluation deadline in milliseconds')
    .option('--explain <mode>', 'print an explanation: full, notes or fails')
    .option('--fail', 'exit 1 when the result is undefined')
    .option('--decision-log <file>', 'append the decision to this NDJSON log');
  bundleOptions(versionOptions(evalCmd)).action(async (query: string, opts: VersionFlags & BundleFlags & { data: string[]; input?: string; output: string; strict?: boolean; timeout?: string; explain?: string; fail?: boolean; decisionLog?: string }) => {
    if (opts.explain && !['full', 'notes', 'fails'].includes(opts.explain)) throw new UsageError(`--explain must be full, notes or fails, not ${opts.explain}`);
    const loaded = await withBundles(load(opts.data), opts, regoVersion(opts));
    let input: unknown;
    if (opts.input) {
      try {
        input = fromJSON(JSON.parse(readFileSync(opts.input, 'utf8')));
      } catch (e) {
        throw new UsageError(`cannot read input ${opts.input}: ${(e as Error).message}`);
      }
    }
    const trace: TraceEvent[] = [];
    try {
      // like `opa eval`: http.send may reach any host (this is the user's own process, not the server)
      const engine = engineFrom(loaded, { regoVersion: regoVersion(opts) }, { upstreams: UpstreamGuard.permissive() });
      const q = engine.prepare(query, {
        strict: opts.strict,
        timeoutMs: opts.timeout ? Number(opts.timeout) : undefined,
        tracer: opts.explain ? (ev) => trace.push(ev) : undefined,
        decisionLog: opts.decisionLog ? new DecisionLogger({ path: opts.decisionLog }) : undefined,
      });
      const rows = q.eval({ input });
      const result = rows.map((r) => {
        const row: Record<string, unknown> = { expressions: r.expressions.map((e, i) => ({ value: toJSON(e.value), text: query.split(';')[i]?.trim() ?? query, location: { row: Number(e.text.split(':')[0]), col: Number(e.text.split(':')[1]) } })) };
        if (Object.keys(r.bindings).length) row.bindings = Object.fromEntries(Object.entries(r.bindings).map(([k, v]) => [k, toJSON(v)]));
        return row;
      });
      if (opts.output === 'pretty') {
        for (const r of result) process.stdout.write(stringifyJSON(r.bindings ?? (r.expressions as Array<{ value: unknown }>)[0]!.value, 2) + '\n');
        if (!result.length) process.stdout.write('undefined\n');
      } else process.stdout.write(stringifyJSON(result.length ? { result } : {}, 2) + '\n');
      if (opts.explain) {
        const lines = trace.filter((t) => opts.explain === 'full' || (opts.explain === 'fails' ? t.op === 'fail' : t.op === 'note'));
        for (const t of lines) process.stderr.write(`${t.op.padEnd(5)} ${t.loc.file ? `${t.loc.file}:${t.loc.row}:${t.loc.col}` : ''} ${t.text}`.trimEnd() + '\n');
      }
      if (opts.fail && !result.length) process.exitCode = 1;
    } catch (e) {
      if (e instanceof RegoError || e instanceof RegoErrors) throw new SkiffError('rego_error', describeError(e, sourcesOf(loaded)));
      throw e;
    }
  });

  const testCmd = policy
    .command('test')
    .description('Run Rego unit tests (rules named test_*), like `opa test`')
    .argument('[paths...]', 'files or directories with policies, tests and data')
    .option('--coverage', 'print line coverage per file')
    .option('--run <regex>', 'only tests whose name matches')
    .option('-v, --verbose', 'print every test, not only failures');
  bundleOptions(versionOptions(testCmd)).action(async (paths: string[], opts: VersionFlags & BundleFlags & { coverage?: boolean; run?: string; verbose?: boolean }) => {
    if (!paths.length && !opts.bundle?.length) throw new UsageError('give the files or directories to test, or a bundle with -b');
    const loaded = await withBundles(load(paths), opts, regoVersion(opts));
    let engine;
    try {
      // the only command with the test.* built-ins (test.sleep); policies that serve requests never see them
      engine = engineFrom(loaded, { regoVersion: regoVersion(opts) }, { testBuiltins: true, testRunner: true, upstreams: UpstreamGuard.permissive() });
      engine.compile();
    } catch (e) {
      throw new CheckFailedError(describeError(e, sourcesOf(loaded)));
    }
    const re = opts.run ? new RegExp(opts.run) : undefined;
    const tests = engine.rules().filter((r) => r.path[r.path.length - 1]!.startsWith('test_') && (!re || re.test(r.path.join('.'))));
    const covered = new Map<string, Set<number>>();
    let failed = 0;
    for (const t of tests) {
      const name = `data.${t.path.join('.')}`;
      // a renamed duplicate (`test_x#01`) is not an identifier: the query spells such segments as strings
      const query = 'data' + t.path.map((p) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`)).join('');
      const t0 = process.hrtime.bigint();
      let status: string;
      try {
        const rows = engine.prepare(query, {
          timeoutMs: 30_000,
          tracer: opts.coverage
            ? (ev) => {
                if (ev.op !== 'eval' || !ev.loc.file) return;
                let s = covered.get(ev.loc.file);
                if (!s) covered.set(ev.loc.file, (s = new Set()));
                s.add(ev.loc.row);
              }
            : undefined,
        }).eval({});
        status = rows.length && rows[0]!.expressions[0]!.value === true ? 'PASS' : 'FAIL';
      } catch (e) {
        status = `ERROR (${(e as Error).message})`;
      }
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (status !== 'PASS') failed++;
      if (status !== 'PASS' || opts.verbose) process.stdout.write(`${t.file}:${t.row}: ${name}: ${status} (${ms.toFixed(2)}ms)\n`);
    }
    if (opts.coverage) {
      process.stdout.write('\ncoverage:\n');
      for (const m of engine.modules()) {
        const rows = new Set<number>();
        walkNodes(m.rules, COVERAGE_SKIP, (o) => {
          if ('kind' in o && 'negated' in o && o.loc) rows.add((o.loc as { row: number }).row);
        });
        const hit = [...rows].filter((r) => covered.get(m.file)?.has(r));
        const miss = [...rows].filter((r) => !covered.get(m.file)?.has(r)).sort((a, b) => a - b);
        const pct = rows.size ? (100 * hit.length) / rows.size : 100;
        process.stdout.write(`  ${m.file}: ${pct.toFixed(1)}% (${hit.length}/${rows.size} lines)${miss.length ? ` not covered: ${miss.join(', ')}` : ''}\n`);
      }
    }
    process.stdout.write(`${failed ? 'FAIL' : 'PASS'}: ${tests.length - failed}/${tests.length}\n`);
    process.stdout.write(`${tests.length - failed} passed, ${failed} failed\n`);
    if (failed) process.exitCode = 1;
  });

  const fmtCmd = policy
    .command('fmt')
    .description('Format Rego files in canonical style')
    .argument('<files...>', 'Rego files or directories')
    .option('--diff', 'print what would change')
    .option('-w, --write', 'rewrite files in place')
    .option('--fail', 'exit 1 when a file is not formatted')
    .option('--v0-v1', 'parse Rego v0 and print Rego v1 syntax with import rego.v1, valid in both versions (as opa fmt --v0-v1)');
  versionOptions(fmtCmd, 'parse and print modules in Rego v0 syntax (as opa fmt --v0-compatible)').action((files: string[], opts: VersionFlags & { diff?: boolean; write?: boolean; fail?: boolean; v0V1?: boolean }) => {
    const loaded = load(files);
    let changed = 0;
    for (const m of loaded.modules) {
      let formatted: string;
      try {
        formatted = opts.v0V1 ? formatModule(m.text, m.file, 0, 'v0v1') : formatModule(m.text, m.file, regoVersion(opts));
      } catch (e) {
        throw new CheckFailedError(describeError(e, sourcesOf(loaded)));
      }
      if (formatted === m.text) continue;
      changed++;
      if (opts.write) writeFileSync(m.file, formatted);
      else if (opts.diff) process.stdout.write(lineDiff(m.file, m.text, formatted) + '\n');
      else if (loaded.modules.length === 1) process.stdout.write(formatted);
      else process.stdout.write(`${m.file}\n`);
    }
    if (opts.fail && changed) process.exitCode = 1;
  });

  const checkCmd = policy
    .command('check')
    .description('Parse and compile Rego files, reporting every error with its location')
    .argument('<paths...>', 'Rego files or directories')
    .option('--strict', 'also reject unused imports and variables, and for v0 modules the checks v1 modules always get');
  versionOptions(checkCmd).action((paths: string[], opts: VersionFlags & { strict?: boolean }) => {
    const loaded = load(paths);
    try {
      const engine = engineFrom(loaded, { regoVersion: regoVersion(opts) });
      engine.compile();
      if (opts.strict) {
        const problems = engine.strictProblems();
        if (problems.length) throw new RegoErrors(problems);
      }
    } catch (e) {
      if (e instanceof RegoError || e instanceof RegoErrors) throw new CheckFailedError(describeError(e, sourcesOf(loaded)));
      throw e;
    }
    process.stdout.write(`${loaded.modules.length} module(s) OK\n`);
  });

  policy
    .command('decisions')
    .description('List recorded policy decisions from an NDJSON decision log')
    .requiredOption('--log <file>', 'decision log file')
    .option('--id <id>', 'only this decision id')
    .option('--query <text>', 'only decisions whose query contains text')
    .option('--since <time>', 'only decisions at or after an ISO time')
    .option('--result <json>', 'only decisions with this result (JSON)')
    .option('--errors', 'only decisions that failed')
    .option('--limit <n>', 'at most the last n decisions')
    .option('-o, --output <format>', 'table or json', 'table')
    .action((opts: { log: string; id?: string; query?: string; since?: string; result?: string; errors?: boolean; limit?: string; output: string }) => {
      const since = opts.since ? new Date(opts.since) : undefined;
      if (since && Number.isNaN(since.getTime())) throw new UsageError(`--since is not a valid time: ${opts.since}`);
      const ds = readDecisions(opts.log, { id: opts.id, query: opts.query, since, result: opts.result, errorsOnly: opts.errors, limit: opts.limit ? Number(opts.limit) : undefined });
      if (opts.output === 'json') {
        process.stdout.write(JSON.stringify(ds, null, 2) + '\n');
        return;
      }
      for (const d of ds) process.stdout.write(`${d.timestamp}  ${d.decision_id}  ${d.query}  ${d.error ? `error: ${d.error}` : JSON.stringify(d.result)}  ${d.duration_us}µs\n`);
      process.stdout.write(`${ds.length} decision(s)\n`);
    });
  registerVerify(policy);
  registerBuild(policy);
  registerReplay(policy);
}
