// HPA v2's replica calculation and its `behavior` (stabilization windows, rate policies), in our own
// code after the Kubernetes documentation: the algorithm is the product, so no library stands in for it.
import type { ScaleProblem } from './errors.js';

/** One rate policy of a direction: at most `value` pods, or `value` percent, of change per `periodMs`. */
export interface HpaScalingPolicy {
  type: 'Pods' | 'Percent';
  value: number;
  periodMs: number;
}

/** The resolved rules of one direction (scale up or scale down). */
export interface HpaScalingRules {
  stabilizationWindowMs: number;
  selectPolicy: 'Max' | 'Min' | 'Disabled';
  policies: HpaScalingPolicy[];
}

/** HpaBehavior is an HPA v2 `behavior` with Kubernetes' defaults filled in and times in milliseconds. */
export interface HpaBehavior {
  scaleUp: HpaScalingRules;
  scaleDown: HpaScalingRules;
}

/**
 * MetricReading is one metric of an HPA as the replica calculation needs it:
 * - `ratio`: a per-replica average or a utilization against its target (Resource, Pods);
 * - `value`: an Object or External metric with a `Value` target (the whole value against the target);
 * - `total`: an Object or External metric with an `AverageValue` target (the whole value spread over replicas).
 */
export type MetricReading =
  | { kind: 'ratio'; usage: number; target: number }
  | { kind: 'value'; value: number; target: number }
  | { kind: 'total'; value: number; targetAverage: number };

/** The most rate policies a direction may list: each is evaluated at every recommendation. */
export const MAX_POLICIES = 16;
/** The most past recommendations or scale events kept, whatever the windows and the call rate. */
const MAX_HISTORY = 10_000;

/** The Kubernetes defaults of `behavior`, as documented for autoscaling/v2. */
export function defaultBehavior(): HpaBehavior {
  return {
    scaleUp: {
      stabilizationWindowMs: 0,
      selectPolicy: 'Max',
      policies: [
        { type: 'Percent', value: 100, periodMs: 15_000 },
        { type: 'Pods', value: 4, periodMs: 15_000 },
      ],
    },
    scaleDown: { stabilizationWindowMs: 300_000, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodMs: 15_000 }] },
  };
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/**
 * resolveBehavior fills an HPA v2 `behavior` (Kubernetes' JSON field names) with Kubernetes' defaults,
 * per field and per direction as the API server does: a direction without policies gets the default
 * policies, a missing window the default window. Fields that validateBehavior would refuse fall back to
 * their defaults too, so a stored object from before validation still scales sensibly.
 *
 * @example resolveBehavior({ scaleDown: { stabilizationWindowSeconds: 60 } }).scaleDown.stabilizationWindowMs // 60000
 */
export function resolveBehavior(spec?: unknown): HpaBehavior {
  const d = defaultBehavior();
  if (!isObj(spec)) return d;
  return { scaleUp: resolveRules(spec.scaleUp, d.scaleUp), scaleDown: resolveRules(spec.scaleDown, d.scaleDown) };
}

function resolveRules(spec: unknown, d: HpaScalingRules): HpaScalingRules {
  if (!isObj(spec)) return d;
  const w = spec.stabilizationWindowSeconds;
  const sel = spec.selectPolicy;
  const policies = Array.isArray(spec.policies)
    ? spec.policies
        .slice(0, MAX_POLICIES)
        .filter((p): p is Record<string, unknown> => isObj(p) && (p.type === 'Pods' || p.type === 'Percent') && isInt(p.value) && p.value > 0 && isInt(p.periodSeconds) && p.periodSeconds >= 1 && p.periodSeconds <= 1800)
        .map((p) => ({ type: p.type as 'Pods' | 'Percent', value: p.value as number, periodMs: (p.periodSeconds as number) * 1000 }))
    : [];
  return {
    stabilizationWindowMs: isInt(w) && w >= 0 && w <= 3600 ? w * 1000 : d.stabilizationWindowMs,
    selectPolicy: sel === 'Max' || sel === 'Min' || sel === 'Disabled' ? sel : d.selectPolicy,
    policies: policies.length > 0 ? policies : d.policies,
  };
}

