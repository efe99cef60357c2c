import { parseDurationMs } from '../util/quantity.js';

import { InvalidScaleSpecError, type ScaleProblem } from './errors.js';
import { type HpaBehavior, resolveBehavior, validateBehavior } from './hpa.js';

/** ScaleTrigger is one KEDA-style event trigger as written: metadata values are strings, as in a ScaledObject. */
export interface ScaleTrigger {
  type: string;
  metadata?: Record<string, string>;
  name?: string;
}

/**
 * ScaleSpec is a Function's `spec.scale` as typed from YAML: every field optional, durations a
 * string (`6s`, `1m30s`) or a number of seconds, percentages as whole percents, `behavior` in HPA v2's
 * JSON shape.
 */
export interface ScaleSpec {
  class?: string;
  minScale?: number;
  maxScale?: number;
  initialScale?: number;
  activationScale?: number;
  metric?: string;
  target?: number;
  targetUtilization?: number;
  stableWindow?: string | number;
  panicWindowPercentage?: number;
  panicThresholdPercentage?: number;
  scaleDownDelay?: string | number;
  scaleToZeroGracePeriod?: string | number;
  maxScaleUpRate?: number;
  maxScaleDownRate?: number;
  predictive?: { enabled?: boolean; leadTime?: string | number; maxError?: number };
  behavior?: unknown;
  triggers?: ScaleTrigger[];
}

/** ScalePolicy is a ScaleSpec resolved: Knative's defaults filled in, times in milliseconds, ratios as fractions. */
export interface ScalePolicy {
  class: 'kpa' | 'hpa';
  minScale: number;
  /** 0 means no upper bound. */
  maxScale: number;
  initialScale: number;
  activationScale: number;
  metric: 'concurrency' | 'rps';
  /** Per replica: in-flight requests (concurrency) or requests per second (rps). */
  target: number;
  /** The fraction of `target` aimed at (0.7 for 70 %). */
  targetUtilization: number;
  stableWindowMs: number;
  /** stableWindowMs × panicWindowPercentage, never under one second. */
  panicWindowMs: number;
  /** The ratio desired-in-panic-window / ready that starts panic mode (2 for 200 %). */
  panicThreshold: number;
  scaleDownDelayMs: number;
  scaleToZeroGraceMs: number;
  maxScaleUpRate: number;
  maxScaleDownRate: number;
  /** leadTimeMs absent: the caller uses the runtime class's cold-start time. */
  predictive: { enabled: boolean; leadTimeMs?: number; maxError: number };
  behavior: HpaBehavior;
  triggers: ScaleTrigger[];
  /** spec.replicas: a fixed size; the Function is then not autoscaled unless an HPA targets it. */
  fixedReplicas?: number;
}

/** Knative's defaults for the KPA, as `config-autoscaler` ships them. */
export const SCALE_DEFAULTS = {
  class: 'kpa',
  maxScale: 0,
  initialScale: 1,
  activationScale: 1,
  metric: 'concurrency',
  concurrencyTarget: 100,
  rpsTarget: 200,
  targetUtilizationPercent: 70,
  stableWindowMs: 60_000,
  panicWindowPercentage: 10,
  panicThresholdPercentage: 200,
  scaleDownDelayMs: 0,
  scaleToZeroGraceMs: 30_000,
  maxScaleUpRate: 1000,
  maxScaleDownRate: 2,
  predictiveMaxError: 0.5,
} as const;

/** The most triggers a Function may have: the controller evaluates each at every pass. */
export const MAX_TRIGGERS = 16;

const KNOWN_FIELDS = [
  'class', 'minScale', 'maxScale', 'initialScale', 'activationScale', 'metric', 'target', 'targetUtilization', 'stableWindow',
  'panicWindowPercentage', 'panicThresholdPercentage', 'scaleDownDelay', 'scaleToZeroGracePeriod', 'maxScaleUpRate',
  'maxScaleDownRate', 'predictive', 'behavior', 'triggers',
];

