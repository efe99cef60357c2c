import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

import type { Command } from 'commander';

import { type CaseResult,loadSuite, missingBuiltins, runCase, scoreboard } from '../../policy/conformance.js';
import { UsageError } from '../../util/errors.js';

/** register adds `skiff conformance rego --suite DIR [--filter REGEX] [--json FILE]`. */
export function register(program: Command): void {
  const conf = program.command('conformance').description('Run conformance suites against Skiff engines');
  conf
    .command('rego')
    .description("Run OPA's YAML conformance cases against Skiff's Rego engine")
    .requiredOption('--suite <dir>', 'suite directory (folders of YAML files)')
    .option('--filter <regex>', 'only cases whose id or note matches')
    .option('--json <file>', 'write every verdict as JSON')
    .option('-v, --verbose', 'print every failure reason')
    .option('--write-passing <file>', 'write the ids of passing cases (the list the test suite guards)')
    .action((opts: { suite: string; filter?: string; json?: string; verbose?: boolean; writePassing?: string }) => {
      let re: RegExp | undefined;
      try {
        re = opts.filter ? new RegExp(opts.filter) : undefined;
      } catch (e) {
        throw new UsageError(`--filter is not a valid regular expression: ${(e as Error).message}`);
      }
      let cases;
      try {
        cases = loadSuite(opts.suite);
      } catch (e) {
        throw new UsageError(`cannot read suite ${opts.suite}: ${(e as Error).message}`);
      }
      const selected = re ? cases.filter((c) => re.test(c.id) || re.test(c.note)) : cases;
      const results: CaseResult[] = selected.map(runCase);
      const out = process.stdout;
      const board = scoreboard(results);
      const w = Math.max(10, ...board.map((b) => b.folder.length));
      out.write(`${'folder'.padEnd(w)}  pass  fail  skip\n`);
      for (const b of board) out.write(`${b.folder.padEnd(w)}  ${String(b.pass).padStart(4)}  ${String(b.fail).padStart(4)}  ${String(b.skip).padStart(4)}${b.fail ? '  ✗' : ''}\n`);
      const failed = results.filter((r) => r.status === 'fail');
      const missing = missingBuiltins(results);
      if (missing.size) {
        out.write(`\nmissing built-ins: ${[...missing].sort((a, b) => b[1] - a[1]).map(([n, c]) => `${n} (${c})`).join(', ')}\n`);
      }
      if (failed.length) {
        out.write('\nfailures (reproduce with the command shown):\n');
        for (const f of failed) {
          const reason = opts.verbose ? f.reason ?? '' : (f.reason ?? '').split('\n')[0]!.slice(0, 200);
          out.write(`- ${f.id} ${JSON.stringify(f.note)}: ${reason}\n    npx tsx src/cli/main.ts conformance rego --suite ${opts.suite} --filter '^${f.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$' -v\n`);
        }
      }
      for (const s of results.filter((r) => r.status === 'skip').slice(0, 1)) out.write(`\nskipped ${s.folder}: ${s.reason}\n`);
      if (opts.json) writeFileSync(resolve(opts.json), JSON.stringify({ results }, null, 2) + '\n');
      if (opts.writePassing) {
        const head = '# OPA conformance cases (folder/file#index) that must keep passing; test/policy/conformance.test.ts guards them.\n# Regenerate: npx tsx src/cli/main.ts conformance rego --suite ../shared/conformance/opa-v1 --write-passing test/policy/conformance-passing.txt\n';
        writeFileSync(resolve(opts.writePassing), head + results.filter((r) => r.status === 'pass').map((r) => r.id).join('\n') + '\n');
      }
      const n = (s: string) => results.filter((r) => r.status === s).length;
      out.write(`${n('pass')} passed, ${n('fail')} failed, ${n('skip')} skipped\n`);
    });
}
