// Cross-node routing: what a request pays when the node it enters has no replica of the Function and
// forwards it over the mesh (mutual TLS between node gateways) to a node that has one. The same
// Function is asked ~2000 times in turn through the node that serves it and through the node that
// forwards, one request at a time over keep-alive connections, and the percentiles are compared.
//
// `measureCrossNode(localUrl, remoteUrl)` is the measurement (bench/cluster.ts uses it on its own
// cluster). Run alone (`npm run bench -- cluster-routing`), this file starts etcd and two nodes on
// loopback from the built CLI, with a Wasm Function only node 2 can load.
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import { Agent, request } from 'undici';

import { emit, parseBenchArgs, percentile, positiveOption } from './lib/report.js';
import { type BenchSkiff, startBenchSkiff } from './lib/skiff.js';

/** CrossNodeFigures are the latency percentiles of both paths and what forwarding adds. */
export interface CrossNodeFigures {
  cross_node_added_p50_us: number;
  cross_node_added_p99_us: number;
  local_p50_us: number;
  local_p99_us: number;
  cross_node_p50_us: number;
  cross_node_p99_us: number;
}

/**
 * measureCrossNode times `iterations` sequential GETs of `localUrl` (a node that serves the Function
 * itself) and of `remoteUrl` (the same Function through a node that forwards it), alternating so that
 * both see the same machine load, each over its own keep-alive connection. Every answer must be 200.
 */
export async function measureCrossNode(localUrl: string, remoteUrl: string, opts: { iterations?: number; warmup?: number } = {}): Promise<CrossNodeFigures> {
  const iterations = opts.iterations ?? 2000;
  const warmup = opts.warmup ?? 200;
  const agents = [new Agent({ connections: 1, pipelining: 1 }), new Agent({ connections: 1, pipelining: 1 })];
  const once = async (url: string, agent: Agent): Promise<number> => {
    const t0 = process.hrtime.bigint();
    const res = await request(url, { dispatcher: agent });
    await res.body.dump();
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
    return us;
  };
  try {
    for (let i = 0; i < warmup; i++) {
      await once(localUrl, agents[0]!);
      await once(remoteUrl, agents[1]!);
    }
    const local = new Float64Array(iterations);
    const cross = new Float64Array(iterations);
    for (let i = 0; i < iterations; i++) {
      local[i] = await once(localUrl, agents[0]!);
      cross[i] = await once(remoteUrl, agents[1]!);
    }
    local.sort();
    cross.sort();
    const [l50, l99, c50, c99] = [percentile(local, 50), percentile(local, 99), percentile(cross, 50), percentile(cross, 99)];
    return { cross_node_added_p50_us: c50 - l50, cross_node_added_p99_us: c99 - l99, local_p50_us: l50, local_p99_us: l99, cross_node_p50_us: c50, cross_node_p99_us: c99 };
  } finally {
    await Promise.all(agents.map((a) => a.close()));
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function post(node: BenchSkiff, path: string, obj: object): Promise<void> {
  const res = await fetch(`${node.api}${path}`, { method: 'POST', headers: { authorization: `Bearer ${node.token}`, 'content-type': 'application/json' }, body: JSON.stringify(obj) });
  if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
}

/** twoNodeCluster starts etcd and two nodes sharing tokens and CA, and a Function only node 2 serves, routed at /pinned. */
async function twoNodeCluster(root: string): Promise<{ n1: BenchSkiff; n2: BenchSkiff; stop: () => void }> {
  const [c, p] = [await freePort(), await freePort()];
  const etcd: ChildProcess = spawn('etcd', ['--name', 'b', '--data-dir', join(root, 'etcd'), '--listen-client-urls', `http://127.0.0.1:${c}`, '--advertise-client-urls', `http://127.0.0.1:${c}`, '--listen-peer-urls', `http://127.0.0.1:${p}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${p}`, '--initial-cluster', `b=http://127.0.0.1:${p}`, '--log-level', 'error'], { stdio: 'ignore' });
  const procs: ChildProcess[] = [etcd];
  const stop = () => procs.forEach((x) => x.kill('SIGKILL'));
  try {
    await until('etcd', async () => (await fetch(`http://127.0.0.1:${c}/health`)).ok);
    const store = `etcd://127.0.0.1:${c}/bench`;
    const n1 = await startBenchSkiff(join(root, 'n1'), { args: ['--store', store, '--node-name', 'n1'] });
    procs.push(n1.proc);
    const d2 = join(root, 'n2');
    mkdirSync(d2, { mode: 0o700 });
    for (const f of ['token', 'controller-token']) copyFileSync(join(n1.dataDir, f), join(d2, f));
    // Joining by token is another piece: the second node gets the first one's tokens and CA.
    cpSync(join(n1.dataDir, 'ca'), join(d2, 'ca'), { recursive: true });
    const mods = join(root, 'mods');
    mkdirSync(mods);
    copyFileSync(resolve(import.meta.dirname, '..', 'examples', 'hello', 'hello.wasm'), join(mods, 'hello.wasm'));
    const n2 = await startBenchSkiff(d2, { args: ['--store', store, '--node-name', 'n2', '--allow-host-dir', mods] });
    procs.push(n2.proc);
    const meshPort = Number(/:(\d+)$/.exec(n2.mesh ?? '')?.[1]);
    await post(n2, '/apis/skiff.dev/v1/namespaces/default/functions', { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'pinned', namespace: 'default' }, spec: { module: join(mods, 'hello.wasm') } });
    await post(n2, '/apis/skiff.dev/v1/namespaces/default/routes', { apiVersion: 'skiff.dev/v1', kind: 'Route', metadata: { name: 'pinned', namespace: 'default' }, spec: { hosts: ['*'], http: [{ match: [{ uri: { prefix: '/pinned' } }], route: [{ destination: { function: 'pinned' } }] }] } });
    await post(n2, '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'pinned-n2', namespace: 'default', labels: { 'kubernetes.io/service-name': 'pinned', 'skiff.dev/node': 'n2' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['127.0.0.1'], nodeName: 'n2', conditions: { ready: true }, targetRef: { kind: 'Function', name: 'pinned' } }],
      ports: [{ name: 'mesh', port: meshPort }],
    });
    await until('node 2 serving', async () => (await fetch(`${n2.gateway}/pinned`)).status === 200);
    await until('node 1 forwarding', async () => (await fetch(`${n1.gateway}/pinned`)).status === 200);
    return { n1, n2, stop };
  } catch (err) {
    stop();
    throw err;
  }
}

async function main(): Promise<void> {
  const { json, rest } = parseBenchArgs();
  const iterations = positiveOption(rest, '--iterations', 2000);
  const root = mkdtempSync(join(tmpdir(), 'skiff-bench-route-'));
  let cluster: Awaited<ReturnType<typeof twoNodeCluster>> | undefined;
  try {
    cluster = await twoNodeCluster(root);
    const figures = await measureCrossNode(`${cluster.n2.gateway}/pinned`, `${cluster.n1.gateway}/pinned`, { iterations });
    emit({ name: 'cluster-routing', figures: { ...figures }, peers: {} }, json);
  } finally {
    cluster?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
