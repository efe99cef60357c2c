import { describe, expect, it } from 'vitest';

import { ManualClock } from '../../src/autoscaling/clock.js';
import { Predictor, PredictorError, RequestHistory } from '../../src/autoscaling/forecast/index.js';

import { gaussian } from './series.js';

const B = 5 * 60_000;
const DAY_B = 288;
const WEEK_B = 7 * DAY_B;
const T0 = Date.UTC(2026, 10, 2); // a Monday, midnight UTC

// Requests per five-minute bucket: busy weekday afternoons, quiet nights, quieter weekends.
function mean(b: number): number {
  const day = Math.floor(b / DAY_B) % 7;
  const x = (b % DAY_B) / DAY_B;
  return 600 * (1 + 0.8 * Math.sin(2 * Math.PI * (x - 0.35))) * (day >= 5 ? 0.5 : 1) + 30;
}

// Feeds `buckets` buckets through observe, one add per minute, asking for a forecast once per bucket
// as the autoscaler would; returns the forecasts made at the start of each bucket.
function run(p: Predictor, clock: ManualClock, from: number, buckets: number, count: (b: number) => number, horizonMs = B) {
  const seen = [];
  for (let b = from; b < from + buckets; b++) {
    clock.set(T0 + b * B);
    seen.push({ b, f: p.forecast(clock.now(), horizonMs) });
    const total = count(b);
    for (let m = 0; m < 5; m++) {
      clock.set(T0 + b * B + m * 60_000);
      p.observe(clock.now(), m < 4 ? Math.floor(total / 5) : total - 4 * Math.floor(total / 5));
    }
  }
  clock.set(T0 + (from + buckets) * B);
  return seen;
}

function seededHistory(buckets: number, count: (b: number) => number): RequestHistory {
  const h = new RequestHistory();
  for (let b = 0; b < buckets; b++) h.add(T0 + b * B, count(b));
  return h;
}

