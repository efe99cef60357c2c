/**
 * FailureLimiter slows guessing of the join secret: after each failure from a source (an IP address)
 * the next attempt from it must wait twice as long as the last, from `baseMs` up to `maxMs`, and an
 * attempt made before then is refused without being checked. A success clears the source. Sources
 * are forgotten once their wait is long over, and at most `maxSources` are remembered (the oldest go),
 * so the table cannot grow without bound.
 */
export class FailureLimiter {
  private readonly failures = new Map<string, { count: number; until: number }>();
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly maxSources: number;
  private readonly now: () => number;

  constructor(opts: { baseMs?: number; maxMs?: number; maxSources?: number; now?: () => number } = {}) {
    this.baseMs = opts.baseMs ?? 500;
    this.maxMs = opts.maxMs ?? 60_000;
    this.maxSources = opts.maxSources ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** retryAfterMs is how long `source` must still wait: 0 when it may try now. */
  retryAfterMs(source: string): number {
    const f = this.failures.get(source);
    if (!f) return 0;
    return Math.max(0, f.until - this.now());
  }

  /** failed records a failed attempt and returns the wait now imposed on the source. */
  failed(source: string): number {
    const now = this.now();
    const prev = this.failures.get(source);
    const count = (prev?.count ?? 0) + 1;
    const wait = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(count - 1, 30));
    this.failures.delete(source);
    this.failures.set(source, { count, until: now + wait });
    this.prune(now);
    return wait;
  }

  /** succeeded forgets the source's failures. */
  succeeded(source: string): void {
    this.failures.delete(source);
  }

  private prune(now: number): void {
    for (const [k, f] of this.failures) {
      if (this.failures.size <= this.maxSources && f.until + this.maxMs > now) break;
      this.failures.delete(k);
    }
  }
}
