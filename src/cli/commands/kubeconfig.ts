import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import type { Command } from 'commander';

import { CheckFailedError } from '../../util/errors.js';

/** `skiff kubeconfig`: prints the kubeconfig `skiff up` wrote, for kubectl and client libraries. */
export function register(program: Command): void {
  program
    .command('kubeconfig')
    .description('print the kubeconfig skiff up wrote to DATA_DIR/kubeconfig (use: skiff kubeconfig > ~/.kube/skiff.yaml)')
    .option('--data-dir <dir>', 'the data directory of the running skiff up (default: $SKIFF_DATA_DIR, else ./.skiff)')
    .action((opts: { dataDir?: string }) => {
      const dir = resolve(opts.dataDir ?? process.env.SKIFF_DATA_DIR ?? '.skiff');
      const path = join(dir, 'kubeconfig');
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new CheckFailedError(
          code === 'ENOENT'
            ? `no kubeconfig at ${path}: start skiff up with that data directory first, or point --data-dir / SKIFF_DATA_DIR at the one it uses`
            : `cannot read ${path} (${code ?? (err as Error).message})`,
        );
      }
      process.stdout.write(text);
    });
}
