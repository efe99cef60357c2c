import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BIN, REPO } from './skiff-process.js';

/**
 * A cluster on loopback for the chaos tests and the cluster bench: N etcd members forming one etcd
 * cluster and M `skiff up` nodes sharing it. Every process is started by this module, every wait is
 * bounded, and `close()` kills everything (SIGCONT first, so a stopped process can die).
 */

/**
 * Every child this module started and not yet reaped. If the test process exits without `close()`
 * (a worker torn down after a hook timed out), they are killed on its way out rather than orphaned.
 */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const ch of children) {
    try {
      ch.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});
function track(ch: ChildProcess): ChildProcess {
  children.add(ch);
  ch.once('exit', () => children.delete(ch));
  return ch;
}

/** freePort asks the kernel for a free loopback port (released at once; taken again by the child). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** sleep for tests that must let time pass (a lease expiring); everything else polls with waitFor. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** waitFor polls `cond` until it returns a truthy value, or throws after `timeoutMs` naming `what`. */
type Falsy = undefined | null | false | 0 | '';
export async function waitFor<T>(cond: () => Promise<T | Falsy> | T | Falsy, what: string, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

/** A fetch that cannot hang: a paused node or a store without quorum must not stall a test past its budget. */
export async function boundedFetch(url: string, init: RequestInit = {}, timeoutMs = 10_000): Promise<Response> {
  return fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(timeoutMs) });
}

