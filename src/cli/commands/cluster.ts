import type { Command } from 'commander';

import { UsageError } from '../../util/errors.js';
import { parseDurationMs } from '../../util/quantity.js';
import { addClientOptions, clientFrom } from '../common.js';

/**
 * `skiff cluster rotate-ca [--overlap DURATION]`: a new cluster CA signs from now on; the old one stays
 * in the trust bundle for the overlap, long enough for every node to renew, then leaves it.
 */
export function register(program: Command): void {
  const cluster = program.command('cluster').description('Cluster: manage the cluster a node belongs to (skiff up --cluster-init / --join)');
  addClientOptions(
    cluster
      .command('rotate-ca')
      .description('make a new cluster CA; certificates of the old one are accepted until the overlap ends (nodes pick the new bundle up without a restart; node tokens change their CA hash)')
      .option('--overlap <duration>', 'how long the old CA stays trusted, e.g. 30m, 24h (at least the nodes\' renewal time)', '24h'),
  ).action(async (opts: { overlap: string; server?: string; token?: string }) => {
    const overlapMs = parseDurationMs(opts.overlap);
    if (overlapMs === undefined) throw new UsageError(`--overlap must be a duration such as 30m or 24h, not "${opts.overlap}"`);
    const client = clientFrom(opts);
    const res = await client.request<{ retireAt: string; caHash: string }>('POST', '/cluster/v1/rotate-ca', { overlapMs: Math.round(overlapMs) });
    process.stdout.write(`cluster CA rotated; the old CA is trusted until ${res.body.retireAt}\nnew CA hash: ${res.body.caHash} (DATA_DIR/node-token on every node follows it)\n`);
  });
}
