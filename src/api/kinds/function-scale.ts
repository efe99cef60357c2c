import type { FieldError, ResourceObject } from './types.js';

/**
 * The schema of a Function's `spec.scale` and `spec.replicas`, and of the replica fields of its
 * status. The schema checks shapes only (types, enums, integer bounds the field can never leave);
 * what depends on several fields or on the runtime class (initialScale 0 only with minScale 0, a
 * stable window between 6s and 1h, ...) is the autoscaler's policy to judge, through the
 * `ScaleSpecValidator` the composition root hands to `builtinKinds`.
 */

const duration = (description: string) => ({ anyOf: [{ type: 'string', minLength: 1 }, { type: 'integer', minimum: 0 }], description });
const percent = (description: string) => ({ type: 'number', minimum: 1, maximum: 100, description });

/** Kubernetes' HPA v2 scaling rules for one direction; shared with the HorizontalPodAutoscaler kind. */
export const hpaScalingRulesSchema = (direction: 'up' | 'down') => ({
  type: 'object',
  additionalProperties: false,
  description:
    direction === 'up'
      ? 'How fast replicas may be added. Default: no stabilization, and per 15 seconds at most double the replicas or add 4, whichever is more.'
      : 'How fast replicas may be removed. Default: the highest recommendation of the last 300 seconds, and per 15 seconds up to all replicas.',
  properties: {
    stabilizationWindowSeconds: {
      type: 'integer',
      minimum: 0,
      maximum: 3600,
      description: `Seconds of past recommendations considered: scaling ${direction} goes only as far as the ${direction === 'up' ? 'lowest' : 'highest'} recommendation in that window. Default ${direction === 'up' ? 0 : 300}.`,
    },
    selectPolicy: { enum: ['Max', 'Min', 'Disabled'], description: 'Which policy wins when several apply: Max (the one allowing the largest change, default), Min (the smallest), or Disabled (no scaling in this direction).' },
    tolerance: { anyOf: [{ type: 'string' }, { type: 'number', minimum: 0 }], description: 'Relative difference between the metric and its target below which nothing changes, as a quantity such as 0.05. Default 0.1.' },
    policies: {
      type: 'array',
      'x-kubernetes-list-type': 'atomic',
      description: 'Limits on the change within a period; selectPolicy picks among them.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['type', 'value', 'periodSeconds'],
        properties: {
          type: { enum: ['Pods', 'Percent'], description: 'Pods: a number of replicas; Percent: a percentage of the current replicas.' },
          value: { type: 'integer', minimum: 1, description: 'How many replicas (Pods) or what percentage (Percent) may change within the period; more than 0.' },
          periodSeconds: { type: 'integer', minimum: 1, maximum: 1800, description: 'The period the limit holds over, in seconds (1 to 1800).' },
        },
      },
    },
  },
});

/** HPA v2 behavior: the scale-up and scale-down rules. */
export const hpaBehaviorSchema = (description: string) => ({
  type: 'object',
  additionalProperties: false,
  description,
  properties: { scaleUp: hpaScalingRulesSchema('up'), scaleDown: hpaScalingRulesSchema('down') },
});

const triggerSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'metadata'],
  properties: {
    type: { enum: ['cron', 'metrics-api', 'skiff'], description: 'cron: a desired count during a schedule; metrics-api: a number read from an HTTP endpoint; skiff: one of Skiff\'s own metrics.' },
    name: { type: 'string', description: 'A name for the trigger, shown in status.autoscaler. Default: its type and position.' },
    metadata: {
      type: 'object',
      additionalProperties: { type: 'string' },
      description:
        'The trigger\'s settings, every value a string as in a KEDA ScaledObject. cron: timezone (IANA name, default UTC), start and end (5-field cron expressions), desiredReplicas. metrics-api: url, valueLocation (dotted path into the JSON answer, such as stats.queue or items.0.n), targetValue, activationTargetValue (default 0), method (GET). skiff: metricName (a skiff_* family), labels (a JSON object string, default none), targetValue; counters are read as a per-second rate.',
    },
  },
};

