import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import type { ResourceObject } from '../../src/api/kinds/types.js';
import { ResourceService } from '../../src/api/resources.js';
import { ManualClock } from '../../src/autoscaling/clock.js';
import { RequestHistory } from '../../src/autoscaling/forecast/index.js';
import { FunctionAutoscaler, type Gate, type Gates, type ScaleTarget } from '../../src/controllers/autoscaler/index.js';
import { MemoryStore } from '../../src/store/index.js';

/**
 * The autoscaler's decisions, driven tick by tick: scripted gate samples (what the gateway would count),
 * fake replica targets that record what they are told, a fake clock. The real gateway and runtime are
 * exercised in test/integration/autoscaling.test.ts.
 */

class FakeGate implements Gate {
  ready = false;
  inflight = 0;
  waiting = 0;
  totalColdStarts = 0;
  /** What the next samples report: requests per tick and average concurrency. */
  traffic = { requests: 0, concurrency: 0 };
  failed?: string;
  sample() {
    return { ...this.traffic, coldStarts: 0, waiting: this.waiting, periodMs: 2000 };
  }
  open() {
    this.ready = true;
  }
  close() {
    this.ready = false;
  }
  fail(why: string) {
    this.failed = why;
  }
}

class FakeGates implements Gates {
  readonly map = new Map<string, FakeGate>();
  readonly removed: string[] = [];
  owner?: { activate(key: string): string | undefined };
  ensure(key: string): FakeGate {
    let g = this.map.get(key);
    if (!g) this.map.set(key, (g = new FakeGate()));
    return g;
  }
  get(key: string) {
    return this.map.get(key);
  }
  remove(key: string) {
    this.removed.push(key);
    this.map.delete(key);
  }
  useOwner(o: { activate(key: string): string | undefined }) {
    this.owner = o;
  }
}

class FakeTarget implements ScaleTarget {
  readonly replicas = new Map<string, number>();
  readonly calls: Array<[string, number]> = [];
  has() {
    return true;
  }
  scale(ns: string, name: string, n: number) {
    this.replicas.set(`${ns}/${name}`, n);
    this.calls.push([`${ns}/${name}`, n]);
    return true;
  }
  observe(ns: string, name: string) {
    const n = this.replicas.get(`${ns}/${name}`) ?? 0;
    return { replicas: n, ready: n };
  }
}

const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);
const clock = new ManualClock(T0);
const gates = new FakeGates();
const wasm = new FakeTarget();
const store = new MemoryStore();
const resources = new ResourceService(store, builtinKinds());
const fnDef = resources.kind('Function');
let autoscaler: FunctionAutoscaler;

