import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cli, REPO, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';
import { hasBinary } from '../helpers/system-deps.js';

const available = hasBinary('etcd');

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

let etcd: ChildProcess | undefined;
let root: string;
let store = '';
const nodes: RunningSkiff[] = [];

beforeAll(async () => {
  if (!available) return;
  root = mkdtempSync(join(tmpdir(), 'skiff-route-it-'));
  const [c, p] = [await freePort(), await freePort()];
  const client = `http://127.0.0.1:${c}`;
  const peer = `http://127.0.0.1:${p}`;
  etcd = spawn('etcd', ['--name', 'r', '--data-dir', join(root, 'etcd'), '--listen-client-urls', client, '--advertise-client-urls', client, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `r=${peer}`, '--log-level', 'error'], { stdio: 'ignore' });
  await waitFor(async () => (await fetch(`${client}/health`).catch(() => undefined))?.ok, 'etcd', 15_000);
  store = `etcd://127.0.0.1:${c}/route-it`;
}, 30_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
  etcd?.kill('SIGKILL');
  if (root) rmSync(root, { recursive: true, force: true });
});

describe.skipIf(!available)('cross-node routing between skiff up nodes on one etcd', () => {
  it('answers through node 1 a Wasm Function only node 2 can load', async () => {
    const n1 = await startSkiff({ dataDir: join(root, 'n1'), args: ['--store', store, '--node-name', 'n1'], timeoutMs: 40_000 });
    nodes.push(n1);
    // Node 2 shares the cluster's tokens and CA (joining by token is another piece) and, alone, may
    // read the module's directory.
    const d2 = join(root, 'n2');
    mkdirSync(d2, { recursive: true, mode: 0o700 });
    for (const f of ['token', 'controller-token']) copyFileSync(join(n1.dataDir, f), join(d2, f));
    cpSync(join(n1.dataDir, 'ca'), join(d2, 'ca'), { recursive: true });
    const mods = join(root, 'mods');
    mkdirSync(mods);
    copyFileSync(join(REPO, 'examples', 'hello', 'hello.wasm'), join(mods, 'hello.wasm'));
    const n2 = await startSkiff({ dataDir: d2, args: ['--store', store, '--node-name', 'n2', '--allow-host-dir', mods], timeoutMs: 40_000 });
    nodes.push(n2);
    const mesh2 = Number(/mesh=https:\/\/[^:]+:(\d+)/.exec(n2.readyLine)![1]);

    const manifest = join(root, 'pinned.yaml');
    writeFileSync(
      manifest,
      [
        'apiVersion: skiff.dev/v1',
        'kind: Route',
        'metadata: { name: pinned, namespace: default }',
        'spec:',
        '  hosts: ["*"]',
        '  http: [{ match: [{ uri: { prefix: /pinned } }], route: [{ destination: { function: pinned } }] }]',
        '---',
        'apiVersion: discovery.k8s.io/v1',
        'kind: EndpointSlice',
        'metadata:',
        '  name: pinned-n2',
        '  namespace: default',
        '  labels: { kubernetes.io/service-name: pinned, skiff.dev/node: n2 }',
        'addressType: IPv4',
        `endpoints: [{ addresses: ["127.0.0.1"], nodeName: n2, conditions: { ready: true }, targetRef: { kind: Function, name: pinned } }]`,
        `ports: [{ name: mesh, port: ${mesh2} }]`,
        '',
      ].join('\n'),
    );
    // Through the API, not the CLI (which would upload the file, and uploads reach every node): a
    // host path that only node 2's --allow-host-dir grants.
    const created = await fetch(`${n2.api}/apis/skiff.dev/v1/namespaces/default/functions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${n2.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'pinned', namespace: 'default' }, spec: { module: join(mods, 'hello.wasm') } }),
    });
    expect(created.status, await created.text()).toBe(201);
    const applied = await cli(['apply', '-f', manifest], { skiff: n2 });
    expect(applied.code, applied.stderr).toBe(0);
    // Node 2 serves it itself...
    await waitFor(async () => (await fetch(`${n2.gateway}/pinned`)).status === 200, 'node 2 serving its Function', 20_000);
    // ...and node 1, which cannot load the module, forwards to node 2 over the mesh.
    const r = await waitFor(async () => {
      const res = await fetch(`${n1.gateway}/pinned`);
      return res.status === 200 ? res : undefined;
    }, 'node 1 forwarding to node 2', 20_000);
    expect(await r!.text()).toMatch(/hello/i);
    // Without the slice, node 1 has nowhere to send it.
    expect((await cli(['delete', 'endpointslice', 'pinned-n2'], { skiff: n1 })).code).toBe(0);
    await waitFor(async () => (await fetch(`${n1.gateway}/pinned`)).status === 503, 'node 1 answering 503 once node 2 is gone from the slices', 10_000);
  }, 120_000);

  it('loads on node 1 a module uploaded to node 2, fetched by digest over the mesh', async () => {
    const [n1, n2] = nodes as [RunningSkiff, RunningSkiff];
    const dir = join(root, 'upload');
    mkdirSync(dir);
    copyFileSync(join(REPO, 'examples', 'hello', 'hello.wasm'), join(dir, 'hello.wasm'));
    writeFileSync(
      join(dir, 'fn.yaml'),
      ['apiVersion: skiff.dev/v1', 'kind: Function', 'metadata: { name: uploaded, namespace: default }', 'spec: { module: ./hello.wasm }', '---', 'apiVersion: skiff.dev/v1', 'kind: Route', 'metadata: { name: uploaded, namespace: default }', 'spec:', '  hosts: ["*"]', '  http: [{ match: [{ uri: { prefix: /uploaded } }], route: [{ destination: { function: uploaded } }] }]', ''].join('\n'),
    );
    // The CLI uploads the module to the node it talks to: node 2.
    const applied = await cli(['apply', '-f', join(dir, 'fn.yaml')], { skiff: n2 });
    expect(applied.code, applied.stderr).toBe(0);
    const hex = createHash('sha256').update(readFileSync(join(dir, 'hello.wasm'))).digest('hex');
    expect(existsSync(join(n2.dataDir, 'blobs', 'sha256', hex))).toBe(true);
    // Node 1 serves it itself (no EndpointSlice names it): it fetched the module from node 2.
    await waitFor(async () => (await fetch(`${n1.gateway}/uploaded`)).status === 200, 'node 1 serving the uploaded module', 30_000);
    expect(existsSync(join(n1.dataDir, 'blobs', 'sha256', hex))).toBe(true);
  }, 60_000);

  it('routes around a node killed with SIGKILL at once, long before its heartbeat expires', async () => {
    const [n1, n2] = nodes as [RunningSkiff, RunningSkiff];
    const mods = join(root, 'mods');
    const d3 = join(root, 'n3');
    mkdirSync(d3, { recursive: true, mode: 0o700 });
    for (const f of ['token', 'controller-token']) copyFileSync(join(n1.dataDir, f), join(d3, f));
    cpSync(join(n1.dataDir, 'ca'), join(d3, 'ca'), { recursive: true });
    const n3 = await startSkiff({ dataDir: d3, args: ['--store', store, '--node-name', 'n3', '--allow-host-dir', mods], timeoutMs: 40_000 });
    nodes.push(n3);
    await waitFor(async () => (await fetch(`${n3.gateway}/pinned`)).status === 200, 'node 3 serving the Function', 20_000);
    const slices = join(root, 'slices.yaml');
    writeFileSync(slices, [n2, n3].map((n, i) => sliceYaml(`n${i + 2}`, Number(/mesh=https:\/\/[^:]+:(\d+)/.exec(n.readyLine)![1]))).join('---\n'));
    expect((await cli(['apply', '-f', slices], { skiff: n1 })).code).toBe(0);
    // Both nodes take requests from node 1.
    const served = new Set<string>();
    await waitFor(async () => {
      const res = await fetch(`${n1.gateway}/pinned`);
      expect(res.status).toBe(200);
      await res.text();
      const m = await fetch(`${n1.api}/metrics`, { headers: { authorization: `Bearer ${n1.token}` } });
      const text = await m.text();
      for (const n of ['n2', 'n3']) if (text.includes(`skiff_gateway_forwarded_requests_total{node="${n}",code="200"}`)) served.add(n);
      return served.size === 2;
    }, 'node 1 sending to both nodes', 20_000);
    await n3.stop('SIGKILL');
    // At once: every request still answered (a refused connect is retried on node 2, then node 3 is ejected).
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await fetch(`${n1.gateway}/pinned`)).status);
    expect(statuses).toEqual(Array(20).fill(200));
    const text = await (await fetch(`${n1.api}/metrics`, { headers: { authorization: `Bearer ${n1.token}` } })).text();
    expect(text).toMatch(/skiff_gateway_node_ejections_total\{node="n3"\} 1/);
  }, 90_000);
});

function sliceYaml(node: string, port: number): string {
  return [
    'apiVersion: discovery.k8s.io/v1',
    'kind: EndpointSlice',
    `metadata: { name: pinned-${node}, namespace: default, labels: { kubernetes.io/service-name: pinned, skiff.dev/node: ${node} } }`,
    'addressType: IPv4',
    `endpoints: [{ addresses: ["127.0.0.1"], nodeName: ${node}, conditions: { ready: true }, targetRef: { kind: Function, name: pinned } }]`,
    `ports: [{ name: mesh, port: ${port} }]`,
    '',
  ].join('\n');
}