export class EtcdMember {
  proc?: ChildProcess;
  private exited?: Promise<void>;
  constructor(
    readonly name: string,
    readonly clientUrl: string,
    readonly peerUrl: string,
    readonly dataDir: string,
    private readonly initialCluster: string,
    private readonly clusterToken: string,
  ) {}

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** start runs the member (again, on the same data dir and ports: a restart rejoins with its old identity). */
  start(): void {
    if (this.running) return;
    // Short heartbeat and election timeout: a lost member's leadership moves in well under a second.
    const args = ['--name', this.name, '--data-dir', this.dataDir, '--listen-client-urls', this.clientUrl, '--advertise-client-urls', this.clientUrl, '--listen-peer-urls', this.peerUrl, '--initial-advertise-peer-urls', this.peerUrl, '--initial-cluster', this.initialCluster, '--initial-cluster-token', this.clusterToken, '--initial-cluster-state', 'new', '--heartbeat-interval', '50', '--election-timeout', '500', '--log-level', 'error', '--logger', 'zap'];
    const proc = track(spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] }));
    let err = '';
    proc.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
    this.proc = proc;
    this.exited = new Promise((r) => proc.once('exit', () => r()));
    this.stderr = () => err;
  }

  stderr: () => string = () => '';

  /** kill -9 the member and wait until it is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.proc!.kill('SIGKILL');
    await this.exited;
  }

  /** status is the member's own view: its id and the raft leader's id (undefined when it does not answer). */
  async status(): Promise<{ memberId: string; leader: string } | undefined> {
    try {
      const r = await boundedFetch(`${this.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}' }, 2000);
      const j = (await r.json()) as { header?: { member_id?: string }; leader?: string };
      return j.header?.member_id && j.leader ? { memberId: j.header.member_id, leader: j.leader } : undefined;
    } catch {
      return undefined;
    }
  }

  async healthy(): Promise<boolean> {
    try {
      const r = await boundedFetch(`${this.clientUrl}/health`, {}, 2000);
      return r.ok && ((await r.json()) as { health?: string }).health === 'true';
    } catch {
      return false;
    }
  }
}

export interface NodeOptions {
  /** More `skiff up` flags for this node (leader election settings, ...). */
  args?: string[];
  env?: Record<string, string>;
}

export class SkiffNode {
  proc?: ChildProcess;
  api = '';
  gateway = '';
  readyLine = '';
  token = '';
  private err = '';
  private exited?: Promise<number | null>;
  private paused = false;
  constructor(
    readonly cluster: Cluster,
    readonly index: number,
    readonly name: string,
    readonly dataDir: string,
    readonly opts: NodeOptions,
  ) {}

  get pid(): number {
    return this.proc!.pid!;
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  stderr(): string {
    return this.err;
  }

  /**
   * start runs `skiff up` and resolves at the readiness line. A restart reuses the data dir, so the node
   * keeps its name, token and certificates; its ports are new (port 0).
   */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.running) return;
    const extra = joinArgs(this.cluster, this);
    const args = [BIN, 'up', '--store', this.cluster.storeUrl, '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0', '--node-name', this.name, '--data-dir', this.dataDir, ...extra, ...(this.opts.args ?? [])];
    const proc = track(spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SKIFF_LOG_LEVEL: 'info', ...(this.opts.env ?? {}) } }));
    this.proc = proc;
    this.paused = false;
    this.err = '';
    proc.stderr!.on('data', (d) => (this.err = (this.err + d).slice(-200_000)));
    this.exited = new Promise((r) => proc.once('exit', (code) => r(code)));
    this.readyLine = await new Promise<string>((resolveReady, reject) => {
      let out = '';
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`${this.name} did not become ready in ${timeoutMs} ms; stderr:\n${this.err.slice(-4000)}`));
      }, timeoutMs);
      proc.stdout!.on('data', (d) => {
        out += d;
        const line = out.split('\n').find((l) => l.startsWith('skiff ready '));
        if (line) {
          clearTimeout(timer);
          resolveReady(line);
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited with ${code} before ready; stderr:\n${this.err.slice(-4000)}`));
      });
    });
    this.api = /api=(\S+)/.exec(this.readyLine)![1]!;
    this.gateway = /gateway=(\S+)/.exec(this.readyLine)![1]!;
    this.token = readFileSync(join(this.dataDir, 'token'), 'utf8').trim();
  }

  /** kill -9: no shutdown, no lease hand-over. */
  async kill(): Promise<void> {
    if (!this.running) return;
    if (this.paused) this.proc!.kill('SIGCONT');
    this.proc!.kill('SIGKILL');
    await this.exited;
  }

  /** stop shuts the node down the ordinary way (SIGTERM), bounded: SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.running) return;
    if (this.paused) this.resume();
    this.proc!.kill('SIGTERM');
    const t = setTimeout(() => this.proc?.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  pause(): void {
    this.proc!.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    this.proc!.kill('SIGCONT');
    this.paused = false;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** fetch calls this node's API with the cluster's token (bounded in time). */
  fetch(path: string, init: RequestInit = {}, timeoutMs = 10_000): Promise<Response> {
    const headers = new Headers(init.headers);
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${this.token}`);
    if (init.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
    return boundedFetch(this.api + path, { ...init, headers }, timeoutMs);
  }

  /** getJson GETs a path and returns the status and parsed body (undefined when not JSON). */
  async getJson<T = Record<string, unknown>>(path: string, timeoutMs = 10_000): Promise<{ status: number; body: T }> {
    const r = await this.fetch(path, {}, timeoutMs);
    const text = await r.text();
    let body: T;
    try {
      body = JSON.parse(text) as T;
    } catch {
      body = text as unknown as T;
    }
    return { status: r.status, body };
  }

  /** metric reads one sample of a Prometheus metric from this node's /metrics (NaN when absent). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const r = await this.fetch('/metrics', {}, 5000);
    const text = await r.text();
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!m || m[1] !== name) continue;
      const set = m[2] ?? '';
      if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) return Number(m[3]);
    }
    return NaN;
  }
}

/**
 * joinArgs is the one place a node learns how to join the cluster: the first node starts alone with
 * `--cluster-init`, every other one with `--join` to the first node's API and the join token it wrote
 * (DATA_DIR/node-token). A restarted node has its own node-token and does not ask again.
 */
export function joinArgs(cluster: Cluster, node: SkiffNode): string[] {
  const first = cluster.nodes[0]!;
  if (node === first) return ['--cluster-init'];
  return ['--join', first.api.replace(/^http:/, 'https:'), '--token', readFileSync(join(first.dataDir, 'node-token'), 'utf8').trim()];
}

export interface LeaderRecord {
  holder?: string;
  acquireTime?: string;
  renewTime?: string;
  leaseDurationSeconds?: number;
  leaseTransitions?: number;
  resourceVersion?: string;
}

export interface ClusterOptions {
  etcdMembers?: number;
  nodes?: number;
  /** Flags for every node, or per node index. */
  nodeArgs?: string[] | ((index: number) => string[]);
  env?: Record<string, string>;
  startTimeoutMs?: number;
}

export class Cluster {
  readonly etcd: EtcdMember[] = [];
  readonly nodes: SkiffNode[] = [];
  readonly prefix: string;
  readonly root: string;
  private closed = false;

  private constructor(root: string) {
    this.root = root;
    this.prefix = `skiff-${Math.random().toString(36).slice(2, 8)}`;
  }

  /** The `--store` URL every node gets: all members, so a node fails over when one dies. */
  get storeUrl(): string {
    return `etcd://${this.etcd.map((m) => m.clientUrl.slice('http://'.length)).join(',')}/${this.prefix}`;
  }

  /** start brings up the etcd cluster, then the first node alone, then the others together. On failure it kills what it started. */
  static async start(opts: ClusterOptions = {}): Promise<Cluster> {
    const c = new Cluster(mkdtempSync(join(tmpdir(), 'skiff-cluster-')));
    try {
      await c.startEtcd(opts.etcdMembers ?? 3);
      const n = opts.nodes ?? 3;
      for (let i = 0; i < n; i++) {
        const args = typeof opts.nodeArgs === 'function' ? opts.nodeArgs(i) : (opts.nodeArgs ?? []);
        c.nodes.push(new SkiffNode(c, i, `node${i + 1}`, mkdtempSync(join(c.root, `node${i + 1}-`)), { args, env: opts.env }));
      }
      const t = opts.startTimeoutMs ?? 60_000;
      await c.nodes[0]!.start(t);
      await Promise.all(c.nodes.slice(1).map((nd) => nd.start(t)));
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  private async startEtcd(n: number): Promise<void> {
    const ports = [];
    for (let i = 0; i < n; i++) ports.push([await freePort(), await freePort()] as const);
    const initial = ports.map(([, p], i) => `e${i + 1}=http://127.0.0.1:${p}`).join(',');
    const token = `tok-${this.prefix}`;
    for (let i = 0; i < n; i++) {
      const [cp, pp] = ports[i]!;
      const m = new EtcdMember(`e${i + 1}`, `http://127.0.0.1:${cp}`, `http://127.0.0.1:${pp}`, mkdtempSync(join(this.root, `etcd${i + 1}-`)), initial, token);
      this.etcd.push(m);
      m.start();
    }
    await waitFor(async () => (await Promise.all(this.etcd.map((m) => m.healthy()))).every(Boolean), 'the etcd cluster to be healthy', 30_000, 100);
  }

  /** etcdLeader is the member raft currently follows (killing it is the harder case: an election follows). */
  async etcdLeader(): Promise<EtcdMember> {
    return waitFor(
      async () => {
        const st = await Promise.all(this.etcd.map((m) => (m.running ? m.status() : undefined)));
        const leaderId = st.find((x) => x)?.leader;
        const i = st.findIndex((x) => x?.memberId === leaderId);
        return i >= 0 ? this.etcd[i] : undefined;
      },
      'an etcd leader',
      10_000,
    );
  }

  /** node by name (`node1`..) or index. */
  node(which: string | number): SkiffNode {
    const n = typeof which === 'number' ? this.nodes[which] : this.nodes.find((x) => x.name === which);
    if (!n) throw new Error(`no node ${which}`);
    return n;
  }

  /** live nodes: started, not killed (a paused node counts as running; tests choose whether to use it). */
  running(): SkiffNode[] {
    return this.nodes.filter((n) => n.running);
  }

  /**
   * leader reads the controllers' leader lease `skiff-system/skiff-leader` through one of the given
   * nodes (the first that answers).
   */
  async leader(via: SkiffNode[] = this.running()): Promise<LeaderRecord | undefined> {
    for (const n of via) {
      try {
        const r = await n.getJson<{ metadata?: { resourceVersion?: string }; spec?: { holderIdentity?: string; acquireTime?: string; renewTime?: string; leaseDurationSeconds?: number; leaseTransitions?: number } }>('/apis/coordination.k8s.io/v1/namespaces/skiff-system/leases/skiff-leader', 3000);
        if (r.status === 404) return undefined;
        if (r.status !== 200) continue;
        const s = r.body.spec ?? {};
        return { holder: s.holderIdentity || undefined, acquireTime: s.acquireTime, renewTime: s.renewTime, leaseDurationSeconds: s.leaseDurationSeconds, leaseTransitions: s.leaseTransitions, resourceVersion: r.body.metadata?.resourceVersion };
      } catch {
        // try the next node
      }
    }
    return undefined;
  }

  /** leaderNode waits until the lease names a running node and returns it. */
  async leaderNode(timeoutMs = 30_000, exclude?: SkiffNode): Promise<SkiffNode> {
    return waitFor(
      async () => {
        const l = await this.leader(this.running().filter((n) => n !== exclude));
        const n = this.nodes.find((x) => x.name === l?.holder);
        return n && n.running && n !== exclude ? n : undefined;
      },
      'a leader among the running nodes',
      timeoutMs,
      100,
    );
  }

  /** etcdGet reads a key's current value and revisions straight from etcd's JSON gateway (under the cluster's prefix). */
  async etcdRange(key: string, opts: { prefix?: boolean; revision?: number } = {}): Promise<Array<{ key: string; value: string; modRevision: number; createRevision: number }>> {
    const full = `/${this.prefix}${key}`;
    const body: Record<string, unknown> = { key: Buffer.from(full).toString('base64') };
    if (opts.prefix) body.range_end = prefixEnd(Buffer.from(full)).toString('base64');
    if (opts.revision) body.revision = String(opts.revision);
    for (const m of this.etcd.filter((x) => x.running)) {
      try {
        const r = await boundedFetch(`${m.clientUrl}/v3/kv/range`, { method: 'POST', body: JSON.stringify(body) }, 5000);
        if (!r.ok) continue;
        const j = (await r.json()) as { kvs?: Array<{ key: string; value?: string; mod_revision: string; create_revision: string }> };
        return (j.kvs ?? []).map((kv) => ({ key: Buffer.from(kv.key, 'base64').toString().slice(this.prefix.length + 1), value: Buffer.from(kv.value ?? '', 'base64').toString(), modRevision: Number(kv.mod_revision), createRevision: Number(kv.create_revision) }));
      } catch {
        // next member
      }
    }
    throw new Error('no etcd member answered');
  }

  /** etcdRevision is the etcd cluster's current revision. */
  async etcdRevision(): Promise<number> {
    for (const m of this.etcd.filter((x) => x.running)) {
      try {
        const r = await boundedFetch(`${m.clientUrl}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(`/${this.prefix}`).toString('base64'), count_only: true }) }, 5000);
        if (r.ok) return Number(((await r.json()) as { header: { revision: string } }).header.revision);
      } catch {
        // next member
      }
    }
    throw new Error('no etcd member answered');
  }

  /**
   * etcdHistory replays every change under `keyPrefix` (below the cluster's prefix) since `fromRevision`,
   * straight from etcd's history: what was written, whoever wrote it. Reads until the replay has been
   * quiet for a moment (bounded).
   */
  async etcdHistory(keyPrefix: string, fromRevision: number): Promise<Array<{ key: string; type: 'PUT' | 'DELETE'; value: string; modRevision: number }>> {
    const full = Buffer.from(`/${this.prefix}${keyPrefix}`);
    const m = this.etcd.find((x) => x.running);
    if (!m) throw new Error('no etcd member runs');
    const ctrl = new AbortController();
    const hard = setTimeout(() => ctrl.abort(), 10_000);
    const out: Array<{ key: string; type: 'PUT' | 'DELETE'; value: string; modRevision: number }> = [];
    try {
      const res = await fetch(`${m.clientUrl}/v3/watch`, { method: 'POST', body: JSON.stringify({ create_request: { key: full.toString('base64'), range_end: prefixEnd(full).toString('base64'), start_revision: String(fromRevision) } }), signal: ctrl.signal });
      const reader = res.body!.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        let quiet: NodeJS.Timeout | undefined;
        const next = await Promise.race([reader.read(), new Promise<undefined>((r) => (quiet = setTimeout(() => r(undefined), 700)))]);
        clearTimeout(quiet);
        if (!next || next.done) break;
        buf += dec.decode(next.value, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const msg = JSON.parse(buf.slice(0, nl)) as { result?: { events?: Array<{ type?: string; kv: { key: string; value?: string; mod_revision: string } }> } };
          buf = buf.slice(nl + 1);
          for (const ev of msg.result?.events ?? []) out.push({ key: Buffer.from(ev.kv.key, 'base64').toString().slice(this.prefix.length + 1), type: ev.type === 'DELETE' ? 'DELETE' : 'PUT', value: Buffer.from(ev.kv.value ?? '', 'base64').toString(), modRevision: Number(ev.kv.mod_revision) });
        }
      }
    } catch (err) {
      if (!ctrl.signal.aborted) throw err;
    } finally {
      clearTimeout(hard);
      ctrl.abort();
    }
    return out;
  }

  /** close kills every node and member (SIGCONT first for paused ones) and removes the temp dirs. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled(this.nodes.map((n) => n.kill()));
    await Promise.allSettled(this.etcd.map((m) => m.kill()));
    rmSync(this.root, { recursive: true, force: true });
  }
}

function prefixEnd(p: Buffer): Buffer {
  const b = Buffer.from(p);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      b[i]!++;
      return b.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
