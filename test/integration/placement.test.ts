import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { run } from '../helpers/run.js';
import { apiFetch, cli, REPO, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';
import { hasBinary } from '../helpers/system-deps.js';

const tools = hasBinary('etcd') && hasBinary('bwrap') && hasBinary('busybox') && hasBinary('cc');

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

interface Slice {
  metadata: { name: string; labels: Record<string, string>; ownerReferences?: Array<{ kind: string; name: string }> };
  addressType: string;
  endpoints: Array<{ addresses: string[]; nodeName: string; conditions: { ready: boolean }; targetRef: { kind: string; name: string } }>;
  ports: Array<{ name: string; port: number }>;
}

/**
 * Two `skiff up` nodes on one etcd: a container Function with two replicas runs one on each, both
 * listed in EndpointSlices; draining node 2 moves its replica to node 1.
 */
describe.skipIf(!tools)('placement across two nodes on etcd', () => {
  let etcd: ChildProcess | undefined;
  let etcdDir = '';
  let dir = '';
  const nodes: RunningSkiff[] = [];

  beforeAll(async () => {
    etcdDir = mkdtempSync(join(tmpdir(), 'skiff-place-etcd-'));
    const [cp, pp] = [await freePort(), await freePort()];
    const client = `http://127.0.0.1:${cp}`;
    const peer = `http://127.0.0.1:${pp}`;
    etcd = spawn('etcd', ['--name', 'p', '--data-dir', etcdDir, '--listen-client-urls', client, '--advertise-client-urls', client, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `p=${peer}`, '--log-level', 'error'], { stdio: 'ignore' });
    dir = mkdtempSync(join(tmpdir(), 'skiff-place-'));
    const [built] = await Promise.all([
      run(process.execPath, [join(REPO, 'scripts', 'build-runtime-examples.mjs'), '--out', dir], { timeout: 60_000 }),
      waitFor(async () => (await fetch(`${client}/health`)).ok, 'etcd', 20_000),
    ]);
    if (built.status !== 0) throw new Error(`building the example image failed: ${built.stderr}`);
    const store = `etcd://127.0.0.1:${cp}/skiff-place`;
    const args = (name: string) => ['--store', store, '--node-name', name, '--allow-host-dir', dir];
    nodes.push(await startSkiff({ args: args('node-1'), timeoutMs: 40_000 }));
    // The API token is cluster-wide: node 2 starts with node 1's.
    const d2 = mkdtempSync(join(tmpdir(), 'skiff-place-n2-'));
    mkdirSync(d2, { recursive: true });
    for (const f of ['token', 'controller-token']) copyFileSync(join(nodes[0]!.dataDir, f), join(d2, f));
    nodes.push(await startSkiff({ dataDir: d2, args: args('node-2'), timeoutMs: 40_000 }));
  }, 90_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    etcd?.kill('SIGKILL');
    for (const d of [etcdDir, dir, ...nodes.map((n) => n.dataDir)]) if (d) rmSync(d, { recursive: true, force: true });
  }, 60_000);

  const fn = async () => (await (await apiFetch(nodes[0]!, '/apis/skiff.dev/v1/namespaces/default/functions/web')).json()) as { status?: { placement?: unknown; conditions?: Array<{ type: string; status: string }> } };
  const slices = async (via = nodes[1]!) => ((await (await apiFetch(via, '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb')).json()) as { items: Slice[] }).items.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  const readyByNode = async () => Object.fromEntries((await slices()).map((s) => [s.metadata.labels['skiff.dev/node'], s.endpoints.filter((e) => e.conditions.ready).length]));

  it('lists a Wasm Function on every node, and only on the nodes its affinity names', async () => {
    copyFileSync(join(REPO, 'examples', 'hello', 'hello.wasm'), join(dir, 'hello.wasm'));
    const path = '/apis/skiff.dev/v1/namespaces/default/functions';
    const names = async () => ((await (await apiFetch(nodes[0]!, '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dhi')).json()) as { items: Slice[] }).items.map((x) => `${x.metadata.name}:${x.endpoints.map((e) => e.conditions.ready).join(',')}`).sort();
    // A host path both nodes can read (skiff apply would upload it to one node's blob store).
    const created = await apiFetch(nodes[0]!, path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'hi', namespace: 'default' }, spec: { module: join(dir, 'hello.wasm') } }) });
    expect(created.status).toBe(201);
    await waitFor(async () => JSON.stringify(await names()) === JSON.stringify(['hi-node-1:true', 'hi-node-2:true']), 'a slice of hi from each node', 20_000);
    const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-1'] }] }] } } };
    // Every node writes the Function's status meanwhile: a patch may lose the race a few times (409), as with kubectl.
    await waitFor(async () => (await apiFetch(nodes[1]!, `${path}/hi`, { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' }, body: JSON.stringify({ spec: { affinity } }) })).status === 200, 'the affinity patched', 10_000);
    await waitFor(async () => JSON.stringify(await names()) === JSON.stringify(['hi-node-1:true']), 'node 2 no longer serving hi', 20_000);
    expect((await apiFetch(nodes[0]!, `${path}/hi`, { method: 'DELETE' })).status).toBe(200);
    await waitFor(async () => (await names()).length === 0, 'the slices of a deleted Function gone', 20_000);
  }, 60_000);

  it('runs one replica on each node, lists both in slices, and drain moves node 2\'s to node 1', async () => {
    const [n1, n2] = [nodes[0]!, nodes[1]!];
    const yaml = `apiVersion: skiff.dev/v1
kind: Function
metadata: { name: web, namespace: default }
spec:
  runtimeClassName: container
  image: ${join(dir, 'image')}
  replicas: 2
  terminationGracePeriodSeconds: 2
---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: web, namespace: default }
spec:
  hosts: ["*"]
  http:
    - match: [{ uri: { prefix: /web } }]
      rewrite: { uri: /cgi-bin/hello }
      route: [{ destination: { function: web } }]
`;
    const applied = await cli(['apply', '-f', '-'], { skiff: n1, input: yaml });
    expect(applied.stderr).toBe('');
    await waitFor(async () => JSON.stringify((await fn()).status?.placement) === JSON.stringify([{ nodeName: 'node-1', replicas: 1 }, { nodeName: 'node-2', replicas: 1 }]), 'one replica placed on each node', 20_000);
    await waitFor(async () => JSON.stringify(await readyByNode()) === JSON.stringify({ 'node-1': 1, 'node-2': 1 }), 'a ready endpoint from each node', 45_000).catch(async (e) => {
      console.log('placement state at the timeout:', JSON.stringify(await slices(), null, 1), JSON.stringify((await fn()).status, null, 1), n1.stderr().slice(-4000), n2.stderr().slice(-4000));
      throw e;
    });
    const both = await slices();
    expect(both.map((s) => s.metadata.name)).toEqual(['web-node-1', 'web-node-2']);
    for (const s of both) {
      expect(s.metadata.labels).toEqual({ 'kubernetes.io/service-name': 'web', 'skiff.dev/node': s.endpoints[0]!.nodeName, 'endpointslice.kubernetes.io/managed-by': 'node-agent.skiff.dev' });
      expect(s.addressType).toBe('IPv4');
      expect(s.endpoints[0]).toMatchObject({ addresses: ['127.0.0.1'], conditions: { ready: true }, targetRef: { kind: 'Function', name: 'web' } });
      expect(s.ports).toEqual([{ name: 'mesh', port: expect.any(Number), protocol: 'TCP' }]);
      expect(s.metadata.ownerReferences).toMatchObject([{ kind: 'Function', name: 'web' }]);
    }
    // Each node's gateway serves from the replica it runs itself.
    for (const n of [n1, n2]) {
      const r = await fetch(`${n.gateway}/web`);
      expect(await r.text()).toContain('hello from a container');
    }
    const scheduled = (await fn()).status?.conditions?.find((c) => c.type === 'Scheduled');
    expect(scheduled).toMatchObject({ status: 'True' });
    // Each node merges its replicas into the Function's status, tagged with the node.
    await waitFor(async () => ((await fn()).status as { readyReplicas?: number } | undefined)?.readyReplicas === 2, 'both replicas in the merged status', 10_000);
    const merged = (await fn()).status as unknown as { replicaStatuses: Array<{ nodeName: string; ready: boolean }>; conditions: Array<{ type: string; message: string }> };
    expect(merged.replicaStatuses.map((r) => `${r.nodeName}:${r.ready}`).sort()).toEqual(['node-1:true', 'node-2:true']);
    await waitFor(async () => ((await fn()).status?.conditions?.find((c) => c.type === 'Ready') as { message?: string } | undefined)?.message === '2 of 2 replica(s) ready on 2 node(s)', 'the Ready message counting both nodes', 10_000);
    const described = await cli(['describe', 'fn', 'web'], { skiff: n2 });
    expect(described.stdout).toMatch(/Replicas:\n\s+NAME\s+NODE\s+STATE\s+READY/);
    expect(described.stdout).toMatch(/\n\s+default\.web\.\S+\s+node-1\s+Ready\s+yes/);
    expect(described.stdout).toMatch(/\n\s+default\.web\.\S+\s+node-2\s+Ready\s+yes/);

    const drained = await cli(['drain', 'node-2', '--timeout', '60s'], { skiff: n1 });
    expect(drained.stderr).toBe('');
    expect(drained.code).toBe(0);
    expect(drained.stdout).toBe('node/node-2 cordoned\nmoving function default/web (1 replica(s))\nfunction default/web moved\nnode/node-2 drained\n');
    expect((await fn()).status?.placement).toEqual([{ nodeName: 'node-1', replicas: 2 }]);
    expect(await readyByNode()).toEqual({ 'node-1': 2 });
    const nodesOut = await cli(['get', 'nodes'], { skiff: n1 });
    expect(nodesOut.stdout).toMatch(/node-2\s+Ready,SchedulingDisabled/);

    // Nowhere to go: node 1 cordoned too, draining it fails with the scheduler's reason.
    const stuck = await cli(['drain', 'node-1', '--timeout', '8s'], { skiff: n1 });
    expect(stuck.code).toBe(1);
    expect(stuck.stderr).toContain('error: unable to drain node "node-1" within 8s: function default/web: 2 replica(s) could not be placed: 0/2 nodes are available: 2 node(s) were unschedulable.');
    // Its replicas stay where they are meanwhile.
    expect(await readyByNode()).toEqual({ 'node-1': 2 });
  }, 90_000);
});
