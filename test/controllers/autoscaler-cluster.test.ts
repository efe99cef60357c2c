import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { ManualClock } from '../../src/autoscaling/clock.js';
import { FunctionAutoscaler, type Gate, type Gates, type PeerSampler, type PeerSamples, type ScaleTarget } from '../../src/controllers/autoscaler/index.js';
import { MeshPeerSampler, parseSamples } from '../../src/server/peer-samples.js';
import { MemoryStore } from '../../src/store/index.js';

/**
 * The leader's decisions on the whole cluster's traffic: its own gates (scripted) plus the other
 * nodes' samples (a fake sampler), on a fake clock. The mesh endpoint and the real nodes are
 * exercised in test/integration/cluster-autoscaling.test.ts.
 */

class FakeGate implements Gate {
  ready = false;
  inflight = 0;
  waiting = 0;
  totalColdStarts = 0;
  traffic = { requests: 0, concurrency: 0 };
  sampled = 0;
  sample() {
    this.sampled++;
    return { ...this.traffic, coldStarts: 0, waiting: 0, periodMs: 2000 };
  }
  open() {
    this.ready = true;
  }
  close() {
    this.ready = false;
  }
  fail() {}
}

class FakeGates implements Gates {
  readonly map = new Map<string, FakeGate>();
  ensure(key: string): FakeGate {
    let g = this.map.get(key);
    if (!g) this.map.set(key, (g = new FakeGate()));
    return g;
  }
  get(key: string) {
    return this.map.get(key);
  }
  remove(key: string) {
    this.map.delete(key);
  }
  useOwner() {}
}

class FakeTarget implements ScaleTarget {
  readonly replicas = new Map<string, number>();
  has() {
    return true;
  }
  scale(ns: string, name: string, n: number) {
    this.replicas.set(`${ns}/${name}`, n);
    return true;
  }
  observe(ns: string, name: string) {
    const n = this.replicas.get(`${ns}/${name}`) ?? 0;
    return { replicas: n, ready: n };
  }
}

/** FakePeers hands the leader what the other nodes would answer; `fail` makes a tick's gathering reject. */
class FakePeers implements PeerSampler {
  answers: PeerSamples[] = [];
  fail = false;
  calls = 0;
  hasPeers() {
    return this.answers.length > 0 || this.fail;
  }
  collect() {
    this.calls++;
    return this.fail ? Promise.reject(new Error('mesh down')) : Promise.resolve(structuredClone(this.answers));
  }
}

const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);
const silent = pino({ level: 'silent' });

interface NodeUnderTest {
  autoscaler: FunctionAutoscaler;
  gates: FakeGates;
  wasm: FakeTarget;
  peers: FakePeers;
  clock: ManualClock;
  leading: { value: boolean };
}

const store = new MemoryStore();
const resources = new ResourceService(store, builtinKinds());
const fnDef = resources.kind('Function');
const nodes: NodeUnderTest[] = [];

async function node(leads: boolean): Promise<NodeUnderTest> {
  const gates = new FakeGates();
  const wasm = new FakeTarget();
  const peers = new FakePeers();
  const clock = new ManualClock(T0);
  const leading = { value: leads };
  const autoscaler = new FunctionAutoscaler({ resources, store, logger: silent, gates, wasm, workloads: new FakeTarget(), clock, tickMs: 0, leader: { isLeader: () => leading.value, resources, store }, peers });
  await autoscaler.start();
  const n = { autoscaler, gates, wasm, peers, clock, leading };
  nodes.push(n);
  return n;
}

beforeAll(async () => {
  await resources.create(resources.kind('Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }).catch(() => {});
});

afterAll(async () => {
  for (const n of nodes) await n.autoscaler.stop();
});

async function fn(n: NodeUnderTest, name: string, scale: Record<string, unknown>): Promise<FakeGate> {
  await resources.create(fnDef, 'default', { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name }, spec: { module: '/srv/modules/hello.wasm', scale } }).catch(() => {});
  await expect.poll(() => n.autoscaler.stats().some((s) => s.name === name), { timeout: 5000 }).toBe(true);
  return n.gates.ensure(`default/${name}`);
}

/** run ticks `n` for `ms` of fake time, awaiting each tick (a leader's waits for its peers). */
async function run(n: NodeUnderTest, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 2000) {
    n.clock.advance(2000);
    await n.autoscaler.tickAndWait();
  }
}

