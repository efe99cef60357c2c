/**
 * Cluster benchmark: three etcd members and three Skiff nodes on loopback, started here.
 *
 *   npm run bench -- cluster [--json FILE]
 *
 * Figures:
 * - `failover_ms`: from kill -9 of the node holding `skiff-system/skiff-leader` (default lease settings)
 *   to the first write acknowledged through a surviving node after the lease names a new, running holder.
 * - `etcd_apply_objects_per_s`: `skiff apply -f` of 1,000 objects through one node on etcd; the peer
 *   `sqlite` is the same apply on one node on its default SQLite store (`apply_objects_per_s`).
 * - `watch_p99_ms`: 100 watchers spread over the three nodes, 200 creates through node 1, latency from
 *   sending each create to its delivery on every watcher; the `sqlite` peer's watchers and
 *   writes are on its one node.
 * - `node_idle_rss_mb`: resident memory of each node, averaged, after the cluster has idled.
 * - `cross_node_added_p50_us` / `_p99_us`: a Wasm Function pinned to node 2, asked through node 3's
 *   gateway (forwarded over the mesh) and through node 2's own, alternately (`measureCrossNode`).
 * Anchor, printed as text only: K3s HA with embedded etcd.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { Cluster, type SkiffNode, sleep } from '../test/helpers/cluster.js';
import { hasBinary } from '../test/helpers/system-deps.js';

import { measureCrossNode } from './cluster-routing.js';
import { emit, parseBenchArgs } from './lib/report.js';
import { BIN, startBenchSkiff } from './lib/skiff.js';
import { watchFanoutP99 } from './lib/watch-fanout.js';

const ROOT = resolve(import.meta.dirname, '..');
const { json } = parseBenchArgs();
const OBJECTS = 1000;
const WATCHERS = 100;
const CHANGES = 200;

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** applyRate runs `skiff apply -f` of OBJECTS Services (one multi-document file) against `api`, in objects per second. */
function applyRate(api: string, dataDir: string, workDir: string): number {
  const docs = Array.from({ length: OBJECTS }, (_, i) => `apiVersion: skiff.dev/v1\nkind: Service\nmetadata: { name: bench-${i}, labels: { bench: "yes" } }\nspec:\n  endpoints: [{ address: 192.0.2.1, port: ${20000 + i} }]\n`).join('---\n');
  const file = join(workDir, 'objects.yaml');
  writeFileSync(file, docs);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [BIN, 'apply', '-f', file, '--server', api], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, SKIFF_DATA_DIR: dataDir }, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`apply failed: ${r.stderr}`);
  return OBJECTS / ((performance.now() - t0) / 1000);
}


/**
 * failoverMs kills the leader with SIGKILL and measures until the lease names another running node and
 * a write through a surviving node has been acknowledged after that. NaN when no node leads.
 */
async function failoverMs(c: Cluster): Promise<number> {
  const first = await c.leader();
  const leader = c.nodes.find((n) => n.name === first?.holder && n.running);
  if (!leader) {
    process.stderr.write('warning: no node holds skiff-system/skiff-leader (leader election not wired?): failover_ms not measured\n');
    return NaN;
  }
  const survivors = c.nodes.filter((n) => n !== leader && n.running);
  const t0 = performance.now();
  await leader.kill();
  const deadline = t0 + 90_000;
  let holder: string | undefined;
  while (performance.now() < deadline) {
    const l = await c.leader(survivors).catch(() => undefined);
    if (l?.holder && l.holder !== leader.name && survivors.some((n) => n.name === l.holder)) {
      holder = l.holder;
      break;
    }
    await sleep(25);
  }
  if (!holder) throw new Error('no new leader within 90 s');
  const via = survivors.find((n) => n.name !== holder) ?? survivors[0]!;
  for (let i = 0; performance.now() < deadline; i++) {
    const r = await via.fetch('/apis/skiff.dev/v1/namespaces/default/services', { method: 'POST', body: JSON.stringify({ apiVersion: 'skiff.dev/v1', kind: 'Service', metadata: { name: `after-failover-${i}` }, spec: { endpoints: [{ address: '192.0.2.1', port: 9 }] } }) }).catch(() => undefined);
    if (r?.status === 201) return performance.now() - t0;
    await sleep(25);
  }
  throw new Error('no write acknowledged after the failover within 90 s');
}

