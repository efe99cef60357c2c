import { formatAge, parseDurationMs } from '../../util/quantity.js';

import { parseModuleRef } from './module-ref.js';
import type { FieldError, KindDefinition, ResourceObject } from './types.js';

/**
 * Rollout: Argo Rollouts' canary (and blue-green) strategy for a Function. The schema says what may
 * be written; `rolloutPlan` reads a spec into the plan the rollout controller runs, and its problems
 * are the kind's semantic checks, so what admission accepts is exactly what the controller can run.
 */

const duration = (description: string) => ({ type: 'string', pattern: '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$', description });
const nameRef = (description: string) => ({ type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 253, description: 'Name, in the Rollout\'s namespace.' } }, description });

const analysisSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'How the new version is judged: every interval each metric is measured over the requests the canary Function served since the last measurement.',
  properties: {
    interval: duration('Time between measurements (default 10s; at least 100ms).'),
    failureLimit: { type: 'integer', minimum: 0, maximum: 1000, description: 'Failed measurements tolerated: the rollout aborts when failures exceed it (default 0: the first failure aborts).' },
    minRequests: { type: 'integer', minimum: 1, maximum: 1_000_000, description: 'Fewest requests a measurement needs to judge; with fewer it is inconclusive, neither a pass nor a failure (default 5).' },
    metrics: {
      type: 'array',
      minItems: 1,
      maxItems: 16,
      'x-kubernetes-list-type': 'atomic',
      description: 'The conditions a measurement must meet; each sets exactly one of successRate, latencyP99 or rego.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_-]{0,62}$', description: 'The metric\'s name, shown in status and given to rego conditions as input.metrics[NAME].' },
          successRate: { type: 'object', additionalProperties: false, required: ['min'], properties: { min: { type: 'number', minimum: 0, maximum: 1, description: 'Lowest share of answers that are not 5xx (0..1).' } }, description: 'Share of the canary\'s answers that are not 5xx.' },
          latencyP99: { type: 'object', additionalProperties: false, required: ['maxMs'], properties: { maxMs: { type: 'number', exclusiveMinimum: 0, description: 'Highest 99th percentile latency in milliseconds.' } }, description: 'The canary\'s 99th percentile latency (bucket upper bound).' },
          rego: {
            type: 'object',
            additionalProperties: false,
            required: ['policy', 'query'],
            properties: {
              policy: { type: 'string', minLength: 1, maxLength: 65536, description: 'A Rego module.' },
              query: { type: 'string', minLength: 1, maxLength: 1024, description: 'A query that must be true, e.g. data.canary.allow; input is {metrics: {NAME: value}, requests, errors5xx, rollout: {name, namespace, canaryModule, stableModule, weight}}.' },
            },
            description: 'A Rego condition over the measured values, evaluated by Skiff\'s own engine with a deadline.',
          },
        },
      },
    },
  },
};

const stepSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  description: 'One step: exactly one of setWeight, pause or analysis.',
  properties: {
    setWeight: { type: 'integer', minimum: 0, maximum: 100, description: 'Percentage of the Route\'s traffic to the stable Function that goes to the canary.' },
    pause: { type: 'object', additionalProperties: false, properties: { duration: duration('How long to wait; without it the rollout waits for `skiff rollout promote`.') }, description: 'Wait a while, or until promoted.' },
    analysis: { type: 'object', additionalProperties: false, properties: { count: { type: 'integer', minimum: 1, maximum: 1000, description: 'Passing measurements needed to complete the step (default 1).' } }, description: 'Wait until the analysis has passed count times since the step began.' },
  },
};

const rolloutSpecSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['functionRef', 'routeRef', 'canary', 'strategy'],
  properties: {
    functionRef: nameRef('The stable Function: it keeps serving until the new version is promoted, and then takes the new module.'),
    routeRef: nameRef('The Route whose destinations to the stable Function are split between stable and canary (canary), or the active Route (blue-green, left as it is: it switches when the stable Function takes the new module).'),
    canary: {
      type: 'object',
      additionalProperties: false,
      description: 'The new version: module for a wasm Function, image for a container or vm Function.',
      properties: {
        module: { type: 'string', minLength: 1, maxLength: 4096, description: 'A module reference as in Function spec.module.' },
        image: { type: 'string', minLength: 1, maxLength: 4096, description: 'An image reference as in Function spec.image.' },
        digest: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$', description: 'sha256:HEX the canary module must have (needed when the stable Function pins spec.digest).' },
      },
    },
    strategy: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 1,
      description: 'Exactly one of canary or blueGreen.',
      properties: {
        canary: {
          type: 'object',
          additionalProperties: false,
          required: ['steps'],
          properties: {
            steps: { type: 'array', minItems: 1, maxItems: 64, 'x-kubernetes-list-type': 'atomic', items: stepSchema, description: 'Run in order; promotion follows the last.' },
            analysis: { ...analysisSchema, description: `${analysisSchema.description} It runs in the background while the canary takes traffic and aborts the rollout past failureLimit; analysis steps wait for it to pass.` },
          },
        },
        blueGreen: {
          type: 'object',
          additionalProperties: false,
          required: ['previewRouteRef'],
          properties: {
            previewRouteRef: nameRef('A Route whose destinations to the stable Function are pointed at the canary while it is previewed.'),
            autoPromotionSeconds: { type: 'integer', minimum: 0, maximum: 86400, description: 'Promote this long after the preview went live (and its analysis, if any, passed at least once); without it the rollout waits for `skiff rollout promote`.' },
            analysis: analysisSchema,
          },
        },
      },
    },
  },
};

/** On the Function and Routes a Rollout drives, and on its canary Function: the Rollout's name. */
export const ROLLOUT_NAME_ANNOTATION = 'rollout.skiff.dev/name';
/** `TIME` completes the current step; `TIME full` promotes at once. Set by `skiff rollout promote`. */
export const ROLLOUT_PROMOTE_ANNOTATION = 'rollout.skiff.dev/promote';
/** `TIME`: abort the running rollout. Set by `skiff rollout abort`. */
export const ROLLOUT_ABORT_ANNOTATION = 'rollout.skiff.dev/abort';

/** A metric condition of an analysis. */
export type RolloutMetric =
  | { name: string; kind: 'successRate'; min: number }
  | { name: string; kind: 'latencyP99'; maxMs: number }
  | { name: string; kind: 'rego'; policy: string; query: string };

/** RolloutAnalysis is `analysis` read with its defaults. */
export interface RolloutAnalysis {
  intervalMs: number;
  failureLimit: number;
  minRequests: number;
  metrics: RolloutMetric[];
}

/** RolloutStep is one canary step read with its defaults. */
export type RolloutStep = { kind: 'setWeight'; weight: number } | { kind: 'pause'; durationMs?: number } | { kind: 'analysis'; count: number };

/** RolloutPlan is a Rollout's spec as the controller runs it. */
export interface RolloutPlan {
  functionName: string;
  routeName: string;
  /** Which Function field the new version goes in, and its value. */
  canaryField: 'module' | 'image';
  canaryRef: string;
  canaryDigest?: string;
  strategy: { kind: 'canary'; steps: RolloutStep[]; analysis?: RolloutAnalysis } | { kind: 'blueGreen'; previewRouteName: string; autoPromotionMs?: number; analysis?: RolloutAnalysis };
}

export const DEFAULT_ANALYSIS_INTERVAL_MS = 10_000;
export const DEFAULT_MIN_REQUESTS = 5;
const MIN_INTERVAL_MS = 100;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a spec as stored, read after schema validation
type Any = any;

/**
 * rolloutPlan reads a schema-valid Rollout spec into its plan and reports what the schema cannot say
 * (one of module or image, an analysis step needs an analysis, each metric sets one condition).
 */