function desired(n: NodeUnderTest, name: string): number {
  return n.autoscaler.stats().find((s) => s.name === name)!.desired;
}

describe('the leader decides on every node\'s traffic', () => {
  it('adds another node\'s concurrency to its own gate\'s before the KPA decides, and records the total in status', async () => {
    const leader = await node(true);
    const scale = { target: 10, stableWindow: '6s', minScale: 1 };
    const both = await fn(leader, 'summed', scale);
    const alone = await fn(leader, 'alone', scale);
    both.traffic = { requests: 20, concurrency: 14 };
    alone.traffic = { requests: 20, concurrency: 14 };
    // Node 2 sees as much again of `summed`'s traffic, and none of `alone`'s.
    leader.peers.answers = [{ node: 'node-2', functions: { 'default/summed': { rps: 10, concurrency: 14 } } }];
    await run(leader, 10_000);
    // 14 in flight at 70 % of 10 per replica is 2; the cluster's 28 is 4.
    expect(desired(leader, 'alone')).toBe(2);
    expect(desired(leader, 'summed')).toBe(4);
    expect(leader.peers.calls).toBe(5);
    await expect.poll(async () => (await resources.get(fnDef, 'default', 'summed')).status?.desiredReplicas).toBe(4);
    const st = (await resources.get(fnDef, 'default', 'summed')).status?.autoscaler as { metric: { value: number } };
    expect(st.metric.value).toBe(28);
    // What this node serves is its own gate's figures, never the sum (or the leader would count node 2 twice after a failover).
    expect(leader.autoscaler.samples()['default/summed']).toEqual({ rps: 10, concurrency: 14 });
  });

  it('sums several nodes\' request rates for an rps Function', async () => {
    const leader = await node(true);
    const g = await fn(leader, 'rps', { metric: 'rps', target: 10, stableWindow: '6s', minScale: 1 });
    g.traffic = { requests: 20, concurrency: 1 };
    leader.peers.answers = [
      { node: 'node-2', functions: { 'default/rps': { rps: 20.3, concurrency: 1 } } },
      { node: 'node-3', functions: { 'default/rps': { rps: 29.6, concurrency: 1 } } },
    ];
    await run(leader, 10_000);
    // 10 + 20.3 + 29.6 req/s at 70 % of 10 per replica: 9 (other nodes' rates are rarely whole numbers).
    expect(desired(leader, 'rps')).toBe(9);
    expect(leader.autoscaler.stats().find((s) => s.name === 'rps')!.scaleUps).toBeGreaterThan(0);
  });

  it('decides on its own traffic when gathering fails, and a lone node decides synchronously without asking anyone', async () => {
    const leader = await node(true);
    const g = await fn(leader, 'lonely', { target: 10, stableWindow: '6s', minScale: 1 });
    g.traffic = { requests: 20, concurrency: 14 };
    leader.peers.fail = true;
    await run(leader, 10_000);
    expect(desired(leader, 'lonely')).toBe(2);
    leader.peers.fail = false;
    const calls = leader.peers.calls;
    leader.clock.advance(2000);
    // Done when tick returns: the decision of a lone node is not deferred.
    const sampled = g.sampled;
    leader.autoscaler.tick();
    expect(g.sampled).toBe(sampled + 1);
    expect(leader.peers.calls).toBe(calls);
  });

  it('a follower never gathers: it follows the leader\'s recorded count', async () => {
    const follower = await node(false);
    const g = await fn(follower, 'followed', { target: 10, stableWindow: '6s', minScale: 1 });
    // The leader's decision, as it records it.
    await resources.patch(fnDef, 'default', 'followed', { status: { desiredReplicas: 4, autoscaler: { recommendation: 4, reason: 'reactive' } } }, { subresource: 'status' });
    await expect.poll(() => follower.autoscaler.functions.get('default/followed')?.status?.desiredReplicas).toBe(4);
    follower.peers.answers = [{ node: 'node-1', functions: { 'default/followed': { rps: 100, concurrency: 100 } } }];
    g.traffic = { requests: 4, concurrency: 1 };
    await run(follower, 6_000);
    expect(follower.peers.calls).toBe(0);
    expect(desired(follower, 'followed')).toBe(4);
    expect(follower.autoscaler.samples()['default/followed']).toEqual({ rps: 2, concurrency: 1 });
  });
});

