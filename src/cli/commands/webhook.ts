import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { GatekeeperClient, loadPolicies, parseLevel, WebhookServer, type LevelVersion } from '../../admission/index.js';
import { UsageError } from '../../util/errors.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** register adds `skiff webhook`: a Kubernetes validating admission webhook over HTTPS. */
export function register(program: Command): void {
  program
    .command('webhook')
    .description('Serve admission.k8s.io/v1 AdmissionReview over HTTPS for a Kubernetes API server')
    .requiredOption('--tls-cert <file>', 'PEM certificate (chain) the API server will verify')
    .requiredOption('--tls-key <file>', 'PEM private key of the certificate')
    .option('--policies <dir>', 'templates, constraints and synced objects (inventory), file or directory (repeatable)', collect, [])
    .option('--listen <host:port>', 'address to listen on', '0.0.0.0:8443')
    .option('--pss <level[:version]>', 'enforce one Pod Security level for every pod (default: namespace labels decide)')
    .action(async (opts: { tlsCert: string; tlsKey: string; policies: string[]; listen: string; pss?: string }) => {
      const m = /^(.*):(\d+)$/.exec(opts.listen);
      if (!m) throw new UsageError(`--listen must be HOST:PORT, not ${opts.listen}`);
      const read = (f: string, what: string) => {
        try {
          return readFileSync(f);
        } catch (e) {
          throw new UsageError(`cannot read ${what} ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      };
      let pss: LevelVersion | undefined;
      try {
        pss = opts.pss ? parseLevel(opts.pss) : undefined;
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      const client = opts.policies.length ? loadPolicies(opts.policies) : new GatekeeperClient();
      const server = new WebhookServer({ cert: read(opts.tlsCert, '--tls-cert'), key: read(opts.tlsKey, '--tls-key'), client, pss });
      const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
      const addr = await server.listen(host, Number(m[2]));
      const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      process.stdout.write(`skiff webhook ready https://${shown}:${addr.port} templates=${client.allTemplates().length} constraints=${client.constraints().length} inventory=${client.inventory.size}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void server.close().then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