export function rolloutPlan(spec: Any): { plan?: RolloutPlan; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const canary: Any = spec?.canary ?? {};
  const set = ['module', 'image'].filter((f) => typeof canary[f] === 'string');
  if (set.length !== 1) errors.push({ field: 'spec.canary', message: set.length ? 'Invalid value: set module or image, not both' : 'Required value: the new version as module (wasm) or image (container, vm)', reason: set.length ? 'FieldValueInvalid' : 'FieldValueRequired' });
  if (typeof canary.module === 'string') {
    const ref = parseModuleRef(canary.module);
    if (ref.type === 'invalid') errors.push({ field: 'spec.canary.module', message: ref.message, reason: 'FieldValueNotSupported' });
    else if (ref.type === 'host' && !ref.absolute) errors.push({ field: 'spec.canary.module', message: `Invalid value: "${canary.module}": a relative path is resolved by the client that applies a Function; give the Rollout an absolute reference (blob:, oci://, http(s)://, an absolute host path)`, reason: 'FieldValueInvalid' });
  }
  const readAnalysis = (a: Any, at: string): RolloutAnalysis | undefined => {
    if (a === undefined) return undefined;
    const intervalMs = a.interval === undefined ? DEFAULT_ANALYSIS_INTERVAL_MS : parseDurationMs(String(a.interval));
    if (intervalMs === undefined || intervalMs < MIN_INTERVAL_MS) errors.push({ field: `${at}.interval`, message: `Invalid value: "${a.interval}": a duration of at least ${MIN_INTERVAL_MS}ms, such as 2s`, reason: 'FieldValueInvalid' });
    const metrics: RolloutMetric[] = [];
    const seen = new Set<string>();
    (Array.isArray(a.metrics) ? a.metrics : []).forEach((m: Any, i: number) => {
      const mat = `${at}.metrics[${i}]`;
      if (seen.has(m.name)) errors.push({ field: `${mat}.name`, message: `Duplicate value: "${m.name}"`, reason: 'FieldValueDuplicate' });
      seen.add(m.name);
      const conds = ['successRate', 'latencyP99', 'rego'].filter((k) => m[k] !== undefined);
      if (conds.length !== 1) {
        errors.push({ field: mat, message: conds.length ? `Invalid value: set one of successRate, latencyP99 or rego, not ${conds.join(' and ')}` : 'Required value: one of successRate, latencyP99 or rego', reason: conds.length ? 'FieldValueInvalid' : 'FieldValueRequired' });
        return;
      }
      if (m.successRate) metrics.push({ name: m.name, kind: 'successRate', min: m.successRate.min });
      else if (m.latencyP99) metrics.push({ name: m.name, kind: 'latencyP99', maxMs: m.latencyP99.maxMs });
      else metrics.push({ name: m.name, kind: 'rego', policy: m.rego.policy, query: m.rego.query });
    });
    if (!metrics.length && !errors.some((e) => e.field.startsWith(`${at}.metrics`))) errors.push({ field: `${at}.metrics`, message: 'Required value: at least one metric', reason: 'FieldValueRequired' });
    return { intervalMs: intervalMs ?? DEFAULT_ANALYSIS_INTERVAL_MS, failureLimit: a.failureLimit ?? 0, minRequests: a.minRequests ?? DEFAULT_MIN_REQUESTS, metrics };
  };
  const strategy: Any = spec?.strategy ?? {};
  let planned: RolloutPlan['strategy'] | undefined;
  if (strategy.canary && !strategy.blueGreen) {
    const analysis = readAnalysis(strategy.canary.analysis, 'spec.strategy.canary.analysis');
    let weight = 0;
    const steps: RolloutStep[] = (Array.isArray(strategy.canary.steps) ? strategy.canary.steps : []).map((s: Any, i: number): RolloutStep => {
      if (s.setWeight !== undefined) {
        weight = s.setWeight;
        return { kind: 'setWeight', weight: s.setWeight };
      }
      if (s.pause !== undefined) {
        if (s.pause.duration === undefined) return { kind: 'pause' };
        const ms = parseDurationMs(String(s.pause.duration));
        if (ms === undefined) errors.push({ field: `spec.strategy.canary.steps[${i}].pause.duration`, message: `Invalid value: "${s.pause.duration}": a duration such as 10s or 1m30s`, reason: 'FieldValueInvalid' });
        return { kind: 'pause', durationMs: ms ?? 0 };
      }
      if (!analysis) errors.push({ field: `spec.strategy.canary.steps[${i}].analysis`, message: 'Invalid value: an analysis step needs spec.strategy.canary.analysis (the metrics to judge by)', reason: 'FieldValueInvalid' });
      // Analysis measures the canary's own requests: with no traffic on it the step could never pass.
      else if (weight === 0) errors.push({ field: `spec.strategy.canary.steps[${i}].analysis`, message: 'Invalid value: the canary has no traffic at this step; put a setWeight above 0 before it', reason: 'FieldValueInvalid' });
      return { kind: 'analysis', count: s.analysis?.count ?? 1 };
    });
    planned = { kind: 'canary', steps, analysis };
  } else if (strategy.blueGreen && !strategy.canary) {
    const bg: Any = strategy.blueGreen;
    if (bg.previewRouteRef?.name === spec?.routeRef?.name) errors.push({ field: 'spec.strategy.blueGreen.previewRouteRef.name', message: `Invalid value: "${bg.previewRouteRef?.name}": the preview Route must differ from spec.routeRef (the active Route)`, reason: 'FieldValueInvalid' });
    planned = { kind: 'blueGreen', previewRouteName: bg.previewRouteRef?.name, autoPromotionMs: bg.autoPromotionSeconds === undefined ? undefined : bg.autoPromotionSeconds * 1000, analysis: readAnalysis(bg.analysis, 'spec.strategy.blueGreen.analysis') };
  } else {
    errors.push({ field: 'spec.strategy', message: 'Required value: exactly one of canary or blueGreen', reason: 'FieldValueRequired' });
  }
  if (errors.length || !planned) return { errors };
  const field = set[0] as 'module' | 'image';
  return {
    errors,
    plan: { functionName: spec.functionRef.name, routeName: spec.routeRef.name, canaryField: field, canaryRef: canary[field], canaryDigest: canary.digest, strategy: planned },
  };
}