/** What each trigger type requires in its metadata, and which of those keys hold numbers. */
const TRIGGERS: Record<string, { required: string[]; numbers: Record<string, 'count' | 'positive' | 'nonNegative'> }> = {
  cron: { required: ['start', 'end', 'desiredReplicas'], numbers: { desiredReplicas: 'count' } },
  'metrics-api': { required: ['url', 'valueLocation', 'targetValue'], numbers: { targetValue: 'positive', activationTargetValue: 'nonNegative' } },
  skiff: { required: ['metricName', 'targetValue'], numbers: { targetValue: 'positive' } },
};

const HOUR_MS = 3_600_000;
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const FLOAT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/**
 * parseScaleDurationMs reads a scale duration: a string such as `6s`, `1m30s` or `500ms`, or a whole
 * number of seconds (a YAML number, or a string of digits). Note that util's parseDurationMs reads a
 * bare number as milliseconds; the scale fields follow Knative and HPA, where a bare number is seconds.
 * Undefined when it does not parse.
 */
export function parseScaleDurationMs(d: unknown): number | undefined {
  if (typeof d === 'number') return Number.isFinite(d) && d >= 0 ? d * 1000 : undefined;
  if (typeof d !== 'string') return undefined;
  const s = d.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  return parseDurationMs(s);
}

/**
 * validateScaleSpec returns every problem of a `spec.scale` with its full field path and what to do,
 * an empty list when it is fine. It checks types, Knative's ranges, the HPA `behavior`, and the shape of
 * the triggers (known types, required metadata present, numbers that parse); the contents of cron
 * schedules and URLs are checked where the triggers run. Called from the Function kind's validator.
 *
 * @example validateScaleSpec({ stableWindow: '2s' }) // [{ field: 'spec.scale.stableWindow', message: ... }]
 */
