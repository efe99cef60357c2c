import { describe, expect, it } from 'vitest';

import { ManualClock } from '../../src/autoscaling/clock.js';
import { type KpaRecommendation, KpaScaler } from '../../src/autoscaling/kpa.js';
import { resolveScalePolicy, type ScaleSpec } from '../../src/autoscaling/policy.js';

const S = 1000;
const policy = (scale: ScaleSpec) => resolveScalePolicy(scale, { defaultMinScale: 0 });

/**
 * drive runs one sample and one decision per second for `seconds`, as the controller would; `ready`
 * is the replicas ready at each decision (by default the last recommendation, as if replicas started at once).
 */
function drive(kpa: KpaScaler, clock: ManualClock, seconds: number, value: (t: number) => number, ready?: (last: number) => number, start = { ready: 0 }) {
  const out: Array<{ t: number; ready: number; r: KpaRecommendation }> = [];
  let last = start.ready;
  for (let i = 0; i < seconds; i++) {
    const t = clock.now();
    kpa.record(t, value(t));
    const rd = ready ? ready(last) : last;
    const r = kpa.recommend(t, rd);
    out.push({ t, ready: rd, r });
    last = r.desired;
    clock.advance(S);
  }
  start.ready = last;
  return out;
}

describe('KpaScaler', () => {
  it('follows a step of concurrency to the right count within one stable window, without panic', () => {
    // target 10 at 70 %: 7 in flight per replica.
    const kpa = new KpaScaler(policy({ target: 10 }));
    const clock = new ManualClock();
    const state = { ready: 4 };
    const before = drive(kpa, clock, 60, () => 28, undefined, state);
    expect(before.at(-1)!.r.desired).toBe(4);
    const T = clock.now();
    const after = drive(kpa, clock, 60, () => 49, undefined, state);
    const at = (k: number) => after.find((x) => x.t === T + k * S)!.r;
    expect(after.every((x) => !x.r.panic && x.r.reason === 'reactive')).toBe(true);
    // The stable average climbs bucket by bucket: 28 + 21 (k+1) / 60 in flight.
    expect(at(0).desired).toBe(5);
    expect(at(38).desired).toBe(6);
    expect(at(41).desired).toBe(7);
    expect(at(59)).toMatchObject({ desired: 7, stable: 49, panicValue: 49 });
    const counts = after.map((x) => x.r.desired);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
  });

  it('panics on a burst: enters, holds the highest count, and leaves a stable window after the last trigger', () => {
    const kpa = new KpaScaler(policy({ target: 10 }));
    const clock = new ManualClock();
    const state = { ready: 2 };
    drive(kpa, clock, 60, () => 14, undefined, state);
    expect(state.ready).toBe(2);
    const T = clock.now();
    const burst = drive(kpa, clock, 10, () => 140, undefined, state);
    // At T the panic window holds five buckets of 14 and one of 140: 35 in flight, 5 replicas against 2 ready.
    expect(burst[0]!.r).toMatchObject({ panic: true, reason: 'panic', desired: 5, panicValue: 35 });
    expect(burst.at(-1)!.r.desired).toBe(20);
    const calm = drive(kpa, clock, 70, () => 14, undefined, state);
    const during = calm.filter((x) => x.t <= T + 60 * S);
    expect(during.every((x) => x.r.panic && x.r.desired === 20)).toBe(true);
    // Ready replicas grew faster than the panic count after T, so T was the last time the condition held.
    const end = calm.find((x) => !x.r.panic)!;
    expect(end.t).toBe(T + 61 * S);
    expect(end.r.reason).toBe('reactive');
    expect(end.r.desired).toBeLessThan(20);
    // One decision removes at most half of the ready replicas (maxScaleDownRate 2).
    expect(end.r.desired).toBeGreaterThanOrEqual(10);
  });

  it('does not panic from zero ready replicas: the activator handles that', () => {
    const kpa = new KpaScaler(policy({ target: 10 }));
    kpa.record(0, 700);
    expect(kpa.recommend(0, 0)).toMatchObject({ desired: 100, panic: false, reason: 'reactive' });
  });

  it('scales down only once the lower count has been recommended for the whole scaleDownDelay', () => {
    const delayed = new KpaScaler(policy({ target: 10, scaleDownDelay: '30s' }));
    const plain = new KpaScaler(policy({ target: 10 }));
    const c1 = new ManualClock();
    const c2 = new ManualClock();
    const value = (t: number) => (t < 60 * S ? 70 : 0);
    const a = drive(delayed, c1, 120, value, () => 10);
    const b = drive(plain, c2, 120, value, () => 10);
    const firstBelow = (xs: typeof a) => xs.find((x) => x.t >= 60 * S && x.r.desired < 10)!;
    const rawDrop = firstBelow(b).t;
    expect(firstBelow(a).t).toBe(rawDrop + 30 * S);
    // From then on the delayed count is the highest of the plain counts of the last 30 s.
    for (const x of a.filter((y) => y.t >= rawDrop + 30 * S)) {
      const window = b.filter((y) => y.t >= x.t - 30 * S && y.t <= x.t).map((y) => y.r.desired);
      expect(x.r.desired).toBe(Math.max(...window));
    }
  });

  it('an increase applies at once even with a scaleDownDelay', () => {
    const kpa = new KpaScaler(policy({ target: 10, scaleDownDelay: '10m', panicThresholdPercentage: 1000 }));
    kpa.record(0, 7);
    expect(kpa.recommend(0, 1).desired).toBe(1);
    kpa.record(1000, 7 * 7);
    expect(kpa.recommend(1000, 1).desired).toBe(4);
  });

  it('limits each decision by maxScaleUpRate and maxScaleDownRate', () => {
    const up = (ready: number) => {
      const kpa = new KpaScaler(policy({ target: 10, maxScaleUpRate: 2 }));
      kpa.record(0, 700);
      return kpa.recommend(0, ready).desired;
    };
    expect(up(1)).toBe(2);
    expect(up(3)).toBe(6);
    // From zero the rate applies to one replica.
    expect(up(0)).toBe(2);
    const down = new KpaScaler(policy({ target: 10, maxScaleDownRate: 4 }));
    const clock = new ManualClock();
    const out = drive(down, clock, 61, () => 0, () => 10);
    expect(out.at(-1)!.r).toMatchObject({ desired: 2, stable: 0 });
  });

  it('goes to zero only after a whole stable window without traffic', () => {
    const kpa = new KpaScaler(policy({ target: 10 }));
    const clock = new ManualClock();
    const state = { ready: 1 };
    drive(kpa, clock, 60, () => 7, undefined, state);
    const T = clock.now();
    const quiet = drive(kpa, clock, 61, () => 0, () => 1);
    const at = (k: number) => quiet.find((x) => x.t === T + k * S)!.r;
    expect(at(0).desired).toBe(1);
    expect(at(58).desired).toBe(1);
    expect(at(59)).toMatchObject({ desired: 0, stable: 0, reason: 'reactive' });
  });

  it('a fresh scaler does not go to zero before it has watched a whole stable window', () => {
    const kpa = new KpaScaler(policy({ target: 10 }));
    const clock = new ManualClock();
    const out = drive(kpa, clock, 61, () => 0, () => 1);
    expect(out.find((x) => x.t === 59 * S)!.r.desired).toBe(1);
    expect(out.find((x) => x.t === 60 * S)!.r.desired).toBe(0);
    // With nothing ready there is nothing to keep.
    const idle = new KpaScaler(policy({ target: 10 }));
    idle.record(0, 0);
    expect(idle.recommend(0, 0).desired).toBe(0);
  });

  it('scales on requests per second with the rps metric (target 200 at 70 %)', () => {
    const kpa = new KpaScaler(policy({ metric: 'rps' }));
    const clock = new ManualClock();
    const out = drive(kpa, clock, 60, () => 1000, () => 8);
    expect(out.at(-1)!.r).toMatchObject({ desired: 8, stable: 1000, panic: false });
    const small = new KpaScaler(policy({ metric: 'rps', target: 50, targetUtilization: 100 }));
    small.record(0, 120);
    expect(small.recommend(0, 3).desired).toBe(3);
  });

  it('answers noData with the ready count when there is no sample in the stable window', () => {
    const kpa = new KpaScaler(policy({ target: 10 }));
    expect(kpa.recommend(0, 3)).toEqual({ desired: 3, panic: false, stable: undefined, panicValue: undefined, reason: 'noData' });
    kpa.record(0, 70);
    expect(kpa.recommend(1000, 10).reason).toBe('reactive');
    expect(kpa.recommend(59_999, 10).reason).toBe('reactive');
    expect(kpa.recommend(60_000, 3)).toMatchObject({ desired: 3, reason: 'noData' });
    // A panic window without a sample falls back to the stable count.
    kpa.record(61_000, 70);
    expect(kpa.recommend(70_000, 10)).toMatchObject({ panicValue: undefined, stable: 70, desired: 10, panic: false });
  });

  it('averages samples within a second and weights seconds equally', () => {
    const kpa = new KpaScaler(policy({ target: 10, panicThresholdPercentage: 1000 }));
    kpa.record(0, 10);
    kpa.record(500, 30);
    kpa.record(1000, 70);
    expect(kpa.recommend(1000, 5).stable).toBe(45);
    expect(kpa.windowAverage(1000, 1000)).toBe(70);
    expect(kpa.windowAverage(5000, 2000)).toBeUndefined();
    kpa.record(2000, Number.NaN);
    kpa.record(2000, -5);
    expect(kpa.recommend(2000, 5).stable).toBe(45);
  });

  it('applies activationScale to a non-zero count', () => {
    const kpa = new KpaScaler(policy({ target: 10, activationScale: 3 }));
    kpa.record(0, 1);
    expect(kpa.recommend(0, 0).desired).toBe(3);
  });

  it('keeps its memory bounded by the windows', () => {
    const kpa = new KpaScaler(policy({ target: 10, scaleDownDelay: '1m' }));
    const clock = new ManualClock();
    drive(kpa, clock, 5000, (t) => (Math.floor(t / S) % 7) * 20, () => 10);
    const inner = kpa as any;
    expect(inner.ring.length).toBe(61);
    expect(inner.held.length).toBeLessThanOrEqual(61);
  });

  it('keeps the samples that fit when the policy changes', () => {
    const kpa = new KpaScaler(policy({ target: 10 }));
    const clock = new ManualClock();
    drive(kpa, clock, 30, (t) => (t < 20 * S ? 0 : 70), () => 10);
    kpa.update(policy({ target: 10, stableWindow: '10s' }));
    expect(kpa.recommend(29 * S, 10)).toMatchObject({ stable: 70, panic: false });
    // Growing the window back cannot bring back what the shorter one overwrote: eleven seconds are left.
    kpa.update(policy({ target: 35 }));
    expect(kpa.recommend(29 * S, 5)).toMatchObject({ stable: (70 * 10) / 11, desired: 3, panic: false });
  });
});
