import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One etcd member started by a test: kill it, stop and continue it, start it again on the same data. */
export interface EtcdMember {
  name: string;
  /** http(s)://127.0.0.1:PORT */
  clientUrl: string;
  /** HOST:PORT, as `--store etcd://...` lists it. */
  hostPort: string;
  proc?: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
  restart(): Promise<void>;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** `etcd://H:P,H:P,.../PREFIX` (or etcd+https://). */
  storeUrl(prefix: string): string;
  /** Waits until a member answers /health with health true (a leader exists). */
  healthy(timeoutMs?: number): Promise<void>;
  /** The index of the member that is the Raft leader now (plain-HTTP clusters), if one answers. */
  leader(): Promise<number | undefined>;
  stop(): Promise<void>;
}

export interface EtcdClusterOptions {
  size?: number;
  /** Extra flags for every member (TLS ones, for instance); with `https` clients they listen over TLS. */
  args?: string[];
  https?: boolean;
  /** How /health is asked when the clients need TLS (the test's own fetch with its certificates). */
  health?: (url: string) => Promise<boolean>;
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * startEtcdCluster starts `size` etcd members on loopback, each with its own data dir and free ports,
 * and resolves once the cluster has a leader. The test must call stop() (in afterAll).
 */
export async function startEtcdCluster(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const size = opts.size ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'skiff-etcd-cluster-'));
  const scheme = opts.https ? 'https' : 'http';
  const ports = [];
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
  const initial = ports.map((p, i) => `e${i}=http://127.0.0.1:${p.peer}`).join(',');
  const health = opts.health ?? (async (url: string) => ((await (await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })).json()) as { health?: string }).health === 'true');
  const members: EtcdMember[] = ports.map((p, i) => {
    const name = `e${i}`;
    const clientUrl = `${scheme}://127.0.0.1:${p.client}`;
    const peerUrl = `http://127.0.0.1:${p.peer}`;
    const m: EtcdMember = {
      name,
      clientUrl,
      hostPort: `127.0.0.1:${p.client}`,
      async kill(signal = 'SIGKILL') {
        const proc = m.proc;
        if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill(signal);
        if (signal === 'SIGKILL' || signal === 'SIGTERM') await exited;
      },
      async restart() {
        await m.kill();
        start();
      },
    };
    const start = () => {
      // On a restart the data dir already holds the membership: the initial-cluster flags are ignored.
      m.proc = spawn(
        'etcd',
        ['--name', name, '--data-dir', join(dir, name), '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl, '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', 'skiff-test', '--log-level', 'error', ...(opts.args ?? [])],
        { stdio: 'ignore' },
      );
    };
    start();
    return m;
  });
  const cluster: EtcdCluster = {
    members,
    storeUrl: (prefix) => `etcd${opts.https ? '+https' : ''}://${members.map((m) => m.hostPort).join(',')}${prefix}`,
    async healthy(timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        for (const m of members) {
          try {
            if (await health(m.clientUrl)) return;
          } catch {
            // not up, or no leader yet
          }
        }
        if (Date.now() > end) throw new Error('the etcd cluster did not become healthy in time');
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async leader() {
      for (const [i, m] of members.entries()) {
        try {
          const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
          const st = (await res.json()) as { header?: { member_id?: string }; leader?: string };
          if (st.leader && st.leader === st.header?.member_id) return i;
        } catch {
          // down
        }
      }
      return undefined;
    },
    async stop() {
      await Promise.all(members.map((m) => m.kill()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await cluster.healthy();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