/** Schema of `spec.scale`. */
export const scaleSpecSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'How the Function\'s replicas follow its load. Everything is optional; without spec.scale the Function is autoscaled with the defaults below (unless spec.replicas fixes its size).',
  properties: {
    class: { enum: ['kpa', 'hpa'], description: 'The algorithm: kpa (default) follows Knative\'s autoscaler with stable and panic windows; hpa uses the HorizontalPodAutoscaler v2 algorithm on the same metric.' },
    minScale: { type: 'integer', minimum: 0, description: 'Fewest replicas. Default 0 for wasm Functions (nothing resident but the compiled module until a request comes), 1 for container and vm Functions. With 0, a request that finds no replica waits until one is ready.' },
    maxScale: { type: 'integer', minimum: 0, description: 'Most replicas at once; 0 (the default) means no limit.' },
    initialScale: { type: 'integer', minimum: 0, description: 'Replicas started when the Function is created. Default 1; 0 is allowed only when minScale is 0.' },
    activationScale: { type: 'integer', minimum: 1, description: 'Fewest replicas started when scaling up from zero. Default 1.' },
    metric: { enum: ['concurrency', 'rps'], description: 'What the autoscaler measures: concurrency (requests in flight, the default) or rps (requests per second).' },
    target: { type: 'number', minimum: 0, description: 'What one replica should carry of the metric: in-flight requests (default 100) or requests per second (default 200).' },
    targetUtilization: percent('Percentage of target the autoscaler aims at, leaving headroom for bursts. Default 70.'),
    stableWindow: duration('Window the average metric is taken over in normal (stable) mode, from 6s to 1h. Default 60s.'),
    panicWindowPercentage: percent('The panic window as a percentage of the stable window. Default 10.'),
    panicThresholdPercentage: { type: 'number', minimum: 110, maximum: 1000, description: 'Load over the panic window, as a percentage of what the ready replicas can carry, that starts panic mode (no scale-down while it lasts). Default 200.' },
    scaleDownDelay: duration('How long a lower replica count must hold before the autoscaler scales down to it, up to 1h. Default 0s.'),
    scaleToZeroGracePeriod: duration('How long the last replica stays after the decision to scale to zero. Default 30s.'),
    maxScaleUpRate: { type: 'number', minimum: 1, description: 'One decision leaves at most ceil(rate × ready replicas) replicas. Default 1000.' },
    maxScaleDownRate: { type: 'number', minimum: 1, description: 'One decision leaves at least floor(ready replicas ÷ rate) replicas. Default 2.' },
    predictive: {
      type: 'object',
      additionalProperties: false,
      description: 'Pre-warming from a Holt-Winters forecast of the request rate (daily and weekly seasons); the reactive recommendation takes over when the forecast has been poor.',
      properties: {
        enabled: { type: 'boolean', description: 'Scale ahead of the forecast. Default false.' },
        leadTime: duration('How far ahead replicas are started. Default: the runtime class\'s cold-start time.'),
        maxError: { type: 'number', minimum: 0, description: 'Largest recent relative forecast error at which the forecast is still used. Default 0.5.' },
      },
    },
    behavior: hpaBehaviorSchema('HorizontalPodAutoscaler v2 behavior, with Kubernetes\' field names and defaults, applied to the recommendation of either class.'),
    triggers: { type: 'array', 'x-kubernetes-list-type': 'atomic', maxItems: 32, items: triggerSchema, description: 'Event-driven inputs in the KEDA style; the highest recommendation of the metric and all triggers wins.' },
  },
} as const;

/** Schema of `spec.replicas`. */
export const replicasSchema = {
  type: 'integer',
  minimum: 0,
  description: 'A fixed number of replicas, which the scale subresource (kubectl scale) writes. While it is set the Function is not autoscaled, unless a HorizontalPodAutoscaler targets it. Default: unset (autoscaled).',
} as const;

/** Status fields about replicas and the autoscaler's decision. */
export const replicaStatusProperties = {
  replicas: { type: 'integer', description: 'Replicas that exist: warm instances of a wasm Function, processes or VMs of a container or vm one. Absent means 0.' },
  readyReplicas: { type: 'integer', description: 'Replicas that are ready and receive traffic.' },
  desiredReplicas: { type: 'integer', description: 'Replicas the autoscaler (or spec.replicas) asks for now.' },
  autoscaler: {
    type: 'object',
    description: 'The autoscaler\'s latest decision and what it was based on.',
    'x-kubernetes-preserve-unknown-fields': true,
    properties: {
      recommendation: { type: 'integer', description: 'Replicas recommended before the bounds of spec.scale apply.' },
      reason: { enum: ['reactive', 'panic', 'predicted', 'cron', 'external', 'minScale', 'maxScale', 'fixed', 'hpa', 'activation', 'initial'], description: 'What decided the count: reactive, panic, predicted, cron, external (a trigger), minScale, maxScale, fixed (spec.replicas), hpa (a HorizontalPodAutoscaler), activation (scaling from zero) or initial.' },
      panic: { type: 'boolean', description: 'Whether the autoscaler is in panic mode.' },
      metric: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, description: 'The observed metric: stable and panic averages and the target.' },
      forecast: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, description: 'The forecast used for pre-warming and its recent error.' },
    },
  },
} as const;

/**
 * ScaleSpecValidator judges a Function's `spec.scale` beyond its schema (the autoscaler's
 * `validateScaleSpec`, which the composition root connects); field paths start at the object root
 * (`spec.scale.stableWindow`).
 */
export type ScaleSpecValidator = (fn: ResourceObject) => FieldError[];

/** The label every replica of a Function carries, which the scale subresource's selector names. */
export const FUNCTION_LABEL = 'skiff.dev/function';

/** replicasColumn is `ready/desired` (`1/3`), read from status: what `kubectl get fn` shows under REPLICAS. */
export function replicasColumn(o: ResourceObject): string {
  const st = o.status ?? {};
  const ready = typeof st.readyReplicas === 'number' ? st.readyReplicas : 0;
  const desired = typeof st.desiredReplicas === 'number' ? st.desiredReplicas : typeof o.spec?.replicas === 'number' ? o.spec.replicas : typeof st.replicas === 'number' ? st.replicas : 0;
  return `${ready}/${desired}`;
}