describe('Predictor', () => {
  it('says nothing before any request, then grows from no model to Holt to seasonal as history builds', () => {
    const clock = new ManualClock(T0);
    const p = new Predictor(new RequestHistory());
    expect(p.forecast(clock.now(), 30_000)).toBeUndefined();
    p.observe(clock.now(), 300);
    const first = p.forecast(clock.now() + 1000, 30_000)!;
    expect(first).toMatchObject({ model: 'none', usable: false, error: 2 });
    clock.advance(B);
    // one complete bucket of 300 requests: persistence, 1 req/s
    expect(p.forecast(clock.now(), 30_000)).toMatchObject({ model: 'none', usable: false, rate: 1, expected: 30 });
    const g = gaussian(1);
    run(p, clock, 1, 20, () => Math.round(300 + 10 * g()));
    const holt = p.forecast(clock.now(), B)!;
    expect(holt.model).toBe('holt');
    expect(holt.usable).toBe(false); // accurate, but two days of history are needed
    expect(holt.error).toBeLessThan(0.1);
    expect(holt.rate).toBeGreaterThan(0.9);
    expect(holt.rate).toBeLessThan(1.1);
  });

  it('forecasts a seasonal Function from a stored history and tracks its live one-step error', () => {
    const g = gaussian(2);
    const count = (b: number) => Math.max(0, Math.round(mean(b) * (1 + 0.05 * g())));
    const history = RequestHistory.decode(seededHistory(2 * WEEK_B, count).encode());
    const clock = new ManualClock(T0 + 2 * WEEK_B * B);
    // Hourly refits keep the test quick; in between, the model moves on with online updates.
    const p = new Predictor(history, { nextBuckets: 4, refitMs: 60 * 60_000 });
    const f = p.forecast(clock.now(), B)!;
    expect(f.model).toBe('double-seasonal');
    expect(f.usable).toBe(true);
    // seeded from the in-sample errors of the last day until live ones arrive
    expect(f.error).toBeGreaterThan(0);
    expect(f.error).toBeLessThan(0.1);
    expect(f.next).toHaveLength(4);
    expect(f.expected).toBeCloseTo(f.next[0]! * 300, 6);
    expect(f.rate).toBeCloseTo(f.expected / 300, 6);
    expect(f.pWarm).toBeCloseTo(1, 6);
    expect(Math.abs(f.expected - mean(2 * WEEK_B)) / mean(2 * WEEK_B)).toBeLessThan(0.15);

    // a live Monday: every bucket's forecast is scored against what came
    const seen = run(p, clock, 2 * WEEK_B, DAY_B, count);
    for (const { b, f } of seen) {
      expect(f!.usable).toBe(true);
      expect(Math.abs(f!.expected - mean(b)) / mean(b)).toBeLessThan(0.3);
    }
    const after = p.forecast(clock.now(), B)!;
    expect(after.error).toBeLessThan(0.1);
    expect(after.usable).toBe(true);
  });

  it('refits at most every refitMs of the injected clock', () => {
    const count = (b: number) => Math.round(mean(b));
    const p = new Predictor(seededHistory(3 * DAY_B, count), { refitMs: 15 * 60_000 });
    const clock = new ManualClock(T0 + 3 * DAY_B * B);
    p.forecast(clock.now(), B);
    const fittedAt = p.fitted!.fittedAt;
    expect(fittedAt).toBe(clock.now());
    expect(p.fitted!.kind).toBe('single-seasonal');
    run(p, clock, 3 * DAY_B, 2, count); // ten minutes, two forecasts
    expect(p.fitted!.fittedAt).toBe(fittedAt);
    run(p, clock, 3 * DAY_B + 2, 2, count); // the first forecast of these is fifteen minutes after the fit
    expect(p.fitted!.fittedAt).toBe(fittedAt + 15 * 60_000);
  });

  it('turns unusable when the traffic stops following the model, and usable again once it fits', () => {
    const g = gaussian(3);
    const seasonal = (b: number) => Math.max(0, Math.round(mean(b) * (1 + 0.05 * g())));
    const p = new Predictor(seededHistory(2 * WEEK_B, seasonal), { maxError: 0.5, refitMs: 60 * 60_000 });
    const clock = new ManualClock(T0 + 2 * WEEK_B * B);
    expect(p.forecast(clock.now(), B)!.usable).toBe(true);
    // a day of on/off bursts unrelated to the season
    let x = 7;
    const bursts = () => {
      x = (x * 69069 + 1) >>> 0;
      return x % 7 === 0 ? 20_000 : 0;
    };
    const seen = run(p, clock, 2 * WEEK_B, DAY_B, bursts);
    const f = p.forecast(clock.now(), B)!;
    expect(f.error).toBeGreaterThan(0.5);
    expect(f.usable).toBe(false);
    expect(seen.some(({ f }) => !f!.usable)).toBe(true);
    // the error window is a day: a day after the traffic is back to its usual shape, the forecast is trusted again
    run(p, clock, 2 * WEEK_B + DAY_B, DAY_B + 1, seasonal);
    const back = p.forecast(clock.now(), B)!;
    expect(back.error).toBeLessThan(0.2);
    expect(back.usable).toBe(true);
  });

  it('spreads the forecast over the horizon: a fraction of a bucket, or several', () => {
    const p = new Predictor(seededHistory(3 * DAY_B, () => 300), { minHistoryMs: 0 });
    const now = T0 + 3 * DAY_B * B + 60_000; // a minute into a bucket
    const short = p.forecast(now, 30_000)!;
    expect(short.expected).toBeCloseTo(30, 3);
    expect(short.rate).toBeCloseTo(1, 3);
    expect(short.pWarm).toBeCloseTo(1 - Math.exp(-30), 9);
    const long = p.forecast(now, 12 * 60_000)!; // crosses into the third bucket
    expect(long.expected).toBeCloseTo(720, 1);
    expect(long.usable).toBe(true);
  });

  it('gives a rare Function a small probability of a request, and does not trust it', () => {
    // one request every ~8 hours, at no fixed time
    const at = new Set<number>();
    let x = 11;
    for (let b = 0; b < 2 * WEEK_B; b += 80 + (x % 40)) {
      x = (x * 69069 + 1) >>> 0;
      at.add(b);
    }
    const p = new Predictor(seededHistory(2 * WEEK_B, (b) => (at.has(b) ? 1 : 0)));
    const f = p.forecast(T0 + 2 * WEEK_B * B, 30_000)!;
    expect(f.pWarm).toBeGreaterThanOrEqual(0);
    expect(f.pWarm).toBeLessThan(0.05);
    expect(f.usable).toBe(false);
    expect(f.error).toBeGreaterThan(0.5);
  });

  it('refits instead of replaying a gap longer than its error window', () => {
    const count = (b: number) => Math.round(mean(b));
    const p = new Predictor(seededHistory(3 * DAY_B, count), { errorWindowMs: 60 * 60_000 });
    const clock = new ManualClock(T0 + 3 * DAY_B * B);
    p.forecast(clock.now(), B);
    const first = p.fitted!.fittedAt;
    clock.advance(2 * 60 * 60_000); // two hours without a single request or tick
    p.observe(clock.now(), 5);
    expect(p.fitted).toBeUndefined();
    const f = p.forecast(clock.now(), B)!;
    expect(p.fitted!.fittedAt).toBeGreaterThan(first);
    expect(Number.isFinite(f.expected)).toBe(true);
  });

  it('refuses bad options with a coded error', () => {
    const h = new RequestHistory();
    expect(() => new Predictor(h, { seasonsMs: [7 * 60_000] })).toThrow(PredictorError);
    expect(() => new Predictor(h, { maxError: -1 })).toThrow(expect.objectContaining({ code: 'invalid_option' }));
    h.add(T0, 1);
    expect(() => new Predictor(h).forecast(T0, 0)).toThrow(expect.objectContaining({ code: 'invalid_option' }));
  });
});
