import type { ResourceObject } from '../../api/kinds/types.js';
import type { MetricReading } from '../../autoscaling/hpa.js';
import { parseQuantity } from '../../util/quantity.js';

/** What an HPA's metrics are read from: the gates' own figures and the polled Skiff metrics. */
export interface MetricSource {
  /** Another Function's figures (Object metrics describing a Function). */
  gate(name: string): { concurrency: number; rps: number } | undefined;
  /** A Skiff metric read by the last poll (a counter as a rate). */
  cached(name: string, labels: Record<string, string>): number | undefined;
}

/** The target Function's own figures this tick. */
export interface HpaInputs {
  current: number;
  ready: number;
  concurrency: number;
  rps: number;
  /** The Function's CPU request in millicores (the denominator of CPU utilization). */
  cpuMillis: number;
}

export interface HpaEvaluation {
  readings: MetricReading[];
  /** status.currentMetrics in autoscaling/v2's shape. */
  current: unknown[];
  conditions: Array<{ type: string; status: string; reason: string; message: string; lastTransitionTime: string }>;
  summary: string;
}

interface Target {
  type?: string;
  averageUtilization?: number;
  averageValue?: string | number;
  value?: string | number;
}

interface MetricSpec {
  type: string;
  resource?: { name: string; target: Target };
  pods?: { metric: { name: string }; target: Target };
  object?: { describedObject: { kind: string; name: string; apiVersion?: string }; metric: { name: string; selector?: { matchLabels?: Record<string, string> } }; target: Target };
  external?: { metric: { name: string; selector?: { matchLabels?: Record<string, string> } }; target: Target };
}

/** quantity reads an HPA target's Kubernetes quantity (`500m` → 0.5, `2k` → 2000). */
function quantity(q: string | number | undefined): number | undefined {
  return q === undefined ? undefined : parseQuantity(q);
}

/**
 * evaluateHpa reads each of an HPA's metrics for its target Function, as Kubernetes' controller
 * would from the metrics APIs, here from Skiff's own figures:
 * - Resource `cpu`: in-flight requests per ready replica stand for the cores each uses (a request
 *   in flight occupies at most one core), against the Function's `resources.cpu` (default 1 core);
 * - Pods: `concurrency` or `requests_per_second` per ready replica;
 * - Object: a Function's `concurrency` / `requests_per_second`, or any Skiff metric of a Route;
 * - External: any Skiff metric by name and labels (a counter as a per-second rate).
 * Memory is not measured per replica: such a metric is reported as unavailable (ScalingActive False)
 * and does not count, as Kubernetes does with a metric it cannot get.
 */
export function evaluateHpa(hpa: ResourceObject, inp: HpaInputs, src: MetricSource): HpaEvaluation {
  const readings: MetricReading[] = [];
  const current: unknown[] = [];
  const problems: string[] = [];
  const parts: string[] = [];
  const perReplica = (v: number) => v / Math.max(inp.ready, 1);
  for (const m of (hpa.spec?.metrics ?? []) as MetricSpec[]) {
    if (m.type === 'Resource' && m.resource) {
      if (m.resource.name !== 'cpu') {
        problems.push(`resource ${m.resource.name} is not measured for Functions; use cpu, Pods or External metrics`);
        continue;
      }
      const cores = perReplica(inp.concurrency);
      const util = Math.round((cores * 1000 * 100) / inp.cpuMillis);
      const t = m.resource.target;
      if (t.type === 'AverageValue') {
        const target = quantity(t.averageValue) ?? 0;
        readings.push({ kind: 'ratio', usage: cores, target });
        parts.push(`cpu ${cores.toFixed(2)}/${target}`);
      } else {
        readings.push({ kind: 'ratio', usage: util, target: t.averageUtilization ?? 80 });
        parts.push(`cpu ${util}%/${t.averageUtilization ?? 80}%`);
      }
      current.push({ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: util, averageValue: `${Math.round(cores * 1000)}m` } } });
    } else if (m.type === 'Pods' && m.pods) {
      const v = ownFigure(m.pods.metric.name, inp);
      const target = quantity(m.pods.target.averageValue);
      if (v === undefined || target === undefined) {
        problems.push(`pods metric ${m.pods.metric.name} is not known (concurrency, requests_per_second)`);
        continue;
      }
      readings.push({ kind: 'ratio', usage: perReplica(v), target });
      current.push({ type: 'Pods', pods: { metric: { name: m.pods.metric.name }, current: { averageValue: fmt(perReplica(v)) } } });
      parts.push(`${m.pods.metric.name} ${fmt(perReplica(v))}/${target}`);
    } else if (m.type === 'Object' && m.object) {
      const o = m.object;
      let v: number | undefined;
      if (o.describedObject.kind === 'Function') {
        const g = src.gate(o.describedObject.name);
        v = g && (o.metric.name === 'concurrency' ? g.concurrency : o.metric.name === 'requests_per_second' ? g.rps : undefined);
      } else v = src.cached(o.metric.name, { ...(o.metric.selector?.matchLabels ?? {}), route: `${hpa.metadata.namespace ?? 'default'}/${o.describedObject.name}` });
      const r = valueReading(v, o.target);
      if (!r) {
        problems.push(`object metric ${o.metric.name} of ${o.describedObject.kind}/${o.describedObject.name} is not available`);
        continue;
      }
      readings.push(r);
      current.push({ type: 'Object', object: { describedObject: o.describedObject, metric: o.metric, current: { value: fmt(v!) } } });
      parts.push(`${o.metric.name} ${fmt(v!)}`);
    } else if (m.type === 'External' && m.external) {
      const e = m.external;
      const v = src.cached(e.metric.name, e.metric.selector?.matchLabels ?? {});
      const r = valueReading(v, e.target);
      if (!r) {
        problems.push(`external metric ${e.metric.name} has no series with those labels (yet)`);
        continue;
      }
      readings.push(r);
      current.push({ type: 'External', external: { metric: e.metric, current: { value: fmt(v!) } } });
      parts.push(`${e.metric.name} ${fmt(v!)}`);
    }
  }
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const active = readings.length > 0;
  return {
    readings,
    current,
    conditions: [
      { type: 'AbleToScale', status: 'True', reason: 'SucceededGetScale', message: 'the HPA controller was able to get the target\'s current scale', lastTransitionTime: now },
      active
        ? { type: 'ScalingActive', status: 'True', reason: 'ValidMetricFound', message: problems.length ? `some metrics are unavailable: ${problems.join('; ')}` : 'the HPA was able to compute the replica count from its metrics', lastTransitionTime: now }
        : { type: 'ScalingActive', status: 'False', reason: 'FailedGetMetrics', message: problems.join('; ') || 'no metric is given', lastTransitionTime: now },
    ],
    summary: parts.join(', ') || 'no metric',
  };
}

function ownFigure(name: string, inp: HpaInputs): number | undefined {
  if (name === 'concurrency') return inp.concurrency;
  if (name === 'requests_per_second' || name === 'rps') return inp.rps;
  return undefined;
}

function valueReading(v: number | undefined, t: Target): MetricReading | undefined {
  if (v === undefined) return undefined;
  if (t.type === 'AverageValue' || (t.averageValue !== undefined && t.value === undefined)) {
    const target = quantity(t.averageValue);
    return target ? { kind: 'total', value: v, targetAverage: target } : undefined;
  }
  const target = quantity(t.value);
  return target ? { kind: 'value', value: v, target } : undefined;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : `${Math.round(n * 1000)}m`;
}
