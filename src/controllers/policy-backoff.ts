/** PolicyBackoffOptions tune when a policy that keeps missing its deadline is short-circuited. */
export interface PolicyBackoffOptions {
  /** deadline failures within `windowMs` that start a back-off (default 3) */
  threshold?: number;
  windowMs?: number;
  /** first back-off (default 5 s); a policy that fails again right after one gets twice as long, up to `maxMs` (60 s) */
  baseMs?: number;
  maxMs?: number;
}

interface State {
  failures: number[];
  openUntil: number;
  backoffMs: number;
  /** a back-off has ended and no decision has succeeded since: one more failure starts the next */
  probation: boolean;
}

/**
 * PolicyBackoff bounds how much of the gateway's thread one policy can take: evaluation is synchronous,
 * so a policy that runs to its deadline on every request holds every other request for that long. After
 * `threshold` deadline failures within `windowMs`, the policy's decisions fail closed without being
 * evaluated for a back-off period; once that ends, a single further failure starts the next, twice as
 * long, and a success clears the record.
 */
export class PolicyBackoff {
  private readonly state = new Map<string, State>();
  private readonly threshold: number;
  private readonly windowMs: number;
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(opts: PolicyBackoffOptions = {}) {
    this.threshold = opts.threshold ?? 3;
    this.windowMs = opts.windowMs ?? 10_000;
    this.baseMs = opts.baseMs ?? 5_000;
    this.maxMs = opts.maxMs ?? 60_000;
  }

  /** blockedFor is how long the policy's back-off still lasts (0: evaluate it). */
  blockedFor(policy: string, now: number): number {
    if (!this.state.size) return 0;
    const s = this.state.get(policy);
    return s && now < s.openUntil ? s.openUntil - now : 0;
  }

  /** failed records a deadline failure; it returns the length of the back-off it starts, or 0. */
  failed(policy: string, now: number): number {
    let s = this.state.get(policy);
    if (!s) this.state.set(policy, (s = { failures: [], openUntil: 0, backoffMs: 0, probation: false }));
    if (s.probation) {
      s.backoffMs = Math.min(s.backoffMs * 2, this.maxMs);
    } else {
      s.failures = s.failures.filter((t) => now - t < this.windowMs);
      s.failures.push(now);
      if (s.failures.length < this.threshold) return 0;
      s.backoffMs = this.baseMs;
    }
    s.failures = [];
    s.openUntil = now + s.backoffMs;
    s.probation = true;
    return s.backoffMs;
  }

  /** succeeded clears a policy's record (only when it has one: the common case is one map size read). */
  succeeded(policy: string): void {
    if (this.state.size) this.state.delete(policy);
  }

  /** clear forgets every record (the policies changed: each gets a fresh chance). */
  clear(): void {
    this.state.clear();
  }
}
