import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
    const n1 = await startSkiff({ dataDir: join(root, 'n1'), args: ['--store', store, '--cluster-init', '--node-name', 'n1'], timeoutMs: 40_000 });
    nodes.push(n1);
    // Node 2 joins and, alone, may read the module's directory.
    const d2 = join(root, 'n2');
    const mods = join(root, 'mods');
    mkdirSync(mods);
    copyFileSync(join(REPO, 'examples', 'hello', 'hello.wasm'), join(mods, 'hello.wasm'));
    const n2 = await startSkiff({ dataDir: d2, args: ['--store', store, ...joinArgs(n1), '--node-name', 'n2', '--allow-host-dir', mods], timeoutMs: 40_000 });
    nodes.push(n2);

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
    // Node 2 listed itself in the Function's EndpointSlice; node 1 did not (it cannot load the module).
    const listed = await cli(['get', 'endpointslices', '-n', 'default', '-o', 'json'], { skiff: n1 });
    const names = (JSON.parse(listed.stdout) as { items: Array<{ metadata: { name: string } }> }).items.map((i) => i.metadata.name);
    expect(names).toContain('pinned-n2');
    expect(names).not.toContain('pinned-n1');
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
    const n3 = await startSkiff({ dataDir: join(root, 'n3'), args: ['--store', store, ...joinArgs(n1), '--node-name', 'n3', '--allow-host-dir', mods], timeoutMs: 40_000 });
    nodes.push(n3);
    // A Function both node 2 and node 3 can load (node 1 cannot), created once node 3 is up.
    const fn = { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'both', namespace: 'default' }, spec: { module: join(mods, 'hello.wasm') } };
    const rt = { apiVersion: 'skiff.dev/v1', kind: 'Route', metadata: { name: 'both', namespace: 'default' }, spec: { hosts: ['*'], http: [{ match: [{ uri: { prefix: '/both' } }], route: [{ destination: { function: 'both' } }] }] } };
    for (const [plural, obj] of [['functions', fn], ['routes', rt]] as const) {
      const res = await fetch(`${n2.api}/apis/skiff.dev/v1/namespaces/default/${plural}`, { method: 'POST', headers: { authorization: `Bearer ${n2.token}`, 'content-type': 'application/json' }, body: JSON.stringify(obj) });
      expect(res.status, await res.text()).toBe(201);
    }
    // The nodes list themselves in EndpointSlices as they load it; these slices, written by the test
    // and managed by nobody, keep the routing under test whatever the writers and sweeps do meanwhile.
    for (const n of [n2, n3]) {
      const node = n === n2 ? 'n2' : 'n3';
      const slice = {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: `it-both-${node}`, namespace: 'default', labels: { 'kubernetes.io/service-name': 'both', 'skiff.dev/node': node } },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['127.0.0.1'], nodeName: node, conditions: { ready: true } }],
        ports: [{ name: 'mesh', port: Number(/mesh=https:\/\/[^:]+:(\d+)/.exec(n.readyLine)![1]) }],
      };
      const res = await fetch(`${n1.api}/apis/discovery.k8s.io/v1/namespaces/default/endpointslices`, { method: 'POST', headers: { authorization: `Bearer ${n1.token}`, 'content-type': 'application/json' }, body: JSON.stringify(slice) });
      expect(res.status, await res.text()).toBe(201);
    }
    await waitFor(async () => (await fetch(`${n3.gateway}/both`)).status === 200 && (await fetch(`${n2.gateway}/both`)).status === 200, 'nodes 2 and 3 serving the Function', 30_000);
    // Both nodes take requests from node 1.
    const served = new Set<string>();
    await waitFor(async () => {
      const res = await fetch(`${n1.gateway}/both`);
      await res.text();
      if (res.status !== 200) return false;
      const text = await (await fetch(`${n1.api}/metrics`, { headers: { authorization: `Bearer ${n1.token}` } })).text();
      for (const n of ['n2', 'n3']) if (text.includes(`skiff_gateway_forwarded_requests_total{node="${n}",code="200"}`)) served.add(n);
      return served.size === 2;
    }, 'node 1 sending to both nodes', 30_000);
    await n3.stop('SIGKILL');
    // At once: every request still answered (a refused connect is retried on node 2, then node 3 is ejected).
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await fetch(`${n1.gateway}/both`)).status);
    expect(statuses).toEqual(Array(20).fill(200));
    const text = await (await fetch(`${n1.api}/metrics`, { headers: { authorization: `Bearer ${n1.token}` } })).text();
    expect(text).toMatch(/skiff_gateway_node_ejections_total\{node="n3"\} 1/);
  }, 90_000);
});

/** joinArgs are the flags that join the cluster node 1 started (its API over HTTPS, its node token). */
function joinArgs(n1: RunningSkiff): string[] {
  return ['--join', n1.api.replace(/^http:/, 'https:'), '--token', readFileSync(join(n1.dataDir, 'node-token'), 'utf8').trim()];
}
