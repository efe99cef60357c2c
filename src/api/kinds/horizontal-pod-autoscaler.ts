import { formatAge, parseQuantity } from '../../util/quantity.js';

import { hpaBehaviorSchema } from './function-scale.js';
import type { FieldError, KindDefinition, ResourceObject } from './types.js';

/**
 * HorizontalPodAutoscaler: Kubernetes' autoscaling/v2 kind, so HPA manifests people already have
 * apply as they are; its target is a Function's scale subresource. The schema is Kubernetes'; the
 * checks below add what Skiff can act on (a Function target, the metric sources it reads).
 */

const quantity = (description: string) => ({ anyOf: [{ type: 'string', minLength: 1 }, { type: 'number' }], description });

const labelSelector = {
  type: 'object',
  additionalProperties: false,
  description: 'A label selector: matchLabels and matchExpressions must all hold.',
  properties: {
    matchLabels: { type: 'object', additionalProperties: { type: 'string' }, description: 'Labels that must have these values.' },
    matchExpressions: {
      type: 'array',
      'x-kubernetes-list-type': 'atomic',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['key', 'operator'],
        properties: {
          key: { type: 'string', description: 'The label key.' },
          operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'], description: 'How the key relates to the values.' },
          values: { type: 'array', items: { type: 'string' }, 'x-kubernetes-list-type': 'atomic', description: 'Values for In and NotIn; empty for Exists and DoesNotExist.' },
        },
      },
      description: 'Requirements on labels.',
    },
  },
};

const metricIdentifier = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  description: 'Which metric: its name and, optionally, a selector on its labels.',
  properties: { name: { type: 'string', minLength: 1, description: 'The metric\'s name (for Skiff\'s own metrics, a skiff_* family).' }, selector: labelSelector },
};

const metricTarget = {
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  description: 'The value the autoscaler keeps the metric at.',
  properties: {
    type: { enum: ['Utilization', 'Value', 'AverageValue'], description: 'Utilization (a percentage of what each replica asks for), Value (the metric as a whole) or AverageValue (the metric divided by the replicas).' },
    value: quantity('Target of the whole metric, for type Value.'),
    averageValue: quantity('Target per replica, for type AverageValue.'),
    averageUtilization: { type: 'integer', minimum: 1, description: 'Target percentage of the requested resource per replica, for type Utilization.' },
  },
};

const crossVersionRef = {
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'name'],
  properties: {
    apiVersion: { type: 'string', description: 'API version of the referent.' },
    kind: { type: 'string', minLength: 1, description: 'Kind of the referent.' },
    name: { type: 'string', minLength: 1, description: 'Name of the referent, in the autoscaler\'s namespace.' },
  },
};

const metricSpec = {
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  description: 'One metric the replica count follows; the count is the highest any metric asks for.',
  properties: {
    type: { enum: ['Resource', 'Pods', 'Object', 'External', 'ContainerResource'], description: 'Which source member is set: Resource (cpu or memory per replica), Pods (a per-replica metric), Object (a metric of another object) or External (a metric from outside). ContainerResource is Kubernetes\' and not supported: a replica is one process here, use Resource.' },
    resource: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'target'],
      description: 'CPU or memory of the replicas, for type Resource.',
      properties: { name: { type: 'string', description: 'cpu or memory.' }, target: metricTarget },
    },
    containerResource: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, description: 'Kubernetes\' per-container resource metric; refused: a replica is one process, use resource.' },
    pods: { type: 'object', additionalProperties: false, required: ['metric', 'target'], description: 'A metric averaged over the replicas, for type Pods.', properties: { metric: metricIdentifier, target: metricTarget } },
    object: {
      type: 'object',
      additionalProperties: false,
      required: ['describedObject', 'metric', 'target'],
      description: 'A metric describing one object (a Route, say), for type Object.',
      properties: { describedObject: crossVersionRef, metric: metricIdentifier, target: metricTarget },
    },
    external: { type: 'object', additionalProperties: false, required: ['metric', 'target'], description: 'A metric not tied to an object, for type External.', properties: { metric: metricIdentifier, target: metricTarget } },
  },
};

const MEMBER: Record<string, string> = { Resource: 'resource', Pods: 'pods', Object: 'object', External: 'external', ContainerResource: 'containerResource' };
const TARGET_TYPES: Record<string, string[]> = { Resource: ['Utilization', 'AverageValue'], Pods: ['AverageValue'], Object: ['Value', 'AverageValue'], External: ['Value', 'AverageValue'] };
const TARGET_FIELD: Record<string, string> = { Utilization: 'averageUtilization', Value: 'value', AverageValue: 'averageValue' };

/** The kind and apiVersion an autoscaler may target: a Function's scale subresource. */
const TARGET_API_VERSION = 'skiff.dev/v1';
const TARGET_KIND = 'Function';

