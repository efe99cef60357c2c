import { describe, expect, it } from 'vitest';

import { bucketCounts, generateTrace, Rng, type TraceFunction } from '../../bench/lib/serverless-trace.js';

const DAY = 24 * 60 * 60_000;
const MONDAY = Date.UTC(2026, 10, 2);

function total(fns: TraceFunction[]): number {
  return fns.reduce((s, f) => s + f.arrivals.length, 0);
}

// Pearson autocorrelation of xs at `lag`.
function autocorrelation(xs: number[], lag: number): number {
  const n = xs.length;
  const m = xs.reduce((s, x) => s + x, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    den += (xs[i]! - m) ** 2;
    if (i + lag < n) num += (xs[i]! - m) * (xs[i + lag]! - m);
  }
  return den === 0 ? 0 : num / den;
}

describe('generateTrace', () => {
  const trace = generateTrace({ seed: 42, functions: 200, days: 14, startMs: MONDAY });

  it('is the same for the same seed and differs for another', () => {
    const again = generateTrace({ seed: 42, functions: 200, days: 14, startMs: MONDAY });
    expect(again.map((f) => [f.name, f.pattern, f.arrivals.length])).toEqual(trace.map((f) => [f.name, f.pattern, f.arrivals.length]));
    for (let i = 0; i < trace.length; i += 17) expect(Array.from(again[i]!.arrivals)).toEqual(Array.from(trace[i]!.arrivals));
    const other = generateTrace({ seed: 43, functions: 200, days: 14, startMs: MONDAY });
    expect(other.map((f) => f.arrivals.length)).not.toEqual(trace.map((f) => f.arrivals.length));
    // a Function's stream depends on its index only: fewer Functions leave the first ones unchanged
    const fewer = generateTrace({ seed: 42, functions: 5, days: 14, startMs: MONDAY, maxArrivals: 20_000_000 });
    const more = generateTrace({ seed: 42, functions: 6, days: 14, startMs: MONDAY, maxArrivals: 20_000_000 });
    expect(Array.from(more[3]!.arrivals)).toEqual(Array.from(fewer[3]!.arrivals));
  });

  it('keeps arrivals sorted, inside the trace, and under the cap', () => {
    for (const f of trace) {
      let unsorted = 0;
      for (let i = 1; i < f.arrivals.length; i++) if (f.arrivals[i]! < f.arrivals[i - 1]!) unsorted++;
      expect(unsorted, f.name).toBe(0);
      if (f.arrivals.length > 0) {
        expect(f.arrivals[0]!).toBeGreaterThanOrEqual(0);
        expect(f.arrivals.at(-1)!).toBeLessThan(14 * DAY);
      }
    }
    expect(total(trace)).toBeLessThanOrEqual(1_000_000);
    const tight = generateTrace({ seed: 42, functions: 200, days: 14, maxArrivals: 20_000 });
    expect(total(tight)).toBeLessThanOrEqual(20_000);
    expect(total(tight)).toBeGreaterThan(10_000);
  });

  it('is skewed: the top 10 % of Functions carry most arrivals, and many are called less than hourly', () => {
    const sizes = trace.map((f) => f.arrivals.length).sort((a, b) => b - a);
    const top = sizes.slice(0, sizes.length / 10).reduce((s, x) => s + x, 0);
    expect(top / total(trace)).toBeGreaterThan(0.5);
    const belowHourly = trace.filter((f) => f.arrivals.length <= 14 * 24).length / trace.length;
    expect(belowHourly).toBeGreaterThan(0.3);
    expect(belowHourly).toBeLessThan(0.7);
    expect(new Set(trace.map((f) => f.pattern))).toEqual(new Set(['diurnal', 'bursty', 'rare', 'steady', 'timer']));
  });

  it('shows the daily period in the busy diurnal Functions', () => {
    const busy = trace.filter((f) => f.pattern === 'diurnal' && f.arrivals.length > 14 * 2000);
    expect(busy.length).toBeGreaterThan(0);
    for (const f of busy) {
      const hourly = bucketCounts(f.arrivals, 0, 3_600_000, 14 * 24);
      expect(autocorrelation(hourly, 24)).toBeGreaterThan(0.5);
      expect(autocorrelation(hourly, 24)).toBeGreaterThan(autocorrelation(hourly, 12) + 0.5);
    }
    // a steady Function has no such period
    const steady = trace.filter((f) => f.pattern === 'steady' && f.arrivals.length > 14 * 2000);
    for (const f of steady) expect(Math.abs(autocorrelation(bucketCounts(f.arrivals, 0, 3_600_000, 14 * 24), 24))).toBeLessThan(0.3);
  });

  it('gives rare Functions long idle gaps and gaps far more variable than a Poisson process', () => {
    const rare = trace.filter((f) => f.pattern === 'rare' && f.arrivals.length >= 30);
    expect(rare.length).toBeGreaterThan(3);
    const cvs: number[] = [];
    for (const f of rare) {
      const gaps = Array.from(f.arrivals.subarray(1), (t, i) => t - f.arrivals[i]!);
      const m = gaps.reduce((s, g) => s + g, 0) / gaps.length;
      const sd = Math.sqrt(gaps.reduce((s, g) => s + (g - m) ** 2, 0) / gaps.length);
      expect(Math.max(...gaps)).toBeGreaterThan(3_600_000);
      cvs.push(sd / m);
    }
    // Exponential gaps have a coefficient of variation of 1; a sample of a few dozen gaps is noisy,
    // so the typical Function is held to well above it and none to below it.
    cvs.sort((a, b) => a - b);
    expect(cvs[cvs.length >> 1]!).toBeGreaterThan(1.3);
    expect(cvs[0]!).toBeGreaterThan(1);
    // timers are the opposite: nearly constant gaps
    const timer = trace.find((f) => f.pattern === 'timer' && f.arrivals.length >= 100)!;
    const gaps = Array.from(timer.arrivals.subarray(1), (t, i) => t - timer.arrivals[i]!);
    expect(Math.max(...gaps) - Math.min(...gaps)).toBeLessThan(1000);
  });

  it('refuses bad options', () => {
    expect(() => generateTrace({ seed: 1.5, functions: 1, days: 1 })).toThrow(/seed/);
    expect(() => generateTrace({ seed: 1, functions: 0, days: 1 })).toThrow(/functions/);
    expect(() => generateTrace({ seed: 1, functions: 1, days: 0 })).toThrow(/days/);
    expect(() => generateTrace({ seed: 1, functions: 1, days: 1, maxArrivals: 1e9 })).toThrow(/maxArrivals/);
  });
});

