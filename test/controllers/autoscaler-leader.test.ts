import pino from 'pino';
import { describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { ManualClock } from '../../src/autoscaling/clock.js';
import { FencedStore } from '../../src/cluster/index.js';
import { FunctionAutoscaler, type Gate, type Gates, type ScaleTarget } from '../../src/controllers/autoscaler/index.js';
import { MemoryStore, type WriteGuard } from '../../src/store/index.js';

/**
 * Two nodes' autoscalers on one store: the leader decides and writes, the other sizes its own
 * replicas to what the leader recorded and writes nothing, until leadership moves.
 */

class FakeGate implements Gate {
  ready = false;
  inflight = 0;
  waiting = 0;
  totalColdStarts = 0;
  traffic = { requests: 0, concurrency: 0 };
  sample() {
    return { ...this.traffic, coldStarts: 0, waiting: this.waiting, periodMs: 2000 };
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

describe('the autoscaler on a cluster\'s nodes', () => {
  it('decides once: the leader writes, the follower follows its recorded count and writes nothing', async () => {
    const store = new MemoryStore();
    const resources = new ResourceService(store, builtinKinds());
    await resources.create(resources.kind('Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
    // A real key stands for the leader lease, so fenced writes land only for the node said to lead.
    const lease = await store.put('/lease', 'x');
    const fence: WriteGuard = { key: '/lease', modRevision: lease.revision };
    let leader: 'a' | 'b' = 'a';
    const clock = new ManualClock(Date.UTC(2026, 11, 7, 9));
    const node = (name: 'a' | 'b') => {
      const fenced = new FencedStore(store, { fence: () => (leader === name ? fence : undefined) });
      const gates = new FakeGates();
      const wasm = new FakeTarget();
      const autoscaler = new FunctionAutoscaler({
        resources,
        store,
        logger: pino({ level: 'silent' }),
        gates,
        wasm,
        workloads: new FakeTarget(),
        clock,
        tickMs: 0,
        leader: { isLeader: () => leader === name, resources: resources.withStore(fenced), store: fenced },
      });
      return { autoscaler, gates, wasm, fenced };
    };
    const a = node('a');
    const b = node('b');
    await a.autoscaler.start();
    await b.autoscaler.start();
    try {
      const fnDef = resources.kind('Function');
      await resources.create(fnDef, 'default', { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'shared' }, spec: { module: '/srv/modules/hello.wasm', scale: { target: 10, stableWindow: '6s', minScale: 1 } } });
      await expect.poll(() => a.autoscaler.stats().length + b.autoscaler.stats().length).toBe(2);
      const tick = async (n: number) => {
        for (let i = 0; i < n; i++) {
          clock.advance(2000);
          a.autoscaler.tick();
          b.autoscaler.tick();
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      // Traffic reaches the leader's gateway: 28 in flight at 70 % of 10 per replica is 4 replicas.
      a.gates.ensure('default/shared').traffic = { requests: 50, concurrency: 28 };
      await tick(5);
      expect(a.wasm.replicas.get('default/shared')).toBe(4);
      await expect.poll(async () => (await resources.get(fnDef, 'default', 'shared')).status?.autoscaler?.recommendation).toBe(4);
      await tick(2);
      expect(b.wasm.replicas.get('default/shared')).toBe(4);
      expect(b.autoscaler.stats()[0]).toMatchObject({ desired: 4 });
      // The follower never tried to write: not a status, an Event nor a history.
      expect(b.fenced.refused).toBe(0);
      // Each decision is one Event: a second writer would have doubled them.
      await new Promise((r) => setTimeout(r, 100));
      const scaled = (await resources.list(resources.kind('Event'), 'default')).items.filter((e) => e.reason === 'ScaledUp').map((e) => String(e.message));
      expect(scaled.some((m) => /→ 4 replica\(s\)/.test(m))).toBe(true);
      expect(new Set(scaled).size).toBe(scaled.length);

      // Leadership moves: the new leader decides on its own gates, the old one follows. (An Event the
      // old leader had queued but not written when it lost would be refused by its fence.)
      leader = 'b';
      a.gates.ensure('default/shared').traffic = { requests: 0, concurrency: 0 };
      b.gates.ensure('default/shared').traffic = { requests: 80, concurrency: 56 };
      await tick(5);
      expect(b.wasm.replicas.get('default/shared')).toBe(8);
      await expect.poll(async () => (await resources.get(fnDef, 'default', 'shared')).status?.autoscaler?.recommendation).toBe(8);
      await tick(2);
      expect(a.wasm.replicas.get('default/shared')).toBe(8);
      expect(a.fenced.refused).toBe(0);
    } finally {
      leader = 'a';
      await a.autoscaler.stop();
      leader = 'b';
      await b.autoscaler.stop();
    }
  });
});