/** crossNode pins the hello Function to node 2 and compares node 3's forwarded answers with node 2's own. */
async function crossNode(c: Cluster, work: string): Promise<Record<string, number>> {
  const [, serving, forwarding] = c.nodes as [SkiffNode, SkiffNode, SkiffNode];
  copyFileSync(join(ROOT, 'examples', 'hello', 'hello.wasm'), join(work, 'hello.wasm'));
  const manifest = join(work, 'xnode.yaml');
  writeFileSync(
    manifest,
    [
      'apiVersion: skiff.dev/v1',
      'kind: Function',
      'metadata: { name: xnode }',
      `spec: { module: ./hello.wasm, nodeSelector: { kubernetes.io/hostname: ${serving.name} } }`,
      '---',
      'apiVersion: skiff.dev/v1',
      'kind: Route',
      'metadata: { name: xnode }',
      'spec: { hosts: ["*"], http: [{ match: [{ uri: { prefix: /xnode } }], route: [{ destination: { function: xnode } }] }] }',
      '',
    ].join('\n'),
  );
  const r = spawnSync(process.execPath, [BIN, 'apply', '-f', manifest, '--server', serving.api], { encoding: 'utf8', env: { ...process.env, SKIFF_DATA_DIR: serving.dataDir }, timeout: 60_000 });
  if (r.status !== 0) throw new Error(`apply failed: ${r.stderr}`);
  const end = Date.now() + 30_000;
  for (;;) {
    const [a, b] = await Promise.all([serving, forwarding].map((n) => fetch(`${n.gateway}/xnode`).then((x) => (x.body?.cancel(), x.status), () => 0)));
    if (a === 200 && b === 200) break;
    if (Date.now() > end) throw new Error(`the pinned Function did not answer on both nodes (${a}, ${b})`);
    await sleep(200);
  }
  const f = await measureCrossNode(`${serving.gateway}/xnode`, `${forwarding.gateway}/xnode`);
  return { cross_node_added_p50_us: f.cross_node_added_p50_us, cross_node_added_p99_us: f.cross_node_added_p99_us, cross_node_p50_us: f.cross_node_p50_us, local_p50_us: f.local_p50_us };
}

async function waitReady(n: SkiffNode, count: number): Promise<void> {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    const r = await n.getJson<{ items?: Array<{ status?: { conditions?: Array<{ type: string; status: string }> } }> }>('/api/v1/nodes').catch(() => undefined);
    if ((r?.body.items ?? []).filter((x) => x.status?.conditions?.some((k) => k.type === 'Ready' && k.status === 'True')).length >= count) return;
    await sleep(200);
  }
  throw new Error('the nodes did not all become Ready');
}

async function main(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('run `npm run build` first');
  if (!hasBinary('etcd')) throw new Error('the cluster bench needs the etcd binary (Debian etcd-server)');
  const figures: Record<string, number> = {};
  const peers: Record<string, Record<string, number>> = {};
  const work = mkdtempSync(join(tmpdir(), 'skiff-bench-cluster-'));

  const c = await Cluster.start();
  try {
    await waitReady(c.node(0), 3);
    // Idle: the nodes have started, synced their caches and heartbeated; nothing else happens.
    await sleep(5_000);
    const rss = c.nodes.map((n) => rssMb(n.pid));
    figures.node_idle_rss_mb = rss.reduce((a, b) => a + b, 0) / rss.length;

    figures.etcd_apply_objects_per_s = applyRate(c.node(0).api, c.node(0).dataDir, work);
    figures.watch_p99_ms = await watchFanoutP99(c.node(0), c.nodes, WATCHERS, CHANGES);

    Object.assign(figures, await crossNode(c, work));

    figures.failover_ms = await failoverMs(c);
  } finally {
    await c.close();
  }

  // The peer: one node on its default SQLite store, the same apply and the same watch load.
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-'));
  const s = await startBenchSkiff(dir);
  try {
    const apply = applyRate(s.api, dir, work);
    const watch = await watchFanoutP99(s, [s], WATCHERS, CHANGES);
    peers.sqlite = { apply_objects_per_s: apply, watch_p99_ms: watch };
  } finally {
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
  emit({ name: 'cluster', figures, peers }, json);
  process.stdout.write('anchor (text only, not measured here): K3s HA with embedded etcd, about 1.6 GB per server node, failover in seconds\n');
}

main().catch((err) => {
  process.stderr.write(`bench cluster failed: ${err.stack ?? err}\n`);
  process.exit(1);
});
