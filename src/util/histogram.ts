/**
 * Upper bounds in microseconds for durations measured on the platform's own paths (policy evaluation,
 * sandbox runs, reconciles): from a few microseconds to a minute, roughly ×2.5 apart.
 */
export const DURATION_BUCKETS_US: readonly number[] = [
  5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/**
 * DurationHistogram counts durations into fixed buckets. Areas keep one per labelled series and
 * update it on their own paths; an exporter copies the counts out at read time, so recording costs a
 * short loop and no allocation.
 */
export class DurationHistogram {
  /** Per-bucket counts (not cumulative); the last one is the +Inf bucket. */
  readonly counts: Float64Array;
  count = 0;
  sumUs = 0;

  constructor(readonly boundsUs: readonly number[] = DURATION_BUCKETS_US) {
    this.counts = new Float64Array(boundsUs.length + 1);
  }

  observe(us: number): void {
    const b = this.boundsUs;
    let i = 0;
    while (i < b.length && us > b[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sumUs += us;
  }
}
