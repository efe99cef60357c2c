import { readFileSync } from 'node:fs';

import type { Command } from 'commander';

import { EvalPool, GatekeeperClient, type LevelVersion, loadPolicies, parseLevel, type PoolCounts,WebhookServer } from '../../admission/index.js';
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
    .option('--workers <n>', 'evaluate on N worker threads (0: on the main thread)', '0')
    .action(async (opts: { tlsCert: string; tlsKey: string; policies: string[]; listen: string; pss?: string; workers: string }) => {
      const workers = Number(opts.workers);
      if (!Number.isInteger(workers) || workers < 0 || workers > 64) throw new UsageError(`--workers must be a whole number from 0 to 64, not ${opts.workers}`);
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
      const cert = read(opts.tlsCert, '--tls-cert');
      const key = read(opts.tlsKey, '--tls-key');
      // A constraint that runs past 1 s fails (and, if it denies, refuses) rather than stalling kube-apiserver.
      const evalTimeoutMs = 1000;
      let pool: EvalPool | undefined;
      let counts: PoolCounts;
      let server: WebhookServer;
      if (workers > 0) {
        const started = await EvalPool.start({ policies: opts.policies, pss, evalTimeoutMs }, workers);
        pool = started.pool;
        counts = started.counts;
        server = new WebhookServer({ cert, key, evaluate: (body) => started.pool.evaluate(body) });
      } else {
        const client = loadPolicies(opts.policies, new GatekeeperClient({ evalTimeoutMs }));
        counts = { templates: client.allTemplates().length, constraints: client.constraints().length, inventory: client.inventory.size };
        server = new WebhookServer({ cert, key, client, pss });
      }
      const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
      let addr;
      try {
        addr = await server.listen(host, Number(m[2]));
      } catch (e) {
        await pool?.close();
        throw new UsageError(`cannot listen on ${opts.listen}: ${(e as Error).message}`);
      }
      const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      process.stdout.write(`skiff webhook ready https://${shown}:${addr.port} templates=${counts.templates} constraints=${counts.constraints} inventory=${counts.inventory}${pool ? ` workers=${workers}` : ''}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void server
            .close()
            .then(() => pool?.close())
            .then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