describe('bucketCounts', () => {
  it('counts sorted arrivals into buckets from a start, ignoring what falls outside', () => {
    const a = Float64Array.from([5, 10, 10, 19, 20, 35, 60, 61]);
    expect(bucketCounts(a, 10, 10, 3)).toEqual([3, 1, 1]);
    expect(bucketCounts(a, 0, 100, 1)).toEqual([8]);
    expect(bucketCounts(a, 100, 10, 2)).toEqual([0, 0]);
    expect(bucketCounts([], 0, 10, 2)).toEqual([0, 0]);
    expect(() => bucketCounts(a, 0, 0, 1)).toThrow(/bucketMs/);
  });
});

describe('Rng', () => {
  it('is reproducible and roughly uniform', () => {
    const a = new Rng(9);
    const b = new Rng(9);
    const xs = Array.from({ length: 10_000 }, () => a.uniform());
    expect(Array.from({ length: 10_000 }, () => b.uniform())).toEqual(xs);
    expect(xs.every((x) => x > 0 && x < 1)).toBe(true);
    const m = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(m - 0.5)).toBeLessThan(0.02);
    const r = new Rng(9);
    const p = Array.from({ length: 5000 }, () => r.poisson(4));
    expect(Math.abs(p.reduce((s, x) => s + x, 0) / p.length - 4)).toBeLessThan(0.2);
  });
});
