import type { Command } from 'commander';

import { type CaseOutcome,findSuites, formatOutcomes, runSuite } from '../../admission/index.js';
import { UsageError } from '../../util/errors.js';

/** registerVerify adds `skiff policy verify SUITE.yaml...` (Gatekeeper `gator verify` suites) under the `policy` command. */
export function registerVerify(policy: Command): void {
  policy
    .command('verify')
    .description('Run Gatekeeper gator verify suites (kind Suite); last line "N passed, M failed"')
    .argument('<suites...>', 'suite files (kind: Suite), or directories to search for them')
    .option('-v, --verbose', 'list passing and skipped cases too')
    .action((args: string[], opts: { verbose?: boolean }) => {
      const suites = findSuites(args);
      if (!suites.length) throw new UsageError(`no suites (kind: Suite) in ${args.join(', ')}`);
      const outcomes: CaseOutcome[] = [];
      for (const s of suites) {
        try {
          outcomes.push(...runSuite(s));
        } catch (e) {
          outcomes.push({ suite: s, test: '(suite)', case: '(load)', status: 'fail', error: (e as Error).message, ms: 0 });
        }
      }
      process.stdout.write(formatOutcomes(outcomes, suites, !!opts.verbose));
      if (outcomes.some((o) => o.status === 'fail')) process.exitCode = 1;
    });
}