describe('MeshPeerSampler', () => {
  const peer = (node: string) => ({ node, host: '127.0.0.1', port: 1 });

  it('asks every peer at once with one deadline, leaves out the failing and the late, logs once per outage and counts', async () => {
    const logged: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push((JSON.parse(line) as { msg: string; node: string }).node + ': ' + (JSON.parse(line) as { msg: string }).msg) });
    let brokenUp = false;
    const sampler = new MeshPeerSampler({
      peers: () => [peer('up'), peer('broken'), peer('slow')],
      tls: () => ({}),
      trustDomain: 'skiff.local',
      logger,
      timeoutMs: 200,
      fetch: (p) => {
        if (p.node === 'up') return Promise.resolve({ node: 'up', functions: { 'default/a': { rps: 3, concurrency: 1.5 } } });
        if (p.node === 'broken') return brokenUp ? Promise.resolve({ functions: {} }) : Promise.reject(new Error('ECONNREFUSED'));
        return new Promise(() => {});
      },
    });
    expect(sampler.hasPeers()).toBe(true);
    const started = performance.now();
    const first = await sampler.collect();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(first).toEqual([{ node: 'up', functions: { 'default/a': { rps: 3, concurrency: 1.5 } } }]);
    await sampler.collect();
    expect(Object.fromEntries(sampler.failures())).toEqual({ broken: 2, slow: 2 });
    // Two failed rounds, one warning per node.
    expect(logged.filter((l) => l.startsWith('broken:'))).toHaveLength(1);
    expect(logged.filter((l) => l.startsWith('slow:'))).toHaveLength(1);
    brokenUp = true;
    const third = await sampler.collect();
    expect(third.map((p) => p.node).sort()).toEqual(['broken', 'up']);
    expect(logged.filter((l) => l.startsWith('broken:'))).toEqual(['broken: a node gave no autoscaler samples; its traffic is left out until it answers', 'broken: the node answers for autoscaler samples again']);
    expect(sampler.failures().get('broken')).toBe(2);
  });

  it('refuses answers that are not samples', () => {
    expect(parseSamples({ functions: { 'default/a': { rps: 1, concurrency: 0 } } })).toEqual({ 'default/a': { rps: 1, concurrency: 0 } });
    for (const bad of [null, {}, { functions: [] }, { functions: { a: { rps: -1, concurrency: 0 } } }, { functions: { a: { rps: '5', concurrency: 0 } } }, { functions: { a: { rps: 1e400, concurrency: 0 } } }, { functions: { a: null } }]) {
      expect(() => parseSamples(bad)).toThrow();
    }
  });

  it('has no peers to ask when the node list is empty, and asks none without an identity yet', async () => {
    let asked = 0;
    const fetch = () => (asked++, Promise.resolve({ functions: {} }));
    expect(new MeshPeerSampler({ peers: () => [], tls: () => ({}), trustDomain: 'skiff.local', logger: silent, fetch }).hasPeers()).toBe(false);
    expect(await new MeshPeerSampler({ peers: () => [peer('x')], tls: () => undefined, trustDomain: 'skiff.local', logger: silent, fetch }).collect()).toEqual([]);
    expect(asked).toBe(0);
  });
});