beforeAll(async () => {
  await resources.create(resources.kind('Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }).catch(() => {});
  autoscaler = new FunctionAutoscaler({ resources, store, logger: pino({ level: 'silent' }), gates, wasm, workloads: new FakeTarget(), clock, tickMs: 0 });
  await autoscaler.start();
});

afterAll(async () => {
  await autoscaler.stop();
});

async function fn(name: string, spec: Record<string, unknown>): Promise<FakeGate> {
  await resources.create(fnDef, 'default', { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name }, spec: { module: '/srv/modules/hello.wasm', ...spec } });
  await expect.poll(() => autoscaler.stats().some((s) => s.name === name), { timeout: 5000 }).toBe(true);
  return gates.ensure(`default/${name}`);
}

/** run advances the clock tick by tick for `ms` with the given traffic and returns the replicas after each tick. */
function run(gate: FakeGate, name: string, ms: number, traffic: { requests?: number; concurrency?: number }): number[] {
  gate.traffic = { requests: traffic.requests ?? 0, concurrency: traffic.concurrency ?? 0 };
  const out: number[] = [];
  for (let t = 0; t < ms; t += 2000) {
    clock.advance(2000);
    autoscaler.tick();
    out.push(wasm.replicas.get(`default/${name}`) ?? 0);
  }
  return out;
}

function stat(name: string) {
  return autoscaler.stats().find((s) => s.name === name)!;
}

async function events(name: string): Promise<ResourceObject[]> {
  const list = await resources.list(resources.kind('Event'), 'default');
  return list.items.filter((e) => (e.involvedObject as { name: string }).name === name);
}

describe('the autoscaler (KPA)', () => {
  it('scales up under a concurrency step within one stable window, with an Event naming the reason and inputs', async () => {
    const g = await fn('step', { scale: { target: 10, stableWindow: '6s', minScale: 1 } });
    run(g, 'step', 10_000, { concurrency: 28 });
    expect(stat('step').desired).toBe(4);
    // Half as much again: below the panic threshold (twice the ready replicas), so the stable window decides.
    const after = run(g, 'step', 8_000, { requests: 100, concurrency: 42 });
    // 42 in flight at 70 % of 10 per replica: 6.
    expect(after.at(-1)).toBe(6);
    expect(stat('step').reason).toBe('reactive');
    expect(stat('step').panic).toBe(false);
    await expect.poll(async () => (await events('step')).map((e) => `${e.reason}: ${e.message}`).join('\n')).toMatch(/ScaledUp: 4 → [56] replica\(s\): reactive \(stable [\d.]+, panic [\d.]+ in flight; target 7 per replica\)/);
    await expect.poll(async () => (await resources.get(fnDef, 'default', 'step')).status?.autoscaler?.reason).toBe('reactive');
  });

  it('panics on a burst: scales up at once, never down while panicking, and leaves panic after a stable window', async () => {
    const g = await fn('burst', { scale: { target: 10, stableWindow: '20s', minScale: 1 } });
    run(g, 'burst', 24_000, { concurrency: 5 });
    expect(stat('burst').desired).toBe(1);
    run(g, 'burst', 2_000, { concurrency: 60 });
    expect(stat('burst').panic).toBe(true);
    expect(stat('burst').reason).toBe('panic');
    const peak = stat('burst').desired;
    expect(peak).toBeGreaterThanOrEqual(3);
    // The burst ends: still panicking for a while, and the count does not drop.
    const quiet = run(g, 'burst', 10_000, { concurrency: 5 });
    expect(Math.min(...quiet)).toBeGreaterThanOrEqual(peak);
    run(g, 'burst', 40_000, { concurrency: 5 });
    expect(stat('burst').panic).toBe(false);
    expect(stat('burst').desired).toBe(1);
  });

  it('scales down only after scaleDownDelay', async () => {
    const g = await fn('delay', { scale: { target: 10, stableWindow: '6s', scaleDownDelay: '30s', minScale: 1 } });
    run(g, 'delay', 10_000, { concurrency: 28 });
    expect(stat('delay').desired).toBe(4);
    const down = run(g, 'delay', 20_000, { concurrency: 5 });
    expect(Math.min(...down)).toBe(4);
    run(g, 'delay', 20_000, { concurrency: 5 });
    // Down at most by half per decision (maxScaleDownRate 2), and each lower count is itself held for the delay: 4, 2, 1.
    expect(stat('delay').desired).toBe(2);
    const last = run(g, 'delay', 40_000, { concurrency: 5 });
    expect(last.slice(0, 10).every((n) => n === 2)).toBe(true);
    expect(stat('delay').desired).toBe(1);
  });

  it('goes to zero after a quiet stable window plus the grace period, closing the gate, and a request activates it at once', async () => {
    const g = await fn('zero', { scale: { stableWindow: '6s', scaleToZeroGracePeriod: '10s' } });
    run(g, 'zero', 4_000, { requests: 3, concurrency: 0.2 });
    expect(stat('zero').desired).toBe(1);
    expect(g.ready).toBe(true);
    const quiet = run(g, 'zero', 14_000, {});
    // The stable window empties after 6 s; the last replica stays for the 10 s grace after that.
    expect(quiet.slice(0, 5).every((n) => n === 1)).toBe(true);
    run(g, 'zero', 10_000, {});
    expect(stat('zero').desired).toBe(0);
    expect(g.ready).toBe(false);
    await expect.poll(async () => (await events('zero')).some((e) => e.reason === 'ScaledDown' && /1 → 0/.test(String(e.message)))).toBe(true);
    // The gateway's activator calls the owner: the replica is there before the call returns.
    expect(gates.owner!.activate('default/zero')).toBeUndefined();
    expect(wasm.replicas.get('default/zero')).toBe(1);
    expect(g.ready).toBe(true);
    expect(stat('zero').reason).toBe('activation');
  });

  it('keeps to minScale and maxScale and says which bound decided', async () => {
    const g = await fn('bounds', { scale: { target: 10, stableWindow: '6s', minScale: 2, maxScale: 3 } });
    run(g, 'bounds', 8_000, { concurrency: 500 });
    expect(stat('bounds').desired).toBe(3);
    expect(stat('bounds').reason).toBe('maxScale');
    run(g, 'bounds', 80_000, {});
    expect(stat('bounds').desired).toBe(2);
    expect(stat('bounds').reason).toBe('minScale');
  });

  it('applies HPA behavior policies: one pod per 15 s up, whatever the metric asks', async () => {
    const g = await fn('behave', {
      scale: { class: 'hpa', target: 10, minScale: 1, behavior: { scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 1, periodSeconds: 15 }] } } },
    });
    run(g, 'behave', 4_000, { concurrency: 5 });
    expect(stat('behave').desired).toBe(1);
    const seq = run(g, 'behave', 30_000, { concurrency: 70 });
    // At most one more replica in any 15 s.
    expect(seq.at(-1)).toBeLessThanOrEqual(3);
    expect(seq.at(-1)).toBeGreaterThanOrEqual(2);
    for (let i = 8; i < seq.length; i++) expect(seq[i]! - seq[i - 8]!).toBeLessThanOrEqual(1);
  });

  it('follows a cron trigger at the scheduled minute', async () => {
    // 09:00 now; the window opens at 10:30 UTC.
    const g = await fn('cron', { scale: { triggers: [{ type: 'cron', metadata: { timezone: 'UTC', start: '30 10 * * *', end: '0 11 * * *', desiredReplicas: '4' } }] } });
    clock.set(Date.UTC(2026, 11, 7, 10, 29, 0));
    await autoscaler.refreshExternal();
    run(g, 'cron', 2_000, {});
    expect(stat('cron').desired).toBeLessThanOrEqual(1);
    clock.set(Date.UTC(2026, 11, 7, 10, 30, 0));
    await autoscaler.refreshExternal();
    run(g, 'cron', 2_000, {});
    expect(stat('cron').desired).toBe(4);
    expect(stat('cron').reason).toBe('cron');
    clock.set(Date.UTC(2026, 11, 7, 11, 0, 0));
    await autoscaler.refreshExternal();
    const after = run(g, 'cron', 120_000, {});
    expect(after.at(-1), `replicas after the window closed: ${after.join(' ')}; ${stat('cron').reason}`).toBe(0);
  });

  it('holds spec.replicas when set (the scale subresource), and refuses to activate a Function scaled to 0 by hand', async () => {
    const g = await fn('fixed', { replicas: 3 });
    run(g, 'fixed', 4_000, { concurrency: 100 });
    expect(stat('fixed').desired).toBe(3);
    expect(stat('fixed').reason).toBe('fixed');
    await resources.patch(fnDef, 'default', 'fixed', { spec: { replicas: 0 } });
    await expect.poll(() => {
      run(g, 'fixed', 2_000, {});
      return stat('fixed').desired;
    }).toBe(0);
    expect(gates.owner!.activate('default/fixed')).toMatch(/spec.replicas is 0/);
  });

  it('pre-warms ahead of a predicted daily spike that reactive scaling would meet cold', async () => {
    const g = await fn('timer', { scale: { predictive: { enabled: true }, stableWindow: '6s', scaleToZeroGracePeriod: '6s' } });
    // Two weeks of a job that calls the Function 30 times at 12:00 UTC every day and never otherwise.
    const h = new RequestHistory();
    const day = 24 * 3600_000;
    const start = Date.UTC(2026, 10, 23);
    for (let d = 0; d < 14; d++) h.add(start + d * day + 12 * 3600_000, 30);
    autoscaler.seedHistory('default', 'timer', h);
    clock.set(Date.UTC(2026, 11, 7, 11, 30, 0));
    run(g, 'timer', 60_000, {});
    expect(stat('timer').desired).toBe(0);
    clock.set(Date.UTC(2026, 11, 7, 11, 56, 0));
    run(g, 'timer', 60_000, {});
    expect(stat('timer').desired).toBeGreaterThanOrEqual(1);
    expect(stat('timer').reason).toBe('predicted');
  });

  it('forgets a deleted Function and sends its waiting requests away through the gateway', async () => {
    await fn('gone', {});
    await resources.delete(fnDef, 'default', 'gone');
    await expect.poll(() => gates.removed.includes('default/gone')).toBe(true);
    expect(autoscaler.stats().some((s) => s.name === 'gone')).toBe(false);
  });
});
