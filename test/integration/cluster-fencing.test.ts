import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Cluster, type SkiffNode, waitFor } from '../helpers/cluster.js';
import { hasBinary } from '../helpers/system-deps.js';

// A leader paused (SIGSTOP) past its lease wakes up in the middle of work it started while leading.
// The work: the leader-only Event garbage collector's sweep, which deletes expired Events one by one
// and goes on with its loop after the node stops leading. Stopping the controller does not stop the
// loop; fencing does. A new leader's first sweep comes a minute after it takes over, so every Event
// deleted after the takeover, in etcd's own history, would be a write of the old leader.
const available = hasBinary('etcd');
const LEASE_MS = 4000;
const RETRY_MS = 500;
const ARGS = ['--leader-elect-lease-duration', '4s', '--leader-elect-renew-deadline', '3s', '--leader-elect-retry-period', '500ms', '--node-lease-duration', '4s', '--node-monitor-grace-period', '2s'];
// Enough that one sweep outlasts the pause (each delete is one etcd transaction).
const EXPIRED = 1500;
let c: Cluster;

interface NodeObject {
  metadata: { name: string };
  status?: { conditions?: Array<{ type: string; status: string }> };
}
const readyOf = (n: NodeObject) => n.status?.conditions?.find((k) => k.type === 'Ready');

/** createExpiredEvents makes `count` Events last seen two hours ago through `n`, a few at a time. */
async function createExpiredEvents(n: SkiffNode, count: number): Promise<void> {
  const old = new Date(Date.now() - 2 * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const r = await n.fetch('/api/v1/namespaces/default/events', { method: 'POST', body: JSON.stringify({ apiVersion: 'v1', kind: 'Event', metadata: { name: `old-${i}` }, involvedObject: { apiVersion: 'v1', kind: 'Namespace', name: 'default' }, reason: 'Old', message: 'expired', type: 'Normal', firstTimestamp: old, lastTimestamp: old, count: 1 }) }, 15_000);
      if (r.status !== 201) throw new Error(`creating an Event answered ${r.status}: ${await r.text()}`);
      await r.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

/** firstDeletion resolves at the first Event deletion a watch on `n` delivers (bounded). */
async function firstDeletion(n: SkiffNode, timeoutMs: number): Promise<void> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  try {
    const res = await fetch(`${n.api}/api/v1/namespaces/default/events?watch=true&resourceVersion=${await currentRv(n)}`, { headers: { authorization: `Bearer ${n.token}` }, signal: ctrl.signal });
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the watch ended before an Event was deleted');
      buf += dec.decode(value, { stream: true });
      if (buf.includes('"type":"DELETED"')) return;
    }
  } catch (err) {
    if (ctrl.signal.aborted) throw new Error(`no Event was deleted within ${timeoutMs} ms`);
    throw err;
  } finally {
    clearTimeout(timer);
    ctrl.abort();
  }
}

async function currentRv(n: SkiffNode): Promise<string> {
  const r = await n.getJson<{ metadata: { resourceVersion: string } }>('/api/v1/namespaces/default/events?limit=1');
  return r.body.metadata.resourceVersion;
}

beforeAll(async () => {
  if (available) c = await Cluster.start({ nodeArgs: ARGS });
}, 90_000);
afterAll(async () => {
  await c?.close();
}, 30_000);

describe.skipIf(!available)('fencing a paused leader', () => {
  it('SIGSTOP of the leader past its lease, then SIGCONT: it stops leading and none of its writes lands', async () => {
    await c.leaderNode(20_000);
    await createExpiredEvents(c.node(2), EXPIRED);

    // The leader's collector sweeps a minute after it started leading, deleting one Event at a time.
    // The sweeping node is the one leading when the first deletion shows (a loaded machine may have
    // moved the lease meanwhile).
    await firstDeletion(c.node(2), 75_000);
    const old = await c.leaderNode(5_000);
    const refusedBefore = await old.metric('skiff_leader_fenced_writes_refused_total');
    old.pause();
    const others = c.nodes.filter((n) => n !== old);
    const pausedRev = await c.etcdRevision();
    let next: SkiffNode;
    try {
      next = await c.leaderNode(LEASE_MS + 4 * RETRY_MS + 8000, old);
    } finally {
      old.resume();
    }
    const leaseHistory = await c.etcdHistory('/registry/', pausedRev);
    const takeover = leaseHistory.find((h) => h.key.endsWith('/skiff-system/skiff-leader') && (JSON.parse(h.value) as { spec: { holderIdentity?: string } }).spec.holderIdentity === next.name);
    expect(takeover).toBeDefined();

    // It notices it lost, without taking the lease back, and its sweep's remaining deletes are refused.
    await waitFor(async () => (await old.metric('skiff_leader_is_leader')) === 0, 'the old leader to report is_leader 0', 15_000, 200);
    await waitFor(async () => (await old.metric('skiff_leader_fenced_writes_refused_total')) > refusedBefore, 'the old leader to count refused writes', 15_000, 200);
    // The sweep's loop runs to its end; then nothing of it may be in etcd.
    let refused = 0;
    await waitFor(
      async () => {
        const now = await old.metric('skiff_leader_fenced_writes_refused_total');
        const settled = now === refused;
        refused = now;
        return settled;
      },
      'the old sweep to finish',
      30_000,
      1000,
    );
    expect(refused).toBeGreaterThan(0);
    expect((await c.leader(others))?.holder).toBe(next!.name);

    const history = await c.etcdHistory('/registry/', takeover!.modRevision);
    const deletedAfter = history.filter((h) => h.type === 'DELETE' && h.key.includes('/events/'));
    expect(deletedAfter.map((h) => `${h.key}@${h.modRevision}`)).toEqual([]);
    // The paused leader's sweep had deleted some Events, not all: the refused deletes left the rest.
    const left = await next!.getJson<{ items: unknown[] }>('/api/v1/namespaces/default/events', 15_000);
    const remaining = left.body.items.length;
    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThan(EXPIRED + 50);
    // The lease itself was written by the new leader only from its takeover on, and the nodes that
    // kept heartbeating never went Ready=Unknown (a stale leader's node controller would think so).
    for (const h of history.filter((x) => x.key.endsWith('/skiff-system/skiff-leader'))) expect((JSON.parse(h.value) as { spec: { holderIdentity?: string } }).spec.holderIdentity).not.toBe(old.name);
    const wrongly = history.filter((h) => h.type === 'PUT' && h.key.includes('/nodes/')).filter((h) => {
      const obj = JSON.parse(h.value) as NodeObject;
      return obj.metadata.name !== old.name && readyOf(obj)?.status !== 'True';
    });
    expect(wrongly.map((h) => `${h.key}@${h.modRevision}`)).toEqual([]);
  }, 150_000);
});