export function validateScaleSpec(scale: unknown, path = 'spec.scale'): ScaleProblem[] {
  if (scale === undefined || scale === null) return [];
  if (!isObj(scale)) return [{ field: path, message: 'must be an object of scale settings (minScale, maxScale, target, ...)' }];
  const out: ScaleProblem[] = [];
  const at = (f: string, message: string) => out.push({ field: `${path}.${f}`, message });

  for (const key of Object.keys(scale)) {
    if (KNOWN_FIELDS.includes(key)) continue;
    const near = KNOWN_FIELDS.find((k) => k.toLowerCase() === key.toLowerCase());
    at(key, near ? `unknown field: did you mean ${near}?` : `unknown field: spec.scale has ${KNOWN_FIELDS.join(', ')}`);
  }

  const s = scale as Record<string, unknown>;
  if (s.class !== undefined && s.class !== 'kpa' && s.class !== 'hpa') at('class', `${JSON.stringify(s.class)} is not supported: use kpa (Knative's algorithm, the default) or hpa`);
  if (s.metric !== undefined && s.metric !== 'concurrency' && s.metric !== 'rps') at('metric', `${JSON.stringify(s.metric)} is not supported: use concurrency (the default) or rps`);

  for (const f of ['minScale', 'maxScale', 'initialScale'] as const) {
    if (s[f] !== undefined && !isCount(s[f])) at(f, `${JSON.stringify(s[f])} must be a whole number, 0 or more`);
  }
  if (s.activationScale !== undefined && !(isCount(s.activationScale) && s.activationScale >= 1)) at('activationScale', `${JSON.stringify(s.activationScale)} must be a whole number, 1 or more`);
  const min = isCount(s.minScale) ? s.minScale : undefined;
  const max = isCount(s.maxScale) ? s.maxScale : undefined;
  if (max !== undefined && max > 0 && min !== undefined && max < min) at('maxScale', `${max} is less than minScale ${min}: raise maxScale, lower minScale, or set maxScale 0 for no limit`);
  if (s.initialScale === 0 && min !== undefined && min > 0) at('initialScale', `0 needs minScale 0 (it is ${min}): a Function may start with no replicas only if it may scale to zero`);
  if (isCount(s.initialScale) && max !== undefined && max > 0 && s.initialScale > max) at('initialScale', `${s.initialScale} is more than maxScale ${max}: lower it to ${max} or less`);
  if (isCount(s.activationScale) && max !== undefined && max > 0 && s.activationScale > max) at('activationScale', `${s.activationScale} is more than maxScale ${max}: lower it to ${max} or less`);

  if (s.target !== undefined && !(isNum(s.target) && s.target > 0)) at('target', `${JSON.stringify(s.target)} must be a number greater than 0 (in-flight requests, or requests/s with metric rps, per replica)`);
  const ranges: Array<[string, number, number, string]> = [
    ['targetUtilization', 1, 100, 'a percent of target from 1 to 100 (e.g. 70)'],
    ['panicWindowPercentage', 1, 100, 'a percent of the stable window from 1 to 100 (e.g. 10)'],
    ['panicThresholdPercentage', 110, 1000, 'a percent from 110 to 1000 (e.g. 200)'],
  ];
  for (const [f, lo, hi, what] of ranges) {
    const v = s[f];
    if (v !== undefined && !(isNum(v) && v >= lo && v <= hi)) at(f, `${JSON.stringify(v)} must be ${what}`);
  }
  for (const f of ['maxScaleUpRate', 'maxScaleDownRate'] as const) {
    const v = s[f];
    if (v !== undefined && !(isNum(v) && v > 1)) at(f, `${JSON.stringify(v)} must be a number greater than 1 (a factor of the ready replicas per decision)`);
  }

  const durations: Array<[string, number, number, string]> = [
    ['stableWindow', 6000, HOUR_MS, 'from 6s to 1h (e.g. 60s)'],
    ['scaleDownDelay', 0, HOUR_MS, 'from 0s to 1h (e.g. 15m)'],
    ['scaleToZeroGracePeriod', 0, Infinity, '0s or more (e.g. 30s)'],
  ];
  for (const [f, lo, hi, what] of durations) checkDuration(s[f], f, lo, hi, what, at);

  if (s.predictive !== undefined) {
    const p = s.predictive;
    if (!isObj(p)) at('predictive', 'must be an object {enabled, leadTime, maxError}');
    else {
      for (const key of Object.keys(p)) if (!['enabled', 'leadTime', 'maxError'].includes(key)) at(`predictive.${key}`, 'unknown field: predictive has enabled, leadTime and maxError');
      if (p.enabled !== undefined && typeof p.enabled !== 'boolean') at('predictive.enabled', `${JSON.stringify(p.enabled)} must be true or false`);
      checkDuration(p.leadTime, 'predictive.leadTime', 0, HOUR_MS, 'from 0s to 1h (e.g. 30s)', at);
      if (p.maxError !== undefined && !(isNum(p.maxError) && p.maxError > 0)) at('predictive.maxError', `${JSON.stringify(p.maxError)} must be a number greater than 0 (the relative forecast error above which scaling falls back to reactive, e.g. 0.5)`);
    }
  }

  out.push(...validateBehavior(s.behavior, `${path}.behavior`));
  if (s.triggers !== undefined) validateTriggers(s.triggers, `${path}.triggers`, out);
  return out;
}

function checkDuration(v: unknown, f: string, lo: number, hi: number, what: string, at: (f: string, m: string) => void): void {
  if (v === undefined) return;
  const ms = parseScaleDurationMs(v);
  if (ms === undefined) at(f, `${JSON.stringify(v)} is not a duration: write it like 30s, 1m30s or 500ms, or as a number of seconds`);
  else if (ms < lo || ms > hi) at(f, `${JSON.stringify(v)} is out of range: must be ${what}`);
}