/**
 * validateBehavior returns every problem of an HPA v2 `behavior` with its full field path: the
 * directions, their windows (0..3600 s), selectPolicy (Max, Min, Disabled) and policies (Pods or
 * Percent, a positive value, a period of 1..1800 s). Shared by `spec.scale.behavior` and the
 * HorizontalPodAutoscaler kind.
 */
export function validateBehavior(spec: unknown, path: string): ScaleProblem[] {
  if (spec === undefined) return [];
  if (!isObj(spec)) return [{ field: path, message: 'must be an object with scaleUp and/or scaleDown' }];
  const out: ScaleProblem[] = [];
  for (const key of Object.keys(spec)) {
    if (key !== 'scaleUp' && key !== 'scaleDown') out.push({ field: `${path}.${key}`, message: 'unknown field: behavior has scaleUp and scaleDown' });
  }
  for (const dir of ['scaleUp', 'scaleDown'] as const) {
    const r = spec[dir];
    const p = `${path}.${dir}`;
    if (r === undefined) continue;
    if (!isObj(r)) {
      out.push({ field: p, message: 'must be an object with stabilizationWindowSeconds, selectPolicy and policies' });
      continue;
    }
    for (const key of Object.keys(r)) {
      if (!['stabilizationWindowSeconds', 'selectPolicy', 'policies'].includes(key)) out.push({ field: `${p}.${key}`, message: 'unknown field: use stabilizationWindowSeconds, selectPolicy or policies' });
    }
    const w = r.stabilizationWindowSeconds;
    if (w !== undefined && !(isInt(w) && w >= 0 && w <= 3600)) out.push({ field: `${p}.stabilizationWindowSeconds`, message: `${JSON.stringify(w)} must be a whole number of seconds from 0 to 3600` });
    const sel = r.selectPolicy;
    if (sel !== undefined && sel !== 'Max' && sel !== 'Min' && sel !== 'Disabled') out.push({ field: `${p}.selectPolicy`, message: `${JSON.stringify(sel)} is not supported: use Max, Min or Disabled` });
    const pols = r.policies;
    if (pols === undefined) continue;
    if (!Array.isArray(pols) || pols.length === 0) {
      out.push({ field: `${p}.policies`, message: 'must list at least one policy ({type: Pods|Percent, value, periodSeconds}), or be left out for the defaults' });
      continue;
    }
    if (pols.length > MAX_POLICIES) out.push({ field: `${p}.policies`, message: `lists ${pols.length} policies; at most ${MAX_POLICIES} are allowed` });
    pols.slice(0, MAX_POLICIES).forEach((pol: unknown, i) => {
      const pp = `${p}.policies[${i}]`;
      if (!isObj(pol)) {
        out.push({ field: pp, message: 'must be an object {type: Pods|Percent, value, periodSeconds}' });
        return;
      }
      if (pol.type !== 'Pods' && pol.type !== 'Percent') out.push({ field: `${pp}.type`, message: `${JSON.stringify(pol.type)} is not supported: use Pods or Percent` });
      if (!(isInt(pol.value) && pol.value > 0)) out.push({ field: `${pp}.value`, message: `${JSON.stringify(pol.value)} must be a whole number greater than 0` });
      if (!(isInt(pol.periodSeconds) && pol.periodSeconds >= 1 && pol.periodSeconds <= 1800)) out.push({ field: `${pp}.periodSeconds`, message: `${JSON.stringify(pol.periodSeconds)} must be a whole number of seconds from 1 to 1800` });
    });
  }
  return out;
}

/**
 * replicasFor is HPA v2's replica calculation: for each metric, desired = ceil(current × value / target),
 * left at `current` while the ratio is within `tolerance` of 1; the answer is the highest over the
 * metrics. A reading that is missing (undefined) or cannot be computed (a non-finite number, a target
 * that is not positive) is skipped; with none left the answer is `current`. With current = 0 (a
 * Function scaled to zero by an Object or External metric) the ratio is taken against one replica
 * and no tolerance applies, as Kubernetes does.
 *
 * @example replicasFor(3, [{ kind: 'ratio', usage: 90, target: 60 }]) // 5
 */