/** HorizontalPodAutoscaler: Kubernetes' autoscaling/v2 kind, targeting a Function. */
export const horizontalPodAutoscalerKind: KindDefinition = {
  group: 'autoscaling',
  version: 'v2',
  kind: 'HorizontalPodAutoscaler',
  plural: 'horizontalpodautoscalers',
  singular: 'horizontalpodautoscaler',
  shortNames: ['hpa'],
  categories: ['all'],
  namespaced: true,
  description:
    'HorizontalPodAutoscaler sets a Function\'s replicas from metrics, with Kubernetes\' HPA v2 algorithm and behavior. Its target is a Function (apiVersion skiff.dev/v1) through the Function\'s scale subresource; the metrics are read from Skiff\'s own measurements.',
  specSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['scaleTargetRef', 'maxReplicas'],
    properties: {
      scaleTargetRef: { ...crossVersionRef, required: ['apiVersion', 'kind', 'name'], description: 'The Function to scale: apiVersion skiff.dev/v1, kind Function, and its name in this namespace.' },
      minReplicas: { type: 'integer', minimum: 0, description: 'Fewest replicas. Default 1; 0 lets the Function scale to zero when every metric allows it.' },
      maxReplicas: { type: 'integer', minimum: 1, description: 'Most replicas; at least 1 and at least minReplicas.' },
      metrics: { type: 'array', 'x-kubernetes-list-type': 'atomic', maxItems: 32, items: metricSpec, description: 'The metrics to follow. Default: CPU utilization at 80%.' },
      behavior: hpaBehaviorSchema('How fast the replica count may change in each direction. Default: Kubernetes\' (scale up without delay by 100% or 4 replicas per 15 s; scale down to the highest recommendation of the last 5 minutes).'),
    },
  },
  statusSchema: {
    type: 'object',
    properties: {
      observedGeneration: { type: 'integer', description: 'The generation of the spec this status was computed from.' },
      lastScaleTime: { type: 'string', format: 'date-time', description: 'When the autoscaler last changed the replica count.' },
      currentReplicas: { type: 'integer', description: 'Replicas the target had when last observed.' },
      desiredReplicas: { type: 'integer', description: 'Replicas the autoscaler last asked for.' },
      currentMetrics: { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, description: 'The last value read of each metric, in the order of spec.metrics (each with type and the matching member\'s current value).' },
      conditions: { type: 'array', items: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Condition' }, description: 'AbleToScale, ScalingActive and ScalingLimited, as Kubernetes reports them.' },
    },
  },
  validate: validateHpa,
  printerColumns: [
    { name: 'REFERENCE', description: 'The scale target as KIND/NAME', value: (o) => `${o.spec?.scaleTargetRef?.kind ?? ''}/${o.spec?.scaleTargetRef?.name ?? ''}` },
    { name: 'TARGETS', description: 'Current and target value of each metric', value: (o) => targetsColumn(o) },
    { name: 'MINPODS', type: 'integer', description: 'spec.minReplicas', value: (o) => (o.spec?.minReplicas !== undefined ? String(o.spec.minReplicas) : '<unset>') },
    { name: 'MAXPODS', type: 'integer', description: 'spec.maxReplicas', value: (o) => String(o.spec?.maxReplicas ?? 0) },
    { name: 'REPLICAS', type: 'integer', description: 'status.currentReplicas', value: (o) => String(o.status?.currentReplicas ?? 0) },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
  ],
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a spec as stored, read after schema validation
type Any = any;

function validateHpa(obj: ResourceObject): FieldError[] {
  const spec: Any = obj.spec ?? {};
  const errs: FieldError[] = [];
  const ref: Any = spec.scaleTargetRef ?? {};
  if (typeof ref.kind === 'string' && ref.kind !== TARGET_KIND) {
    errs.push({ field: 'spec.scaleTargetRef.kind', message: `Unsupported value: "${ref.kind}": Skiff scales Functions; use kind ${TARGET_KIND} with apiVersion ${TARGET_API_VERSION}`, reason: 'FieldValueNotSupported' });
  }
  if (typeof ref.apiVersion === 'string' && ref.apiVersion !== TARGET_API_VERSION) {
    errs.push({ field: 'spec.scaleTargetRef.apiVersion', message: `Unsupported value: "${ref.apiVersion}": a ${TARGET_KIND} is ${TARGET_API_VERSION}`, reason: 'FieldValueNotSupported' });
  }
  if (typeof spec.maxReplicas === 'number' && spec.maxReplicas < (spec.minReplicas ?? 1)) {
    errs.push({ field: 'spec.maxReplicas', message: `Invalid value: ${spec.maxReplicas}: must be greater than or equal to minReplicas (${spec.minReplicas ?? 1})`, reason: 'FieldValueInvalid' });
  }
  const metrics: Any[] = Array.isArray(spec.metrics) ? spec.metrics : [];
  metrics.forEach((m, i) => errs.push(...metricProblems(m, `spec.metrics[${i}]`)));
  return errs;
}

function metricProblems(m: Any, at: string): FieldError[] {
  const errs: FieldError[] = [];
  const type = String(m.type);
  if (type === 'ContainerResource') return [{ field: `${at}.type`, message: 'Unsupported value: "ContainerResource": a Function replica is one process; use type Resource', reason: 'FieldValueNotSupported' }];
  const member = MEMBER[type];
  if (!member) return errs;
  for (const [t, other] of Object.entries(MEMBER)) {
    if (t !== type && m[other] !== undefined) errs.push({ field: `${at}.${other}`, message: `Forbidden: must be unset for type ${type} (set ${at}.${member})`, reason: 'FieldValueForbidden' });
  }
  const source: Any = m[member];
  if (source === undefined) {
    errs.push({ field: `${at}.${member}`, message: `Required value: a metric of type ${type} needs ${member}`, reason: 'FieldValueRequired' });
    return errs;
  }
  if (type === 'Resource' && source.name !== 'cpu' && source.name !== 'memory') {
    errs.push({ field: `${at}.resource.name`, message: `Unsupported value: "${source.name}": supported values: "cpu", "memory"`, reason: 'FieldValueNotSupported' });
  }
  if (type === 'External' && source.metric && source.metric.selector?.matchExpressions !== undefined) {
    errs.push({ field: `${at}.external.metric.selector.matchExpressions`, message: 'Unsupported value: external metrics are matched by selector.matchLabels only', reason: 'FieldValueNotSupported' });
  }
  const target: Any = source.target;
  if (!target) return errs;
  const tAt = `${at}.${member}.target`;
  const allowed = TARGET_TYPES[type]!;
  if (!allowed.includes(target.type)) {
    errs.push({ field: `${tAt}.type`, message: `Unsupported value: "${target.type}": a ${type} metric's target is ${allowed.join(' or ')}`, reason: 'FieldValueNotSupported' });
    return errs;
  }
  const needed = TARGET_FIELD[target.type]!;
  if (target[needed] === undefined) errs.push({ field: `${tAt}.${needed}`, message: `Required value: a target of type ${target.type} needs ${needed}`, reason: 'FieldValueRequired' });
  for (const [t, f] of Object.entries(TARGET_FIELD)) {
    if (t !== target.type && target[f] !== undefined) errs.push({ field: `${tAt}.${f}`, message: `Forbidden: must be unset for a target of type ${target.type}`, reason: 'FieldValueForbidden' });
  }
  for (const f of ['value', 'averageValue']) {
    const q = target[f];
    if (q === undefined) continue;
    const n = parseQuantity(q);
    if (n === undefined) errs.push({ field: `${tAt}.${f}`, message: `Invalid value: "${q}": not a quantity (such as 100m, 2, 512Mi)`, reason: 'FieldValueInvalid' });
    else if (n <= 0) errs.push({ field: `${tAt}.${f}`, message: `Invalid value: "${q}": must be positive`, reason: 'FieldValueInvalid' });
  }
  return errs;
}

/**
 * targetsColumn renders each metric as `current/target` the way kubectl prints an HPA (`<unknown>`
 * before a value has been read, `(avg)` for an Object or External average), the first two only.
 */
export function targetsColumn(o: ResourceObject): string {
  const specs: Any[] = Array.isArray(o.spec?.metrics) ? o.spec.metrics : [];
  if (!specs.length) return '<none>';
  const statuses: Any[] = Array.isArray(o.status?.currentMetrics) ? o.status.currentMetrics : [];
  const shown = specs.slice(0, 2).map((m, i) => {
    const cur = statuses[i]?.type === m.type ? statuses[i] : undefined;
    const member = MEMBER[String(m.type)];
    const target: Any = member ? m[member]?.target ?? {} : {};
    const current: Any = member && cur ? cur[member]?.current ?? {} : {};
    const show = (v: unknown, suffix = '') => (v === undefined || v === null ? '<unknown>' : `${String(v)}${suffix}`);
    switch (target.type) {
      case 'Utilization':
        return `${m.resource?.name ?? ''}: ${show(current.averageUtilization, '%')}/${show(target.averageUtilization, '%')}`;
      case 'Value':
        return `${show(current.value)}/${show(target.value)}`;
      case 'AverageValue':
        return `${show(current.averageValue)}/${show(target.averageValue)}${m.type === 'Object' || m.type === 'External' ? ' (avg)' : ''}`;
      default:
        return '<unknown>';
    }
  });
  return specs.length > 2 ? `${shown.join(', ')} + ${specs.length - 2} more...` : shown.join(', ');
}
