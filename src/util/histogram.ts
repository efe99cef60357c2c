/**
 * Upper bounds in microseconds for durations measured on the platform's own paths (policy evaluation,
 * sandbox runs, reconciles): from a few microseconds to a minute, roughly ×2.5 apart.
 */
export const DURATION_BUCKETS_US: readonly number[] = [
  5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/** Upper bounds in bytes for memory sizes: a Wasm page (64 KiB) to 4 GiB, ×4 apart. */
export const SIZE_BUCKETS_BYTES: readonly number[] = [65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864, 268_435_456, 1_073_741_824, 4_294_967_296];

/**
 * BucketHistogram counts values into fixed buckets. Areas keep one per labelled series and update it
 * on their own paths; an exporter copies the counts out at read time, so recording costs a short loop
 * and no allocation.
 */
export class BucketHistogram {
  /** Per-bucket counts (not cumulative); the last one is the +Inf bucket. */
  readonly counts: Float64Array;
  count = 0;
  /** The sum of the observed values, in the bounds' unit. */
  sum = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sum += v;
  }
}

/** DurationHistogram counts durations in microseconds (DURATION_BUCKETS_US unless given other bounds). */
export class DurationHistogram extends BucketHistogram {
  constructor(bounds: readonly number[] = DURATION_BUCKETS_US) {
    super(bounds);
  }
}
