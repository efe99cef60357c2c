// Knative's Pod Autoscaler, in our own code after Knative's documentation: the decision rules are the
// product, so no library stands in for them. Pure: time comes in as arguments, in milliseconds.
import type { ScalePolicy } from './policy.js';

/** KpaRecommendation is one decision of the KPA and the inputs it was made from. */
export interface KpaRecommendation {
  /** Replicas wanted now, before minScale/maxScale (the controller applies those, and scaleToZeroGracePeriod). */
  desired: number;
  /** Panic mode is on: the recommendation does not go down until it ends. */
  panic: boolean;
  /** The metric's average over the stable window; undefined without data. */
  stable: number | undefined;
  /** The metric's average over the panic window; undefined when that window holds no sample. */
  panicValue: number | undefined;
  reason: 'reactive' | 'panic' | 'noData';
  excessBurstCapacity?: number;
}

interface Bucket {
  sec: number;
  sum: number;
  count: number;
}

interface Held {
  t: number;
  n: number;
}

/**
 * KpaScaler is Knative's Pod Autoscaler for one Function.
 *
 * The caller `record`s the scaling metric about every second or two (the average in-flight requests
 * across the Function for `concurrency`, requests per second for `rps`) and asks `recommend` at each
 * pass. Samples land in one bucket per second; an average over a window weights each bucket that holds
 * a sample equally, and a window with no bucket means the metric is unknown (`noData`: keep the ready
 * count). Buckets older than the stable window are overwritten, so memory is bounded by the window.
 *
 * The decision, as Knative documents it:
 * - desired = ceil(average / (target × targetUtilization)) over the stable window, and likewise over the
 *   panic window;
 * - panic starts when the panic-window count reaches panicThreshold × the ready replicas (with at least
 *   one ready: from zero the activator handles the burst), and holds while the condition holds; while
 *   panicking the recommendation is the higher of the two counts and never goes below the highest it
 *   gave since panic began; panic ends once a full stable window has passed without the condition;
 * - one decision moves at most to ceil(maxScaleUpRate × ready) and at least to floor(ready / maxScaleDownRate);
 * - activationScale: a non-zero count is at least activationScale;
 * - scaleDownDelay: the recommendation is the highest of the last scaleDownDelay's recommendations, so a
 *   lower count applies once it has been recommended for the whole delay;
 * - zero is recommended only once a whole stable window has been observed without traffic (the stable
 *   average is then zero); before the scaler has watched a full window it keeps one replica.
 *
 * Not here, on purpose: minScale/maxScale (the controller bounds the recommendation, see `boundScale`,
 * and reports which bound applied) and scaleToZeroGracePeriod (after a 0 recommendation the controller
 * keeps the last replica another grace period, so the activator is in place before it goes).
 *
 * @example
 * const kpa = new KpaScaler(resolveScalePolicy(spec.scale, { defaultMinScale: 0 }));
 * kpa.record(clock.now(), inFlight);
 * const { desired, reason } = kpa.recommend(clock.now(), readyReplicas);
 */
export class KpaScaler {
  private policy: ScalePolicy;
  private ring: Array<Bucket | undefined> = [];
  private lastRecordAt: number | undefined;
  /** Start of the current unbroken run of samples: a zero needs the run to span a stable window. */
  private observedFrom: number | undefined;
  /** The last time the panic condition held; undefined when not panicking. */
  private panicAt: number | undefined;
  private maxPanic = 0;
  /** Raw recommendations of the scale-down delay, times increasing and counts strictly decreasing (a monotone queue). */
  private held: Held[] = [];

  constructor(policy: ScalePolicy) {
    this.policy = policy;
    this.ring = new Array<Bucket | undefined>(ringSize(policy.stableWindowMs));
  }

  /** update swaps the policy; samples that still fit the new stable window are kept. */
  update(policy: ScalePolicy): void {
    const old = this.ring;
    this.policy = policy;
    this.ring = new Array<Bucket | undefined>(ringSize(policy.stableWindowMs));
    for (const b of old) if (b) this.put(b);
    if (policy.scaleDownDelayMs <= 0) this.held = [];
  }

