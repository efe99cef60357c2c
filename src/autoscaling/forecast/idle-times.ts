/**
 * The idle-time side of prediction, for Functions called too rarely for a rate forecast to be
 * trusted (a Poisson trickle keeps any rate forecast's error high). It follows the hybrid histogram
 * policy of Shahrad et al. ("Serverless in the Wild", ATC 2020): the distribution of idle times
 * between a Function's calls says when the next call is likely, so a replica is brought up a little
 * before the early end of that distribution (its 5th percentile) and kept until its late end (the
 * 99th), instead of being kept for a fixed time after every call.
 */

/** IdleWindow is when, after a Function's last request, a replica should be warm. */
export interface IdleWindow {
  /** Warm from this long after the last request (ms)... */
  fromMs: number;
  /** ...until this long after it (ms). */
  toMs: number;
  /** Idle periods the window was drawn from. */
  samples: number;
}

/** Width of one bin of the idle-time histogram. */
const BIN_MS = 60_000;
/** Bins kept: idle times up to four hours; longer ones count as out of bounds. */
const BINS = 240;
/** Past this many recorded idle periods, every count is halved: recent behaviour weighs more. */
const MAX_TOTAL = 4096;

/**
 * IdleHistogram counts a Function's idle times (from the end of one busy moment to the next
 * request) in one-minute bins up to four hours, as the hybrid histogram policy does; its `window`
 * says when to have a replica warm after the last request. It is small (a few hundred numbers) and
 * is stored with the Function's request history.
 */
export class IdleHistogram {
  private readonly bins = new Array<number>(BINS).fill(0);
  private outOfBounds = 0;
  private total = 0;
  /** The last window chosen, valid until the next add (the autoscaler asks every tick). */
  private memo?: { key: string; w: IdleWindow | undefined };

  /** add records one idle period of `ms` milliseconds. */
  add(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    this.memo = undefined;
    const b = Math.floor(ms / BIN_MS);
    if (b >= BINS) this.outOfBounds++;
    else this.bins[b]!++;
    if (++this.total > MAX_TOTAL) this.halve();
  }

  get samples(): number {
    return this.total;
  }

  /**
   * window chooses when to be warm after the last request. Candidate windows run from a low
   * percentile of the idle times to a high one (the hybrid histogram policy's 5th to 99th among
   * them), or are plain keep-alives; each is replayed over the recorded idle periods, counting the
   * replica time it costs and the requests it would have met cold (a replica is there anyway for
   * `holdMs` after each request: reactive scaling's stable window and grace). Of the windows that meet
   * no more requests cold than a keep-alive of `keepAliveMs` would have, the one with the least
   * replica time wins: never worse than that keep-alive on the Function's own history, and cheaper
   * whenever its idle times have a shape. Undefined with too few idle periods to judge.
   */
  window(opts: { holdMs: number; keepAliveMs: number; minSamples?: number }): IdleWindow | undefined {
    const key = `${opts.holdMs}/${opts.keepAliveMs}/${opts.minSamples}`;
    if (this.memo?.key === key) return this.memo.w;
    const w = this.choose(opts);
    this.memo = { key, w };
    return w;
  }

  private choose(opts: { holdMs: number; keepAliveMs: number; minSamples?: number }): IdleWindow | undefined {
    const inBounds = this.total - this.outOfBounds;
    if (inBounds < (opts.minSamples ?? 10)) return undefined;
    const pct = (p: number) => {
      const want = Math.max(1, Math.ceil((p / 100) * inBounds));
      let seen = 0;
      for (let i = 0; i < BINS; i++) {
        seen += this.bins[i]!;
        if (seen >= want) return i;
      }
      return BINS - 1;
    };
    const hold = opts.holdMs;
    // Replays a window [from, to] over the idle periods: a replica is warm for [0, hold] and
    // [from, to] after each request; the cost is the warm time up to the next request, and that
    // request is cold when it falls in neither.
    const replay = (from: number, to: number): { warm: number; cold: number } => {
      const start = Math.max(from, hold);
      let warm = 0;
      let cold = 0;
      const one = (idle: number, n: number) => {
        warm += n * (Math.min(idle, hold) + Math.max(0, Math.min(idle, to) - start));
        if (idle > hold && !(idle >= from && idle <= to)) cold += n;
      };
      for (let i = 0; i < BINS; i++) if (this.bins[i]) one((i + 0.5) * BIN_MS, this.bins[i]!);
      if (this.outOfBounds > 0) one(Infinity, this.outOfBounds);
      return { warm, cold };
    };
    // The windows that are no worse than the reference keep-alive on both counts; of those, the one
    // that costs least when a cold start is weighed as the reference's keep-alive time (what the
    // reference would spend to avoid one). In this order, so that ties go to less warm time.
    const reference = replay(0, opts.keepAliveMs);
    const weight = opts.keepAliveMs;
    let best: { from: number; to: number; cost: number } | undefined;
    const consider = (from: number, to: number) => {
      const r = replay(from, to);
      if (r.cold > reference.cold || r.warm > reference.warm) return;
      const cost = r.warm + weight * r.cold;
      if (!best || cost < best.cost - 1e-6) best = { from, to, cost };
    };
    // No window: only what reactive scaling holds.
    consider(-1, -1);
    for (const lo of [25, 10, 5, 1, 0]) {
      // A bin holds idle times from its start to its end: the low end from the bin's start (less a margin), the high end from its end (plus a margin).
      const from = lo === 0 ? 0 : 0.9 * pct(lo) * BIN_MS;
      for (const hi of [25, 50, 75, 90, 95, 99, 100]) consider(from, 1.1 * (pct(hi) + 1) * BIN_MS);
    }
    for (const minutes of [5, 10, 15, 20, 30, 45, 60]) consider(0, Math.min(minutes * BIN_MS, minutes === 10 ? opts.keepAliveMs : Infinity));
    if (!best || best.to < 0) return undefined;
    return { fromMs: best.from, toMs: best.to, samples: inBounds };
  }

  /** encode is the histogram as a short text (JSON of the non-empty bins). */
  encode(): string {
    const bins: Record<string, number> = {};
    for (let i = 0; i < BINS; i++) if (this.bins[i]) bins[i] = this.bins[i]!;
    return JSON.stringify({ v: 1, bins, oob: this.outOfBounds });
  }

  /** decode reads `encode`'s text; anything else gives an empty histogram (it is rebuilt from traffic). */
  static decode(text: string): IdleHistogram {
    const h = new IdleHistogram();
    try {
      const o = JSON.parse(text) as { v?: number; bins?: Record<string, unknown>; oob?: unknown };
      if (o.v !== 1 || typeof o.bins !== 'object' || o.bins === null) return h;
      for (const [k, v] of Object.entries(o.bins)) {
        const i = Number(k);
        if (Number.isInteger(i) && i >= 0 && i < BINS && typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= MAX_TOTAL) {
          h.bins[i] = v;
          h.total += v;
        }
      }
      if (typeof o.oob === 'number' && Number.isInteger(o.oob) && o.oob > 0 && o.oob <= MAX_TOTAL) {
        h.outOfBounds = o.oob;
        h.total += o.oob;
      }
      while (h.total > MAX_TOTAL) h.halve();
    } catch {
      return new IdleHistogram();
    }
    return h;
  }

  private halve(): void {
    this.total = 0;
    for (let i = 0; i < BINS; i++) {
      this.bins[i] = Math.floor(this.bins[i]! / 2);
      this.total += this.bins[i]!;
    }
    this.outOfBounds = Math.floor(this.outOfBounds / 2);
    this.total += this.outOfBounds;
  }
}
