import type { Command } from 'commander';

import { VERSION } from '../../version.js';
import { clientFrom } from '../common.js';

/** `skiff version`: the CLI's version and, when reachable, the server's. */
export function register(program: Command): void {
  program
    .command('version')
    .description('print the client and server versions')
    .option('--server <url>', 'Skiff API server')
    .option('--token <token>', 'API bearer token (the version needs none; accepted like every client command)')
    .action(async (opts: { server?: string; token?: string }) => {
      process.stdout.write(`Client Version: ${VERSION}\n`);
      try {
        const res = await clientFrom(opts).request<{ version: string }>('GET', '/version');
        process.stdout.write(`Server Version: ${res.body.version}\n`);
      } catch {
        process.stdout.write('Server Version: (not reachable)\n');
      }
    });
}
