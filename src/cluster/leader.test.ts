import { afterEach, describe, expect, it } from 'vitest';

import { KindRegistry } from '../api/kinds/registry.js';
import type { KindDefinition } from '../api/kinds/types.js';
import { ResourceService } from '../api/resources.js';
import { MemoryStore } from '../store/index.js';

import { ElectionConfigError, FenceConditionError, LeaseLostError, NotLeaderError } from './errors.js';
import { FencedStore } from './fenced-store.js';
import { type ElectionClock, LEADER_LEASE, LeaderElector, type LeaseClient, type LeaseRecord, type LeaseSpec } from './leader.js';
import { ResourceLeaseClient } from './lease-client.js';

/** A stand-in for the Lease kind another piece of issue 19 adds: enough schema for the elector's fields. */
const leaseKind: KindDefinition = {
  group: 'coordination.k8s.io',
  version: 'v1',
  kind: 'Lease',
  plural: 'leases',
  singular: 'lease',
  namespaced: true,
  specSchema: {
    type: 'object',
    properties: {
      holderIdentity: { type: 'string' },
      leaseDurationSeconds: { type: 'integer' },
      acquireTime: { type: 'string' },
      renewTime: { type: 'string' },
      leaseTransitions: { type: 'integer' },
    },
  },
  printerColumns: [],
};

/** FakeClock fires timers only when a test advances it, letting each timer's async work settle first. */
class FakeClock implements ElectionClock {
  t = 1_700_000_000_000;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const due = [...this.timers].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
    }
    this.t = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
}

/** A LeaseClient that can be made to hang (a paused process) or to fail (store unreachable). */
class ControlledClient implements LeaseClient {
  held = false;
  failing = false;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly inner: LeaseClient) {}

  get(): Promise<LeaseRecord | undefined> {
    return this.gate(() => this.inner.get());
  }

  create(spec: LeaseSpec): Promise<LeaseRecord | undefined> {
    return this.gate(() => this.inner.create(spec));
  }

  update(spec: LeaseSpec, rv: string): Promise<LeaseRecord | undefined> {
    return this.gate(() => this.inner.update(spec, rv));
  }

  resume(): void {
    this.held = false;
    for (const go of this.waiting.splice(0)) go();
  }

  private async gate<T>(call: () => Promise<T>): Promise<T> {
    if (this.held) await new Promise<void>((r) => this.waiting.push(r));
    if (this.failing) throw new Error('store unreachable');
    return call();
  }
}

interface Node {
  elector: LeaderElector;
  client: ControlledClient;
  clock: FakeClock;
  events: string[];
  store: FencedStore;
}

const TIMINGS = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

