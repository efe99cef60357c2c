import type { Command } from 'commander';

import { checkFiles, type CheckReport,parseLevel } from '../../admission/index.js';
import { UsageError } from '../../util/errors.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** register adds `skiff admission check`: offline admission of manifests for CI pipelines. */
export function register(program: Command): void {
  const admission = program.command('admission').description('Admission control: check manifests against constraints and Pod Security');
  admission
    .command('check')
    .description('Check objects offline against Gatekeeper constraints (--policies) and Pod Security (--pss); exit 1 when any is denied')
    .requiredOption('-f, --filename <path>', 'manifest file, directory or - for stdin (repeatable)', collect, [])
    .option('--policies <path>', 'templates, constraints and inventory objects (file or directory, repeatable)', collect, [])
    .option('--pss <level[:version]>', 'enforce a Pod Security level, e.g. restricted or baseline:v1.30')
    .option('-o, --output <format>', 'text or json', 'text')
    .action((opts: { filename: string[]; policies: string[]; pss?: string; output: string }) => {
      if (!['text', 'json'].includes(opts.output)) throw new UsageError(`-o must be text or json, not ${opts.output}`);
      if (!opts.filename.length) throw new UsageError('give at least one -f FILE');
      let pss;
      try {
        pss = opts.pss ? parseLevel(opts.pss) : undefined;
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      const report: CheckReport[] = checkFiles(opts.filename, { policies: opts.policies, pss });
      if (opts.output === 'json') process.stdout.write(JSON.stringify(report.map(({ warnings: _w, ...r }) => r), null, 2) + '\n');
      else {
        for (const r of report) {
          process.stdout.write(`${r.allowed ? 'ALLOWED' : 'DENIED '}  ${r.kind}/${r.name}  (${r.file})\n`);
          for (const v of r.violations) process.stdout.write(`  - ${v.policy}: ${v.message}\n`);
          for (const w of r.warnings) process.stdout.write(`  warning: ${w}\n`);
        }
        const denied = report.filter((r) => !r.allowed).length;
        process.stdout.write(`${report.length - denied} allowed, ${denied} denied\n`);
      }
      if (report.some((r) => !r.allowed)) process.exitCode = 1;
    });
}
