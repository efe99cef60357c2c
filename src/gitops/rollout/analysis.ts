import type { RolloutAnalysis, RolloutMetric } from '../../api/kinds/index.js';

/**
 * FunctionSample is what Skiff has counted for one Function since it started: requests answered,
 * those answered 5xx, and a latency histogram (cumulative; the analysis takes differences).
 */
export interface FunctionSample {
  requests: number;
  errors5xx: number;
  /** Bucket upper bounds in microseconds; `latencyCounts` has one more entry, the overflow bucket. */
  latencyBoundsUs: readonly number[];
  latencyCounts: readonly number[];
}

/** FunctionMetricsReader reads a Function's cumulative counters (the gateway's per-Function upstream stats). */
export interface FunctionMetricsReader {
  snapshot(namespace: string, name: string): FunctionSample | undefined;
}

/** Window is what a Function served between two samples. */
export interface Window {
  requests: number;
  errors5xx: number;
  /** The 99th percentile latency in ms (the upper bound of its bucket), undefined without requests. */
  p99Ms?: number;
}

/** windowBetween subtracts two samples; a counter that went back (a restart) counts from zero. */
export function windowBetween(prev: FunctionSample | undefined, cur: FunctionSample | undefined): Window {
  if (!cur) return { requests: 0, errors5xx: 0 };
  const reset = !prev || prev.requests > cur.requests || prev.latencyCounts.length !== cur.latencyCounts.length;
  const base = reset ? undefined : prev;
  const requests = cur.requests - (base?.requests ?? 0);
  const errors5xx = Math.max(0, cur.errors5xx - (base?.errors5xx ?? 0));
  const counts = cur.latencyCounts.map((c, i) => c - (base?.latencyCounts[i] ?? 0));
  const total = counts.reduce((a, b) => a + b, 0);
  let p99Ms: number | undefined;
  if (total > 0) {
    const target = Math.ceil(0.99 * total);
    let seen = 0;
    for (let i = 0; i < counts.length; i++) {
      seen += counts[i]!;
      if (seen >= target) {
        // The overflow bucket has no upper bound: report it as twice the last bound, which fails any limit below it.
        const bound = cur.latencyBoundsUs[i] ?? cur.latencyBoundsUs[cur.latencyBoundsUs.length - 1]! * 2;
        p99Ms = bound / 1000;
        break;
      }
    }
  }
  return { requests, errors5xx, p99Ms };
}

/** MetricResult is one metric's measured value against its limit. */
export interface MetricResult {
  value?: number | boolean;
  limit: string;
  ok?: boolean;
  error?: string;
}

/** Measurement is one analysis run's verdict, with every metric's result. */
export interface Measurement {
  verdict: 'pass' | 'fail' | 'inconclusive';
  requests: number;
  errors5xx: number;
  metrics: Record<string, MetricResult>;
  /** For a failure: which metrics failed, measured against the limit; for inconclusive: why. */
  reason?: string;
}

/** RegoCondition evaluates one rego metric; it resolves true or false, or rejects with the error. */
export type RegoCondition = (metric: Extract<RolloutMetric, { kind: 'rego' }>, input: unknown) => Promise<boolean>;

/**
 * measure judges a window by the analysis: inconclusive under `minRequests`, otherwise a failure when
 * any metric misses its limit (a rego condition that errors fails too: a broken condition must not
 * promote), else a pass.
 */
export async function measure(analysis: RolloutAnalysis, w: Window, rollout: Record<string, unknown>, rego: RegoCondition): Promise<Measurement> {
  const metrics: Record<string, MetricResult> = {};
  const rate = w.requests > 0 ? (w.requests - w.errors5xx) / w.requests : undefined;
  for (const m of analysis.metrics) {
    if (m.kind === 'successRate') metrics[m.name] = { value: rate === undefined ? undefined : round(rate), limit: `>= ${m.min}` };
    else if (m.kind === 'latencyP99') metrics[m.name] = { value: w.p99Ms, limit: `<= ${m.maxMs}ms` };
  }
  if (w.requests < analysis.minRequests) {
    return { verdict: 'inconclusive', requests: w.requests, errors5xx: w.errors5xx, metrics, reason: `${w.requests} requests reached the canary; at least ${analysis.minRequests} are needed to judge` };
  }
  const failed: string[] = [];
  for (const m of analysis.metrics) {
    const r = metrics[m.name];
    if (m.kind === 'successRate') {
      r!.ok = rate! >= m.min;
      if (!r!.ok) failed.push(`${m.name} ${r!.value} below ${m.min}`);
    } else if (m.kind === 'latencyP99') {
      r!.ok = w.p99Ms !== undefined && w.p99Ms <= m.maxMs;
      if (!r!.ok) failed.push(`${m.name} ${w.p99Ms}ms above ${m.maxMs}ms`);
    }
  }
  const values = Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, v.value ?? null]));
  for (const m of analysis.metrics) {
    if (m.kind !== 'rego') continue;
    const input = { metrics: values, requests: w.requests, errors5xx: w.errors5xx, p99Ms: w.p99Ms ?? null, successRate: rate ?? null, rollout };
    try {
      const ok = await rego(m, input);
      metrics[m.name] = { value: ok, limit: m.query, ok };
      if (!ok) failed.push(`${m.name}: ${m.query} is not true`);
    } catch (err) {
      metrics[m.name] = { limit: m.query, ok: false, error: (err as Error).message };
      failed.push(`${m.name}: ${m.query} failed: ${(err as Error).message}`);
    }
  }
  if (failed.length) return { verdict: 'fail', requests: w.requests, errors5xx: w.errors5xx, metrics, reason: `${failed.join('; ')} (over ${w.requests} requests)` };
  return { verdict: 'pass', requests: w.requests, errors5xx: w.errors5xx, metrics };
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