function validateTriggers(triggers: unknown, path: string, out: ScaleProblem[]): void {
  if (!Array.isArray(triggers)) {
    out.push({ field: path, message: 'must be a list of triggers ({type: cron|metrics-api|skiff, metadata: {...}})' });
    return;
  }
  if (triggers.length > MAX_TRIGGERS) out.push({ field: path, message: `lists ${triggers.length} triggers; at most ${MAX_TRIGGERS} are allowed` });
  triggers.slice(0, MAX_TRIGGERS).forEach((t: unknown, i) => {
    const p = `${path}[${i}]`;
    if (!isObj(t)) {
      out.push({ field: p, message: 'must be an object {type, metadata, name}' });
      return;
    }
    for (const key of Object.keys(t)) if (!['type', 'metadata', 'name'].includes(key)) out.push({ field: `${p}.${key}`, message: 'unknown field: a trigger has type, metadata and name' });
    if (t.name !== undefined && typeof t.name !== 'string') out.push({ field: `${p}.name`, message: 'must be a string' });
    const spec = typeof t.type === 'string' ? TRIGGERS[t.type] : undefined;
    if (!spec) {
      out.push({ field: `${p}.type`, message: `${JSON.stringify(t.type)} is not a known trigger type: use ${Object.keys(TRIGGERS).join(', ')}` });
      return;
    }
    const md = t.metadata ?? {};
    if (!isObj(md)) {
      out.push({ field: `${p}.metadata`, message: 'must be a map of string keys to string values' });
      return;
    }
    for (const [k, v] of Object.entries(md)) {
      if (typeof v !== 'string') out.push({ field: `${p}.metadata.${k}`, message: `${JSON.stringify(v)} must be a string, as in a KEDA ScaledObject: quote it ("${String(v)}")` });
    }
    for (const k of spec.required) {
      if (md[k] === undefined || md[k] === '') out.push({ field: `${p}.metadata.${k}`, message: `required for a ${t.type} trigger` });
    }
    for (const [k, kind] of Object.entries(spec.numbers)) {
      const v = md[k];
      if (typeof v !== 'string' || v === '') continue;
      const n = FLOAT.test(v.trim()) ? Number(v) : NaN;
      const ok = kind === 'count' ? Number.isInteger(n) && n >= 0 : kind === 'positive' ? n > 0 : n >= 0;
      if (!ok) out.push({ field: `${p}.metadata.${k}`, message: `"${v}" must be ${kind === 'count' ? 'a whole number, 0 or more (e.g. "3")' : kind === 'positive' ? 'a number greater than 0 (e.g. "10")' : 'a number, 0 or more (e.g. "0")'}` });
    }
    if (t.type === 'metrics-api' && md.method !== undefined && md.method !== 'GET') out.push({ field: `${p}.metadata.method`, message: `${JSON.stringify(md.method)} is not supported: use GET` });
    if (t.type === 'skiff') {
      if (typeof md.metricName === 'string' && md.metricName !== '' && !/^skiff_[a-zA-Z0-9_:]*$/.test(md.metricName)) out.push({ field: `${p}.metadata.metricName`, message: `"${md.metricName}" must name a skiff_* metric family (e.g. skiff_gateway_requests_total)` });
      if (typeof md.labels === 'string') checkLabels(md.labels, `${p}.metadata.labels`, out);
    }
  });
}

function checkLabels(text: string, field: string, out: ScaleProblem[]): void {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    out.push({ field, message: `is not JSON: write a JSON object of label names to values, e.g. '{"route":"default/api"}'` });
    return;
  }
  if (!isObj(v) || !Object.values(v).every((x) => typeof x === 'string')) out.push({ field, message: `must be a JSON object of label names to string values, e.g. '{"route":"default/api"}'` });
}