describe('leader election', () => {
  let store: MemoryStore;
  let resources: ResourceService;
  const started: Node[] = [];

  function node(identity: string, clock: FakeClock): Node {
    const client = new ControlledClient(new ResourceLeaseClient(resources, LEADER_LEASE));
    const events: string[] = [];
    const elector = new LeaderElector({
      identity,
      client,
      clock,
      ...TIMINGS,
      onStartedLeading: () => events.push('started'),
      onStoppedLeading: () => events.push('stopped'),
      onNewLeader: (who) => events.push(`leader ${who}`),
    });
    const n = { elector, client, clock, events, store: new FencedStore(store, elector) };
    started.push(n);
    elector.start();
    return n;
  }

  const lease = async () => (await resources.tryGet(leaseKind, LEADER_LEASE.namespace, LEADER_LEASE.name))?.spec as LeaseSpec;

  const setup = () => {
    store = new MemoryStore();
    resources = new ResourceService(store, new KindRegistry([leaseKind]));
  };

  afterEach(async () => {
    for (const n of started.splice(0)) {
      n.client.resume();
      n.client.failing = false;
      await n.elector.stop();
    }
    await store.close();
  });

  it('elects one of two nodes; the other takes over once the lease expires by its own clock', async () => {
    setup();
    const clock = new FakeClock();
    const a = node('node-a', clock);
    await clock.advance(0);
    const b = node('node-b', clock);
    await clock.advance(0);
    expect(a.elector.isLeader()).toBe(true);
    expect(b.elector.isLeader()).toBe(false);
    expect(a.events).toEqual(['leader node-a', 'started']);
    expect(b.events).toEqual(['leader node-a']);
    expect(b.elector.leader()).toBe('node-a');
    const first = await lease();
    expect(first).toMatchObject({ holderIdentity: 'node-a', leaseDurationSeconds: 15, leaseTransitions: 0 });

    // A leader that renews keeps the lease however long it runs.
    await clock.advance(40_000);
    expect(a.elector.isLeader()).toBe(true);
    expect(b.elector.isLeader()).toBe(false);
    const renewed = await lease();
    expect(renewed.renewTime).not.toBe(first.renewTime);
    expect(renewed.acquireTime).toBe(first.acquireTime);

    // node-a loses the store: it steps down at its renew deadline, node-b waits out the lease duration.
    a.client.failing = true;
    const lost = clock.now();
    await clock.advance(10_000);
    expect(a.events.at(-1)).toBe('stopped');
    expect(a.elector.isLeader()).toBe(false);
    expect(a.elector.fence()).toBeUndefined();
    expect(b.elector.isLeader()).toBe(false);
    await clock.advance(20_000);
    expect(b.elector.isLeader()).toBe(true);
    expect(b.events).toEqual(['leader node-a', 'leader node-b', 'started']);
    const taken = await lease();
    expect(taken).toMatchObject({ holderIdentity: 'node-b', leaseTransitions: 1 });
    // Taken no earlier than a lease duration after node-b last saw node-a's renew.
    expect(Date.parse(taken.acquireTime!)).toBeGreaterThanOrEqual(lost - TIMINGS.retryPeriodMs + TIMINGS.leaseDurationMs);
    expect(Date.parse(taken.acquireTime!)).toBeLessThanOrEqual(lost + TIMINGS.leaseDurationMs + TIMINGS.retryPeriodMs);
  });

  it('fences a paused leader: after another node took over, its writes fail on the guard', async () => {
    setup();
    const a = node('node-a', new FakeClock());
    await a.clock.advance(0);
    const b = node('node-b', new FakeClock());
    await b.clock.advance(0);
    expect(a.elector.isLeader()).toBe(true);
    expect((await a.store.put('/registry/x', 'from a')).ok).toBe(true);
    await expect(b.store.put('/registry/x', 'from b')).rejects.toBeInstanceOf(NotLeaderError);

    // SIGSTOP: node-a's renew is in flight and held, and its clock stands still.
    a.client.held = true;
    await a.clock.advance(TIMINGS.retryPeriodMs);
    await b.clock.advance(TIMINGS.leaseDurationMs + 2 * TIMINGS.retryPeriodMs);
    expect(b.elector.isLeader()).toBe(true);
    // node-a still believes it leads: only the fence keeps it from writing.
    expect(a.elector.isLeader()).toBe(true);
    expect(a.elector.fence()).toBeDefined();
    const before = await store.revision();
    const put = await a.store.put('/registry/x', 'stale write').catch((e: unknown) => e);
    expect(put).toBeInstanceOf(LeaseLostError);
    expect((put as LeaseLostError).code).toBe('lease_lost');
    await expect(a.store.delete('/registry/x')).rejects.toBeInstanceOf(LeaseLostError);
    expect(await store.revision()).toBe(before);
    expect((await store.get('/registry/x'))?.value).toBe('from a');
    expect((await b.store.put('/registry/x', 'from b')).ok).toBe(true);

    // SIGCONT: the held renew finds node-b holding the lease and node-a steps down.
    a.client.resume();
    await a.clock.advance(0);
    expect(a.events.at(-1)).toBe('stopped');
    expect(a.elector.isLeader()).toBe(false);
    expect(a.elector.leader()).toBe('node-b');
    const refused = await a.store.put('/registry/x', 'late').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(NotLeaderError);
    expect((refused as NotLeaderError).code).toBe('not_leader');
    expect((await store.get('/registry/x'))?.value).toBe('from b');
  });

  it('steps down at the renew deadline even while a renew hangs', async () => {
    setup();
    const clock = new FakeClock();
    const a = node('node-a', clock);
    await clock.advance(0);
    expect(a.elector.isLeader()).toBe(true);
    a.client.held = true;
    await clock.advance(TIMINGS.renewDeadlineMs - 1);
    expect(a.events).toEqual(['leader node-a', 'started']);
    await clock.advance(1);
    expect(a.events.at(-1)).toBe('stopped');
    expect(a.elector.fence()).toBeUndefined();
    const before = await store.revision();
    await expect(a.store.put('/registry/y', '1')).rejects.toBeInstanceOf(NotLeaderError);
    expect(await store.revision()).toBe(before);
  });

  it('releases the lease on stop, so another node takes over at its next attempt', async () => {
    setup();
    const clock = new FakeClock();
    const a = node('node-a', clock);
    await clock.advance(0);
    const b = node('node-b', clock);
    await clock.advance(0);
    await a.elector.stop();
    expect(a.events.at(-1)).toBe('stopped');
    expect(a.elector.isLeader()).toBe(false);
    const released = await lease();
    expect(released.holderIdentity).toBeUndefined();
    expect(released.leaseTransitions).toBe(0);
    await clock.advance(TIMINGS.retryPeriodMs);
    expect(b.elector.isLeader()).toBe(true);
    expect(await lease()).toMatchObject({ holderIdentity: 'node-b', leaseTransitions: 1 });
  });

  it('refuses timings that cannot work and a missing identity', () => {
    setup();
    const client = new ResourceLeaseClient(resources, LEADER_LEASE);
    expect(() => new LeaderElector({ identity: 'n', client, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(ElectionConfigError);
    expect(() => new LeaderElector({ identity: 'n', client, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toThrow(/retry period/);
    expect(() => new LeaderElector({ identity: '', client })).toThrow(/identity/);
  });
});

describe('ResourceLeaseClient', () => {
  it('answers conflicts with undefined and reports the object key and revision the fence needs', async () => {
    const store = new MemoryStore();
    const resources = new ResourceService(store, new KindRegistry([leaseKind]));
    const client = new ResourceLeaseClient(resources, LEADER_LEASE);
    expect(await client.get()).toBeUndefined();
    const created = await client.create({ holderIdentity: 'node-a', leaseTransitions: 0 });
    if (!created) throw new Error('create failed');
    expect(await client.create({ holderIdentity: 'node-b' })).toBeUndefined();
    const kv = await store.get(created.key);
    expect(kv?.modRevision).toBe(created.modRevision);
    expect(created.resourceVersion).toBe(String(created.modRevision));
    const updated = await client.update({ holderIdentity: 'node-a', leaseTransitions: 0, renewTime: '2026-01-01T00:00:00.000000Z' }, created.resourceVersion);
    expect(updated?.modRevision).toBeGreaterThan(created.modRevision);
    expect(await client.update({ holderIdentity: 'node-b' }, created.resourceVersion)).toBeUndefined();
    expect((await client.get())?.spec.holderIdentity).toBe('node-a');
    // Without the kind served, leader election cannot work: a clear error, not a silent miss.
    const bare = new ResourceLeaseClient(new ResourceService(store, new KindRegistry([])), LEADER_LEASE);
    await expect(bare.get()).rejects.toThrow(/coordination.k8s.io Leases/);
    await store.close();
  });
});

describe('FencedStore', () => {
  it('retries a write its own renew raced with the new fence, and refuses a caller guard', async () => {
    const store = new MemoryStore();
    const first = await store.put('/lease', 'v1');
    const second = await store.put('/lease', 'v2');
    if (!first.ok || !second.ok) throw new Error('write failed');
    const fences = [{ key: '/lease', modRevision: first.revision }, { key: '/lease', modRevision: second.revision }];
    let calls = 0;
    const fenced = new FencedStore(store, { fence: () => fences[Math.min(calls++, 1)] });
    expect((await fenced.put('/k', '1')).ok).toBe(true);
    expect(calls).toBe(2);
    // An ordinary conflict stays an answer, as from any store.
    expect(await fenced.put('/k', '2', { expectModRevision: 0 })).toMatchObject({ ok: false, reason: 'condition' });
    await expect(fenced.put('/k', '3', { guard: { key: '/other', modRevision: 0 } })).rejects.toBeInstanceOf(FenceConditionError);

    const stuck = new FencedStore(store, { fence: () => fences[0] });
    await expect(stuck.delete('/k')).rejects.toBeInstanceOf(LeaseLostError);
    expect((await store.get('/k'))?.value).toBe('1');
    await store.close();
  });
});