export function replicasFor(current: number, metrics: ReadonlyArray<MetricReading | undefined>, tolerance = 0.1): number {
  let best: number | undefined;
  for (const m of metrics) {
    const n = m === undefined ? undefined : replicasForOne(current, m, tolerance);
    if (n !== undefined && (best === undefined || n > best)) best = n;
  }
  return best ?? current;
}

function replicasForOne(current: number, m: MetricReading, tolerance: number): number | undefined {
  if (m.kind === 'total') {
    if (!Number.isFinite(m.value) || !(m.targetAverage > 0) || !Number.isFinite(m.targetAverage)) return undefined;
    if (current > 0 && Math.abs(1 - m.value / (m.targetAverage * current)) <= tolerance) return current;
    return Math.max(0, Math.ceil(m.value / m.targetAverage));
  }
  const value = m.kind === 'ratio' ? m.usage : m.value;
  if (!Number.isFinite(value) || !(m.target > 0) || !Number.isFinite(m.target)) return undefined;
  const ratio = value / m.target;
  if (current === 0) return Math.max(0, Math.ceil(ratio));
  if (Math.abs(1 - ratio) <= tolerance) return current;
  return Math.max(0, Math.ceil(current * ratio));
}

/** HpaRecommendation is what HpaScaler decided and, when it moved away from the raw count, why. */
export interface HpaRecommendation {
  desired: number;
  /** Kubernetes' condition reasons: DesiredWithinRange, ScaleUpStabilized, ScaleDownStabilized, ScaleUpLimit, ScaleDownLimit, ScaleUpDisabled, ScaleDownDisabled, TooManyReplicas, TooFewReplicas. */
  reason: string;
  limited?: 'stabilization' | 'rate' | 'min' | 'max';
}

interface Stamped {
  t: number;
  n: number;
}

/**
 * HpaScaler applies an HPA v2 `behavior` to a stream of raw recommendations, as the Kubernetes HPA
 * controller does: the stabilization windows over past raw recommendations (up: the lowest in the
 * window, down: the highest), then the rate policies over the scale events of each policy's period,
 * `selectPolicy` and `Disabled`, then minReplicas/maxReplicas.
 *
 * `recommend` records the raw recommendation it was given; the scale events are recorded by the caller
 * with `record(now, from, to)` once it has actually applied a change, so a change that failed does not
 * use up a period's budget. Like Kubernetes, the first recommendation seeds the history with the current
 * count, so a restarted controller does not scale down before a full down window has passed.
 *
 * @example
 * const s = new HpaScaler(resolveBehavior(undefined));
 * const r = s.recommend(now, 4, replicasFor(4, readings), 1, 10);
 * if (r.desired !== 4) { apply(r.desired); s.record(now, 4, r.desired); }
 */
export class HpaScaler {
  private recs: Stamped[] = [];
  private ups: Stamped[] = [];
  private downs: Stamped[] = [];
  private seeded = false;

  constructor(private behavior: HpaBehavior) {}

  /** update swaps the behavior; the histories stay, so a changed window applies to what was seen. */
  update(behavior: HpaBehavior): void {
    this.behavior = behavior;
  }

  /** record notes a scale change the caller applied at `now`, from `from` to `to` replicas. */
  record(now: number, from: number, to: number): void {
    if (to === from) return;
    const list = to > from ? this.ups : this.downs;
    list.push({ t: now, n: Math.abs(to - from) });
    if (list.length > MAX_HISTORY) list.splice(0, list.length - MAX_HISTORY);
  }