  /**
   * record adds one observation of the scaling metric at `now`. A negative or non-finite value is
   * ignored: it cannot be a count of requests. A sample older than the oldest bucket kept is dropped.
   */
  record(now: number, value: number): void {
    if (!Number.isFinite(value) || value < 0 || !Number.isFinite(now)) return;
    if (this.lastRecordAt === undefined || now - this.lastRecordAt >= this.policy.stableWindowMs) this.observedFrom = now;
    this.lastRecordAt = Math.max(this.lastRecordAt ?? now, now);
    this.put({ sec: Math.floor(now / 1000), sum: value, count: 1 });
  }

  private put(b: Bucket): void {
    const i = mod(b.sec, this.ring.length);
    const cur = this.ring[i];
    if (cur && cur.sec === b.sec) {
      cur.sum += b.sum;
      cur.count += b.count;
    } else if (!cur || cur.sec < b.sec) {
      this.ring[i] = { ...b };
    }
  }

  /**
   * windowAverage is the mean of the buckets of the window of `windowMs` (at most the stable window)
   * ending at `now`, undefined when it holds none; the `hpa` class reads its metric through it. A loop
   * over the ring rather than a running sum: a running sum drifts, and a drifted 1e-15 above zero would
   * never let a Function reach zero.
   */
  windowAverage(now: number, windowMs: number): number | undefined {
    const hi = Math.floor(now / 1000);
    const lo = Math.floor((now - windowMs) / 1000);
    let total = 0;
    let n = 0;
    for (const b of this.ring) {
      if (b && b.sec > lo && b.sec <= hi) {
        total += b.sum / b.count;
        n++;
      }
    }
    return n > 0 ? total / n : undefined;
  }

  /** recommend decides the replica count at `now` given the replicas ready to serve. */
  recommend(now: number, readyReplicas: number): KpaRecommendation {
    const p = this.policy;
    const ready = Math.max(0, Math.floor(readyReplicas));
    const stable = this.windowAverage(now, p.stableWindowMs);
    if (stable === undefined) return { desired: ready, panic: this.panicAt !== undefined, stable: undefined, panicValue: undefined, reason: 'noData' };
    const panicValue = this.windowAverage(now, p.panicWindowMs);

    const perReplica = p.target * p.targetUtilization;
    const rawStable = Math.ceil(stable / perReplica);
    // A panic window with no sample (a window shorter than the sampling period) says nothing new.
    const rawPanic = panicValue === undefined ? rawStable : Math.ceil(panicValue / perReplica);

    const readyAtLeastOne = Math.max(1, ready);
    const most = Math.ceil(p.maxScaleUpRate * readyAtLeastOne);
    const least = ready > 0 ? Math.floor(ready / p.maxScaleDownRate) : 0;
    const bounded = (raw: number) => {
      let n = Math.min(Math.max(raw, least), most);
      if (raw > 0 && n < p.activationScale) n = p.activationScale;
      return n;
    };
    let desiredStable = bounded(rawStable);
    const desiredPanic = bounded(rawPanic);
    if (desiredStable === 0 && this.observedFrom !== undefined && now - this.observedFrom < p.stableWindowMs) desiredStable = Math.min(1, ready);

    const over = ready > 0 && panicValue !== undefined && rawPanic / readyAtLeastOne >= p.panicThreshold;
    if (over) this.panicAt = now;
    else if (this.panicAt !== undefined && now - this.panicAt > p.stableWindowMs) {
      this.panicAt = undefined;
      this.maxPanic = 0;
    }

    let desired = desiredStable;
    const panic = this.panicAt !== undefined;
    if (panic) {
      desired = Math.max(desiredStable, desiredPanic, this.maxPanic);
      this.maxPanic = desired;
    }
    if (p.scaleDownDelayMs > 0) desired = this.delayed(now, desired);
    return { desired, panic, stable, panicValue, reason: panic ? 'panic' : 'reactive' };
  }

  /**
   * delayed is the highest recommendation of the last scaleDownDelay. Each new count removes the
   * lower-or-equal ones before it (they can never be the highest again), so the queue's counts strictly
   * decrease: it holds at most one entry per distinct count, and only the delay's worth of them.
   */
  private delayed(now: number, n: number): number {
    const cutoff = now - this.policy.scaleDownDelayMs;
    while (this.held.length > 0 && this.held[0]!.t < cutoff) this.held.shift();
    while (this.held.length > 0 && this.held[this.held.length - 1]!.n <= n) this.held.pop();
    this.held.push({ t: now, n });
    return this.held[0]!.n;
  }
}

function ringSize(stableWindowMs: number): number {
  return Math.ceil(Math.max(stableWindowMs, 1000) / 1000) + 1;
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
