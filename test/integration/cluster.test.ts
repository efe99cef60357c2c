import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Cluster, type SkiffNode, waitFor } from '../helpers/cluster.js';
import { cli } from '../helpers/skiff-process.js';
import { hasBinary } from '../helpers/system-deps.js';

// Three etcd members and three nodes on loopback: what one node writes every node serves, the cluster
// keeps serving while one etcd member is gone, and without quorum writes fail fast while reads answer.
// Leader failover and fencing have their own file.
const available = hasBinary('etcd');
let c: Cluster;

const SERVICES = '/apis/skiff.dev/v1/namespaces/default/services';
const service = (name: string, labels: Record<string, string> = {}) => JSON.stringify({ apiVersion: 'skiff.dev/v1', kind: 'Service', metadata: { name, labels }, spec: { endpoints: [{ address: '192.0.2.1', port: 9 }] } });

async function create(n: SkiffNode, name: string, labels: Record<string, string> = {}): Promise<number> {
  const r = await n.fetch(SERVICES, { method: 'POST', body: service(name, labels) });
  await r.arrayBuffer();
  return r.status;
}

/**
 * watchNames watches a collection on one node and collects the names of ADDED objects until aborted. As
 * a Kubernetes client does, it watches again from the last resourceVersion it saw when the server ends
 * the stream (a node ends its watches when its etcd watch breaks), so nothing is missed across that.
 */