/** stepColumn renders STEP as i/n (a blue-green rollout has one step: the preview). */
function stepColumn(o: ResourceObject): string {
  const steps = Array.isArray(o.spec?.strategy?.canary?.steps) ? o.spec.strategy.canary.steps.length : 1;
  const i = typeof o.status?.currentStepIndex === 'number' ? o.status.currentStepIndex : 0;
  return `${Math.min(i, steps)}/${steps}`;
}

/**
 * rolloutKind is the Rollout resource (skiff.dev/v1): a new version of a Function takes traffic step
 * by step through a Route's weights while its metrics stay healthy, and is promoted or aborted.
 *
 * @example
 * apiVersion: skiff.dev/v1
 * kind: Rollout
 * metadata: { name: hello }
 * spec:
 *   functionRef: { name: hello }
 *   routeRef: { name: hello }
 *   canary: { module: oci://registry.local/hello:v2 }
 *   strategy:
 *     canary:
 *       steps: [{ setWeight: 20 }, { analysis: {} }, { setWeight: 100 }]
 *       analysis: { interval: 2s, metrics: [{ name: success-rate, successRate: { min: 0.95 } }] }
 */
export const rolloutKind: KindDefinition = {
  kind: 'Rollout',
  plural: 'rollouts',
  singular: 'rollout',
  shortNames: ['ro'],
  categories: ['all'],
  namespaced: true,
  description:
    'Rollout moves a Function to a new module or image progressively: a canary Function takes a growing share of a Route\'s traffic step by step while analysis of its success rate, p99 latency and Rego conditions passes, then the stable Function takes the new version (promotion); a failed analysis returns all traffic to stable at once (abort). Blue-green previews the new version on a second Route, then switches.',
  specSchema: rolloutSpecSchema,
  statusSchema: {
    type: 'object',
    description: 'Where the rollout stands, written by the rollout controller.',
    properties: {
      phase: { enum: ['Progressing', 'Paused', 'Healthy', 'Degraded'], description: 'Progressing (steps running), Paused (waiting for skiff rollout promote), Healthy (no rollout running: the stable version serves), Degraded (aborted: all traffic is back on stable).' },
      currentStepIndex: { type: 'integer', description: 'The step being run (the number of steps once promoted).' },
      canaryWeight: { type: 'integer', description: 'Percentage of the traffic the canary gets.' },
      stableModule: { type: 'string', description: 'The version the stable Function serves.' },
      canaryModule: { type: 'string', description: 'The version being rolled out (or last aborted).' },
      analysis: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, description: 'The last measurement: requests, each metric\'s value and verdict, passes, failures and inconclusive counts.' },
      message: { type: 'string', description: 'What the rollout is doing or why it stopped.' },
      observedGeneration: { type: 'integer', description: 'The generation this status describes.' },
      conditions: { type: 'array', items: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Condition' }, description: 'Ready: True when Healthy; Progressing: True while a rollout runs.' },
    },
  },
  validate: (obj) => rolloutPlan(obj.spec).errors,
  printerColumns: [
    { name: 'PHASE', jsonPath: '.status.phase', value: (o) => String(o.status?.phase ?? '') },
    { name: 'STEP', description: 'The current step and the number of steps', value: stepColumn },
    { name: 'WEIGHT', type: 'integer', description: 'Percentage of traffic on the canary', jsonPath: '.status.canaryWeight', value: (o) => String(o.status?.canaryWeight ?? 0) },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
    { name: 'MESSAGE', wide: true, jsonPath: '.status.message', value: (o) => String(o.status?.message ?? '') },
  ],
};
