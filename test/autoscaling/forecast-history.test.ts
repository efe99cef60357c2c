import { describe, expect, it } from 'vitest';

import { HistoryError, MAX_BUCKET_COUNT, RequestHistory } from '../../src/autoscaling/forecast/index.js';

const B = 5 * 60_000;
const T0 = Date.UTC(2026, 11, 7); // a fixed wall-clock start; the history only sees numbers

// A small deterministic generator so the busy history is the same every run.
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

describe('RequestHistory', () => {
  it('sums adds into buckets and returns only the complete ones, oldest first', () => {
    const h = new RequestHistory();
    h.add(T0 + 1_000, 3);
    h.add(T0 + 299_999, 2);
    h.add(T0 + B, 7);
    h.add(T0 + 2 * B + 5, 1); // the bucket in progress at the read below
    expect(h.series(T0 + 2 * B + 10)).toEqual({ start: T0, bucketMs: B, counts: [5, 7] });
    // once time moves on, the third bucket is complete too
    expect(h.series(T0 + 3 * B).counts).toEqual([5, 7, 1]);
    expect(h.series(T0).counts).toEqual([]);
  });

  it('fills gaps with zeros, up to now, including idle time after the last add', () => {
    const h = new RequestHistory();
    h.add(T0, 4);
    h.add(T0 + 3 * B, 2);
    expect(h.series(T0 + 6 * B).counts).toEqual([4, 0, 0, 2, 0, 0]);
  });

  it('keeps at most `capacity` buckets: old ones fall off the front', () => {
    const h = new RequestHistory({ bucketMs: 1000, capacity: 5 });
    for (let i = 0; i < 8; i++) h.add(i * 1000, i + 1);
    const s = h.series(8000);
    expect(s).toEqual({ start: 3000, bucketMs: 1000, counts: [4, 5, 6, 7, 8] });
    // an add into a bucket that fell off is dropped, not counted elsewhere
    h.add(500, 100);
    expect(h.series(8000).counts).toEqual([4, 5, 6, 7, 8]);
    // a read long after the last add is still bounded and all zeros
    expect(h.series(100_000)).toEqual({ start: 95_000, bucketMs: 1000, counts: [0, 0, 0, 0, 0] });
    // a gap longer than the window starts again
    h.add(1_000_000, 9);
    expect(h.series(1_001_000).counts).toEqual([9]);
  });

  it('refuses counts that are not integers >= 0 with a coded error', () => {
    const h = new RequestHistory();
    for (const bad of [-1, 1.5, NaN, Infinity]) {
      expect(() => h.add(T0, bad)).toThrow(expect.objectContaining({ code: 'invalid_count' }));
    }
    expect(() => h.add(NaN, 1)).toThrow(expect.objectContaining({ code: 'invalid_time' }));
    expect(() => new RequestHistory({ capacity: 0 })).toThrow(expect.objectContaining({ code: 'invalid_capacity' }));
    expect(() => new RequestHistory({ bucketMs: 0.5 })).toThrow(expect.objectContaining({ code: 'invalid_bucket' }));
  });

  it('saturates a bucket instead of losing exactness', () => {
    const h = new RequestHistory({ bucketMs: 1000, capacity: 4 });
    h.add(0, MAX_BUCKET_COUNT);
    h.add(0, 5);
    h.add(1000, 3);
    expect(h.series(2000).counts).toEqual([MAX_BUCKET_COUNT, 3]);
    expect(RequestHistory.decode(h.encode()).series(2000).counts).toEqual([MAX_BUCKET_COUNT, 3]);
  });

  it('round-trips through encode/decode, including runs, negative times and an empty history', () => {
    const h = new RequestHistory({ bucketMs: 60_000, capacity: 100 });
    const adds: Array<[number, number]> = [
      [-120_000, 1],
      [0, 0],
      [60_000, 10],
      [120_000, 10],
      [180_000, 10],
      [240_000, 3],
      [600_000, 123_456_789],
    ];
    for (const [t, c] of adds) h.add(t, c);
    const back = RequestHistory.decode(h.encode());
    expect(back.bucketMs).toBe(60_000);
    expect(back.capacity).toBe(100);
    expect(back.series(700_000)).toEqual(h.series(700_000));
    expect(back.encode()).toBe(h.encode());
    // the decoded history keeps accumulating where the original left off
    back.add(600_000, 1);
    expect(back.series(700_000).counts.at(-1)).toBe(123_456_790);

    const empty = RequestHistory.decode(new RequestHistory().encode());
    expect(empty.empty).toBe(true);
    expect(empty.series(T0).counts).toEqual([]);
  });

  it('encodes two weeks of a busy Function well under 32 KiB', () => {
    const h = new RequestHistory();
    const rnd = lcg(17);
    const n = 4032;
    for (let i = 0; i < n; i++) {
      const day = Math.sin((2 * Math.PI * (i % 288)) / 288);
      // around 3 000 req/s at the daily peak, with noise: counts near a million per bucket
      h.add(T0 + i * B, Math.round(500_000 * (1 + 0.8 * day) * (0.9 + 0.2 * rnd())));
    }
    const s = h.encode();
    expect(RequestHistory.decode(s).series(T0 + n * B)).toEqual(h.series(T0 + n * B));
    expect(s.length).toBeLessThan(16 * 1024);

    const quiet = new RequestHistory();
    for (let i = 0; i < n; i += 97) quiet.add(T0 + i * B, 1);
    quiet.add(T0 + (n - 1) * B, 0);
    expect(quiet.encode().length).toBeLessThan(512);
  });

  it('throws a HistoryError with code invalid_encoding for garbage', () => {
    const good = new RequestHistory();
    good.add(T0, 5);
    good.add(T0 + B, 6);
    const s = good.encode();
    const flipped = s.slice(0, -3) + (s.at(-3) === 'A' ? 'B' : 'A') + s.slice(-2);
    for (const bad of ['', 'hello', 'h1.', 'h1.!!!!', 'h2.' + s.slice(3), s.slice(0, -4), flipped, 'h1.AAAAAAAA']) {
      let err: unknown;
      try {
        RequestHistory.decode(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(HistoryError);
      expect((err as HistoryError).code).toBe('invalid_encoding');
      expect((err as HistoryError).message).toMatch(/request history does not decode/);
    }
  });
});