async function watchNames(n: SkiffNode, path: string, signal: AbortSignal): Promise<{ names: string[]; rewatches: () => number; done: Promise<void> }> {
  const names: string[] = [];
  let rv: string | undefined;
  let rewatches = -1;
  const open = async () => {
    rewatches++;
    const res = await fetch(`${n.api}${path}?watch=true${rv ? `&resourceVersion=${rv}` : ''}`, { headers: { authorization: `Bearer ${n.token}` }, signal });
    if (res.status !== 200) throw new Error(`watch answered ${res.status}`);
    return res;
  };
  const first = await open();
  const done = (async () => {
    let res = first;
    while (!signal.aborted) {
      const reader = res.body!.getReader();
      const dec = new TextDecoder();
      let buf = '';
      try {
        for (;;) {
          const { value, done: end } = await reader.read();
          if (end) break;
          buf += dec.decode(value, { stream: true });
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const ev = JSON.parse(buf.slice(0, nl)) as { type: string; object: { metadata: { name: string; resourceVersion?: string } } };
            buf = buf.slice(nl + 1);
            if (ev.object.metadata.resourceVersion) rv = ev.object.metadata.resourceVersion;
            if (ev.type === 'ADDED') names.push(ev.object.metadata.name);
          }
        }
      } catch {
        // aborted, or the connection broke: watch again below unless aborted
      }
      while (!signal.aborted) {
        try {
          res = await open();
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
  })();
  return { names, rewatches: () => rewatches, done };
}

beforeAll(async () => {
  if (available) c = await Cluster.start();
}, 90_000);
afterAll(async () => {
  await c?.close();
}, 30_000);

describe.skipIf(!available)('a three-node cluster on three etcd members', () => {
  it('skiff get nodes on any node lists the three nodes Ready', async () => {
    for (const n of [c.node(0), c.node(2)]) {
      await waitFor(async () => {
        const r = await cli(['get', 'nodes'], { server: n.api, env: { SKIFF_DATA_DIR: n.dataDir } });
        const rows = r.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/).slice(0, 2).join(' '));
        return r.code === 0 && rows.join(',') === 'node1 Ready,node2 Ready,node3 Ready';
      }, `three Ready nodes through ${n.name}`, 20_000, 250);
    }
    // Every node says where its API and mesh listen, and these differ between nodes on one host.
    const nodes = (await c.node(1).getJson<{ items: Array<{ status: { daemonEndpoints: { apiEndpoint: { Port: number }; meshEndpoint?: { Port: number } } } }> }>('/api/v1/nodes')).body.items;
    const apiPorts = nodes.map((x) => x.status.daemonEndpoints.apiEndpoint.Port).sort();
    expect(apiPorts).toEqual(c.nodes.map((n) => Number(new URL(n.api).port)).sort());
    expect(new Set(nodes.map((x) => x.status.daemonEndpoints.meshEndpoint?.Port)).size).toBe(3);
  });

  it('an object applied on node 1 is read and watched on node 3, with one resourceVersion', async () => {
    const ctrl = new AbortController();
    const w = await watchNames(c.node(2), SERVICES, ctrl.signal);
    try {
      expect(await create(c.node(0), 'made-on-1')).toBe(201);
      const on3 = await waitFor(async () => {
        const r = await c.node(2).getJson<{ metadata: { resourceVersion: string } }>(`${SERVICES}/made-on-1`);
        return r.status === 200 ? r.body : undefined;
      }, 'node 3 to read the object', 10_000);
      const on1 = (await c.node(0).getJson<{ metadata: { resourceVersion: string } }>(`${SERVICES}/made-on-1`)).body;
      // Resource versions are etcd's revision, so every node reports the same one.
      expect(on3.metadata.resourceVersion).toBe(on1.metadata.resourceVersion);
      await waitFor(() => w.names.includes('made-on-1'), 'node 3 to deliver the ADDED event', 10_000);
    } finally {
      ctrl.abort();
      await w.done;
    }
    // An update through node 2 with node 1's resourceVersion wins once; the stale retry is a conflict.
    const cur = (await c.node(1).getJson<Record<string, unknown> & { metadata: { resourceVersion: string } }>(`${SERVICES}/made-on-1`)).body;
    const put = (n: SkiffNode) => n.fetch(`${SERVICES}/made-on-1`, { method: 'PUT', body: JSON.stringify({ ...cur, metadata: { ...cur.metadata, labels: { by: n.name } } }) });
    expect((await put(c.node(1))).status).toBe(200);
    expect((await put(c.node(2))).status).toBe(409);
  });

  it('a wrong token is refused by every node', async () => {
    for (const n of c.nodes) {
      const r = await n.fetch(SERVICES, { headers: { authorization: 'Bearer not-the-cluster-token' } });
      expect(r.status).toBe(401);
    }
  });

  it('with one etcd member killed every node still reads and writes, and the member rejoins', async () => {
    // Kill raft's leader, the harder case: the writes below start while the survivors elect another,
    // when etcd itself refuses proposals ("leader changed", "no leader"); the store rides through it.
    // A watch opened before the kill goes on delivering: the node's own watch on etcd moves to a survivor.
    const ctrl = new AbortController();
    const w = await watchNames(c.node(2), SERVICES, ctrl.signal);
    const gone = await c.etcdLeader();
    await gone.kill();
    try {
      for (const [i, n] of c.nodes.entries()) {
        expect(await create(n, `one-down-${i}`)).toBe(201);
      }
      await waitFor(() => [0, 1, 2].every((i) => w.names.includes(`one-down-${i}`)), 'the watch opened before the kill to deliver the new objects', 15_000);
    } finally {
      ctrl.abort();
      await w.done;
    }
    for (const n of c.nodes) {
      for (let i = 0; i < 3; i++) expect((await n.fetch(`${SERVICES}/one-down-${i}`)).status).toBe(200);
    }
    // Heartbeats went on: the nodes stay Ready for the whole outage.
    const ready = (await c.node(2).getJson<{ items: Array<{ status: { conditions: Array<{ type: string; status: string }> } }> }>('/api/v1/nodes')).body.items.map((x) => x.status.conditions.find((k) => k.type === 'Ready')?.status);
    expect(ready).toEqual(['True', 'True', 'True']);
    gone.start();
    await waitFor(() => gone.healthy(), 'the restarted member to be healthy', 20_000, 200);
    // The rejoined member has caught up: reading straight from it finds what was written while it was down.
    const onMember = await waitFor(async () => {
      const r = await fetch(`${gone.clientUrl}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(`/${c.prefix}/registry/`).toString('base64'), range_end: Buffer.from(`/${c.prefix}/registry0`).toString('base64'), keys_only: true }), signal: AbortSignal.timeout(3000) });
      const keys = (((await r.json()) as { kvs?: Array<{ key: string }> }).kvs ?? []).map((k) => Buffer.from(k.key, 'base64').toString());
      return keys.filter((k) => k.includes('one-down-')).length === 3 ? keys : undefined;
    }, 'the rejoined member to hold the writes it missed', 20_000, 250);
    expect(onMember.length).toBeGreaterThan(3);
  });

  it('without etcd quorum writes answer 503 within 10 s, reads of existing objects answer, and writes resume', async () => {
    const [a, b] = c.etcd.filter((m) => m.running);
    await Promise.all([a!.kill(), b!.kill()]);
    try {
      // Every node at once, so the three bounded waits overlap.
      const writes = await Promise.all(
        c.nodes.map(async (n, i) => {
          const t0 = Date.now();
          const r = await n.fetch(SERVICES, { method: 'POST', body: service(`no-quorum-${i}`) }, 20_000);
          return { status: r.status, ms: Date.now() - t0, body: (await r.json()) as { reason?: string; message?: string } };
        }),
      );
      for (const w of writes) {
        expect(w.status).toBe(503);
        expect(w.body.reason).toBe('ServiceUnavailable');
        expect(w.ms).toBeLessThanOrEqual(10_000);
      }
      for (const n of c.nodes) {
        const r = await n.getJson<{ metadata: { name: string } }>(`${SERVICES}/made-on-1`, 12_000);
        expect(r.status).toBe(200);
        expect(r.body.metadata.name).toBe('made-on-1');
      }
    } finally {
      a!.start();
      b!.start();
    }
    await waitFor(async () => (await Promise.all(c.etcd.map((m) => m.healthy()))).every(Boolean), 'the etcd members to be healthy again', 30_000, 200);
    for (const [i, n] of c.nodes.entries()) {
      await waitFor(async () => (await create(n, `after-quorum-${i}`)) === 201, `a write through ${n.name} after quorum returned`, 30_000, 250);
    }
  });
});
