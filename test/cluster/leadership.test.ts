import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { ApiError } from '../../src/api/errors.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { LEADER_LEASE, LeaderScope, Leadership, type LeaderTask, NotLeaderError } from '../../src/cluster/index.js';
import { MemoryStore } from '../../src/store/index.js';

const logger = pino({ level: 'silent' });
// Short enough to hand over in well under a second, with the ratios kube-controller-manager requires.
const FAST = { leaseDurationMs: 600, renewDeadlineMs: 400, retryPeriodMs: 50 };

/** A leader-only controller that records its life, one instance per term. */
class Probe implements LeaderTask {
  static log: string[] = [];
  constructor(
    readonly node: string,
    readonly term: number,
    private readonly startMs = 0,
  ) {}
  async start(): Promise<void> {
    if (this.startMs) await new Promise((r) => setTimeout(r, this.startMs));
    Probe.log.push(`${this.node}#${this.term} start`);
  }
  stop(): void {
    Probe.log.push(`${this.node}#${this.term} stop`);
  }
}

const running: Leadership[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((l) => l.stop()));
  Probe.log = [];
});

function node(resources: ResourceService, store: MemoryStore, name: string): Leadership {
  const l = new Leadership({ resources, store, nodeName: name, logger, ...FAST });
  let term = 0;
  l.add('probe', () => new Probe(name, ++term));
  running.push(l);
  return l;
}

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('Leadership: the once-per-cluster controllers of several nodes on one store', () => {
  it('runs them on one node, refuses the others\' writes, and hands over when the leader stops', async () => {
    const store = new MemoryStore();
    const resources = new ResourceService(store, builtinKinds());
    await resources.create(resources.kind('Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: LEADER_LEASE.namespace } });
    const a = node(resources, store, 'node-a');
    const b = node(resources, store, 'node-b');
    await a.start();
    // The free lease is taken on the first attempt and the controllers run before start() returns.
    expect(a.isLeader()).toBe(true);
    expect(Probe.log).toEqual(['node-a#1 start']);
    await b.start();
    expect(b.isLeader()).toBe(false);
    expect(b.leader()).toBe('node-a');
    expect(Probe.log).toEqual(['node-a#1 start']);

    const ns = resources.kind('Namespace');
    // The follower's fenced service refuses writes without touching the store.
    await expect(b.resources.create(ns, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'from-b' } })).rejects.toBeInstanceOf(NotLeaderError);
    expect(await resources.tryGet(ns, undefined, 'from-b')).toBeUndefined();
    expect(b.stats()).toMatchObject({ isLeader: false, transitions: 0, fencedWritesRefused: 1 });
    await a.resources.create(ns, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'from-a' } });
    expect(a.stats()).toMatchObject({ isLeader: true, transitions: 1, fencedWritesRefused: 0 });

    const t0 = Date.now();
    await a.stop();
    // Released, not expired: the follower takes over at its next attempt, well inside a lease duration.
    await until('node-b to lead', () => b.isLeader());
    expect(Date.now() - t0).toBeLessThan(FAST.leaseDurationMs);
    await b.scope.settled();
    expect(Probe.log).toEqual(['node-a#1 start', 'node-a#1 stop', 'node-b#1 start']);
    const lease = await resources.get(resources.kind('Lease'), LEADER_LEASE.namespace, LEADER_LEASE.name);
    expect(lease.spec).toMatchObject({ holderIdentity: 'node-b', leaseTransitions: 1 });
    // The old leader's service is fenced for good.
    await expect(a.resources.delete(ns, undefined, 'from-a')).rejects.toBeInstanceOf(NotLeaderError);
  });

  it('shares admission with the node\'s own service, hooks added later included', async () => {
    const store = new MemoryStore();
    const resources = new ResourceService(store, builtinKinds());
    await resources.create(resources.kind('Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: LEADER_LEASE.namespace } });
    const a = node(resources, store, 'node-a');
    resources.addAdmissionHook({ name: 'deny-forbidden', admit: (req) => (req.name === 'forbidden' ? { allowed: false, messages: ['no'] } : { allowed: true }) });
    await a.start();
    const ns = resources.kind('Namespace');
    const err = await a.resources.create(ns, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'forbidden' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).httpStatus).toBe(403);
  });
});

describe('LeaderScope', () => {
  it('builds fresh controllers per term, stops them in reverse, and never runs two terms at once', async () => {
    const scope = new LeaderScope(logger);
    let n = 0;
    scope.add('first', () => new Probe('first', ++n, 30));
    scope.add('second', () => new Probe('second', n));
    // Won and lost at once: nothing is built.
    scope.lead();
    scope.yield();
    await scope.settled();
    expect(Probe.log).toEqual([]);
    scope.lead();
    await new Promise((r) => setTimeout(r, 10));
    // Lost while the first is still starting (and won again): the second is not started in that
    // term, the first stops once started, and the new term builds both afresh.
    scope.yield();
    scope.lead();
    await scope.settled();
    expect(Probe.log).toEqual(['first#1 start', 'first#1 stop', 'first#2 start', 'second#2 start']);
    expect(scope.running()).toEqual(['first', 'second']);
    // Added while leading: it starts at once.
    scope.add('third', () => new Probe('third', 0));
    await scope.settled();
    expect(Probe.log.at(-1)).toBe('third#0 start');
    await scope.close();
    expect(Probe.log.slice(-3)).toEqual(['third#0 stop', 'second#2 stop', 'first#2 stop']);
    scope.lead();
    await scope.settled();
    expect(scope.running()).toEqual([]);
  });
});