/**
 * resolveScalePolicy turns a `spec.scale` into numbers with Knative's defaults (target 100 in-flight
 * requests for concurrency, 200 requests/s for rps; see SCALE_DEFAULTS), Kubernetes' defaults for
 * `behavior`, and `defaultMinScale` (the runtime class's: 0 for wasm, 1 for container and vm).
 * initialScale is kept within [minScale, maxScale]. `replicas` is spec.replicas, passed through as
 * fixedReplicas. Throws InvalidScaleSpecError, listing every problem, when the spec does not validate.
 *
 * @example resolveScalePolicy({ target: 10 }, { defaultMinScale: 0 }).panicWindowMs // 6000
 */
export function resolveScalePolicy(scale: ScaleSpec | undefined, opts: { replicas?: number; defaultMinScale: number }): ScalePolicy {
  const problems = validateScaleSpec(scale);
  if (problems.length > 0) throw new InvalidScaleSpecError(problems);
  const s: ScaleSpec = scale ?? {};
  const D = SCALE_DEFAULTS;
  const metric = (s.metric ?? D.metric) as ScalePolicy['metric'];
  const minScale = s.minScale ?? opts.defaultMinScale;
  const maxScale = s.maxScale ?? D.maxScale;
  const stableWindowMs = dur(s.stableWindow, D.stableWindowMs);
  const initial = s.initialScale ?? Math.max(D.initialScale, minScale);
  const leadTimeMs = s.predictive?.leadTime !== undefined ? parseScaleDurationMs(s.predictive.leadTime) : undefined;
  const policy: ScalePolicy = {
    class: (s.class ?? D.class) as ScalePolicy['class'],
    minScale,
    maxScale,
    initialScale: Math.min(Math.max(initial, minScale), maxScale > 0 ? maxScale : Infinity),
    activationScale: s.activationScale ?? D.activationScale,
    metric,
    target: s.target ?? (metric === 'rps' ? D.rpsTarget : D.concurrencyTarget),
    targetUtilization: (s.targetUtilization ?? D.targetUtilizationPercent) / 100,
    stableWindowMs,
    panicWindowMs: Math.max(1000, (stableWindowMs * (s.panicWindowPercentage ?? D.panicWindowPercentage)) / 100),
    panicThreshold: (s.panicThresholdPercentage ?? D.panicThresholdPercentage) / 100,
    scaleDownDelayMs: dur(s.scaleDownDelay, D.scaleDownDelayMs),
    scaleToZeroGraceMs: dur(s.scaleToZeroGracePeriod, D.scaleToZeroGraceMs),
    maxScaleUpRate: s.maxScaleUpRate ?? D.maxScaleUpRate,
    maxScaleDownRate: s.maxScaleDownRate ?? D.maxScaleDownRate,
    predictive: { enabled: s.predictive?.enabled ?? false, maxError: s.predictive?.maxError ?? D.predictiveMaxError, ...(leadTimeMs !== undefined ? { leadTimeMs } : {}) },
    behavior: resolveBehavior(s.behavior),
    triggers: s.triggers ?? [],
  };
  if (opts.replicas !== undefined) policy.fixedReplicas = opts.replicas;
  return policy;
}

function dur(v: string | number | undefined, fallback: number): number {
  return v === undefined ? fallback : (parseScaleDurationMs(v) ?? fallback);
}

/**
 * boundScale keeps a recommendation within a policy's minScale and maxScale and says which bound
 * applied, for the `minScale`/`maxScale` reasons of `status.autoscaler`.
 */
export function boundScale(policy: Pick<ScalePolicy, 'minScale' | 'maxScale'>, desired: number): { replicas: number; bound?: 'minScale' | 'maxScale' } {
  if (policy.maxScale > 0 && desired > policy.maxScale) return { replicas: policy.maxScale, bound: 'maxScale' };
  if (desired < policy.minScale) return { replicas: policy.minScale, bound: 'minScale' };
  return { replicas: desired };
}