  /** recommend turns the raw recommendation `raw` into the count to apply now, given `current` replicas and the bounds. */
  recommend(now: number, current: number, raw: number, min: number, max: number): HpaRecommendation {
    const { scaleUp, scaleDown } = this.behavior;
    if (!this.seeded) {
      this.seeded = true;
      this.recs.push({ t: now, n: current });
    }
    this.prune(now);

    let upRec = raw;
    let downRec = raw;
    for (const r of this.recs) {
      if (r.t > now - scaleUp.stabilizationWindowMs) upRec = Math.min(upRec, r.n);
      if (r.t > now - scaleDown.stabilizationWindowMs) downRec = Math.max(downRec, r.n);
    }
    this.remember(now, raw);

    let desired = Math.min(Math.max(current, upRec), downRec);
    let reason = 'DesiredWithinRange';
    let limited: HpaRecommendation['limited'];
    if (desired !== raw) {
      reason = raw > desired ? 'ScaleUpStabilized' : 'ScaleDownStabilized';
      limited = 'stabilization';
    }

    if (desired > current) {
      const limit = Math.max(current, this.upLimit(now, current, scaleUp));
      if (desired > limit) {
        desired = limit;
        reason = scaleUp.selectPolicy === 'Disabled' ? 'ScaleUpDisabled' : 'ScaleUpLimit';
        limited = 'rate';
      }
    } else if (desired < current) {
      const limit = Math.min(current, this.downLimit(now, current, scaleDown));
      if (desired < limit) {
        desired = limit;
        reason = scaleDown.selectPolicy === 'Disabled' ? 'ScaleDownDisabled' : 'ScaleDownLimit';
        limited = 'rate';
      }
    }

    if (desired > max) {
      desired = max;
      reason = 'TooManyReplicas';
      limited = 'max';
    }
    if (desired < min) {
      desired = min;
      reason = 'TooFewReplicas';
      limited = 'min';
    }
    return limited ? { desired, reason, limited } : { desired, reason };
  }

  /** remember adds a raw recommendation; a run of equal values keeps only its latest time, which leaves every window's lowest and highest unchanged. */
  private remember(now: number, n: number): void {
    const last = this.recs[this.recs.length - 1];
    if (last && last.n === n && last.t <= now) last.t = now;
    else this.recs.push({ t: now, n });
    if (this.recs.length > MAX_HISTORY) this.recs.splice(0, this.recs.length - MAX_HISTORY);
  }

  private prune(now: number): void {
    const { scaleUp, scaleDown } = this.behavior;
    const win = Math.max(scaleUp.stabilizationWindowMs, scaleDown.stabilizationWindowMs);
    this.recs = this.recs.filter((r) => r.t > now - win);
    let period = 0;
    for (const p of [...scaleUp.policies, ...scaleDown.policies]) period = Math.max(period, p.periodMs);
    this.ups = this.ups.filter((e) => e.t > now - period);
    this.downs = this.downs.filter((e) => e.t > now - period);
  }

  private changed(list: Stamped[], now: number, periodMs: number): number {
    let sum = 0;
    for (const e of list) if (e.t > now - periodMs) sum += e.n;
    return sum;
  }

  /** upLimit: the most replicas the policies allow now; each policy measures from the count at the start of its period. */
  private upLimit(now: number, current: number, rules: HpaScalingRules): number {
    if (rules.selectPolicy === 'Disabled') return current;
    let result = rules.selectPolicy === 'Min' ? Infinity : -Infinity;
    for (const p of rules.policies) {
      const start = current - this.changed(this.ups, now, p.periodMs) + this.changed(this.downs, now, p.periodMs);
      // Percent rounds up: a small count would otherwise never be allowed to grow.
      const proposed = p.type === 'Pods' ? start + p.value : Math.ceil(start * (1 + p.value / 100));
      result = rules.selectPolicy === 'Min' ? Math.min(result, proposed) : Math.max(result, proposed);
    }
    return Number.isFinite(result) ? result : current;
  }

  /** downLimit: the fewest replicas the policies allow now; `Min` is the smallest change, so the highest count. */
  private downLimit(now: number, current: number, rules: HpaScalingRules): number {
    if (rules.selectPolicy === 'Disabled') return current;
    let result = rules.selectPolicy === 'Min' ? -Infinity : Infinity;
    for (const p of rules.policies) {
      const start = current - this.changed(this.ups, now, p.periodMs) + this.changed(this.downs, now, p.periodMs);
      const proposed = p.type === 'Pods' ? start - p.value : Math.trunc(start * (1 - p.value / 100));
      result = rules.selectPolicy === 'Min' ? Math.max(result, proposed) : Math.min(result, proposed);
    }
    return Number.isFinite(result) ? Math.max(0, result) : current;
  }
}
