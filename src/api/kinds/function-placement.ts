import type { FieldError } from './types.js';

/**
 * The Function fields that say where its replicas may run, in Kubernetes' shapes (a Pod's
 * nodeSelector, affinity.nodeAffinity and tolerations), and the scheduler's record of where they were
 * placed (status.placement). Container and VM replicas are scheduled onto nodes with them; a Wasm
 * Function is loaded on every node they match.
 */

const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'];
const EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];

const requirement = {
  type: 'object',
  additionalProperties: false,
  required: ['key', 'operator'],
  properties: {
    key: { type: 'string', minLength: 1, description: 'The label key (matchFields: metadata.name).' },
    operator: { enum: OPERATORS, description: 'In, NotIn, Exists, DoesNotExist, Gt or Lt.' },
    values: { type: 'array', items: { type: 'string' }, description: 'Values for In and NotIn (at least one), one integer for Gt and Lt, none for Exists and DoesNotExist.' },
  },
};

const term = {
  type: 'object',
  additionalProperties: false,
  description: 'Requirements that must all hold; an empty term matches no node.',
  properties: {
    matchExpressions: { type: 'array', items: requirement, description: 'Requirements on the node\'s labels.' },
    matchFields: { type: 'array', items: requirement, description: 'Requirements on the node\'s fields (metadata.name).' },
  },
};

/** Schema properties of Function.spec for placement. */
export const placementSpecProperties = {
  nodeSelector: { type: 'object', additionalProperties: { type: 'string' }, description: 'Labels a node must have for this Function\'s replicas (container, vm) or module (wasm) to run there, such as skiff.dev/runtime-class-vm: "true".' },
  affinity: {
    type: 'object',
    additionalProperties: false,
    description: 'Node affinity, as a Pod\'s.',
    properties: {
      nodeAffinity: {
        type: 'object',
        additionalProperties: false,
        description: 'Which nodes may run the Function (required terms) and which are preferred (weighted terms).',
        properties: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            type: 'object',
            additionalProperties: false,
            required: ['nodeSelectorTerms'],
            description: 'Nodes must match one of the terms. Replicas already placed stay when labels change later.',
            properties: { nodeSelectorTerms: { type: 'array', minItems: 1, items: term, description: 'Terms ORed: a node matching any of them may run the Function.' } },
          },
          preferredDuringSchedulingIgnoredDuringExecution: {
            type: 'array',
            description: 'Nodes that match a term are preferred by its weight (spreading over nodes comes first).',
            items: { type: 'object', additionalProperties: false, required: ['weight', 'preference'], properties: { weight: { type: 'integer', minimum: 1, maximum: 100, description: 'How much a match counts, 1 to 100.' }, preference: term } },
          },
        },
      },
    },
  },
  tolerations: {
    type: 'array',
    'x-kubernetes-list-type': 'atomic',
    description: 'Taints this Function tolerates. A NoExecute toleration with tolerationSeconds keeps replicas on a tainted node that long (node.kubernetes.io/unreachable and not-ready default to 300 s).',
    items: {
      type: 'object',
      additionalProperties: false,
      properties: {
        key: { type: 'string', description: 'The taint key; empty with operator Exists tolerates every taint.' },
        operator: { enum: ['Exists', 'Equal'], description: 'Equal (default) or Exists.' },
        value: { type: 'string', description: 'The taint value, for Equal.' },
        effect: { enum: ['', ...EFFECTS], description: 'The effect tolerated; empty for all.' },
        tolerationSeconds: { type: 'integer', description: 'For NoExecute: how long replicas stay after the taint was added.' },
      },
    },
  },
} as const;

/** Schema of Function.status.placement. */
export const placementStatusProperties = {
  placement: {
    type: 'array',
    description: 'Where the scheduler placed a container or vm Function\'s replicas: replicas per node. Each node runs the replicas placed on it.',
    items: { type: 'object', required: ['nodeName', 'replicas'], properties: { nodeName: { type: 'string', description: 'The node.' }, replicas: { type: 'integer', minimum: 0, description: 'Replicas that run there.' } } },
  },
} as const;

/** validatePlacement checks what the schema cannot: operators against their values, tolerations' combinations. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a spec as stored: any shape, checked field by field
export function validatePlacement(spec: Record<string, any>): FieldError[] {
  const errs: FieldError[] = [];
  const bad = (field: string, message: string) => errs.push({ field, message: `Invalid value: ${message}`, reason: 'FieldValueInvalid' });
  const checkTerm = (t: { matchExpressions?: unknown; matchFields?: unknown } | undefined, at: string) => {
    for (const [list, fields] of [['matchExpressions', false], ['matchFields', true]] as const) {
      const reqs = t?.[list];
      if (!Array.isArray(reqs)) continue;
      reqs.forEach((r: { key?: string; operator?: string; values?: unknown }, i) => {
        const f = `${at}.${list}[${i}]`;
        const values = Array.isArray(r.values) ? (r.values as unknown[]) : [];
        if (fields && r.key !== 'metadata.name') bad(`${f}.key`, `"${r.key}": the only field a node can be matched on is metadata.name`);
        if (fields && r.operator !== 'In' && r.operator !== 'NotIn') bad(`${f}.operator`, `"${r.operator}": matchFields take In or NotIn`);
        if ((r.operator === 'In' || r.operator === 'NotIn') && values.length === 0) bad(`${f}.values`, `${r.operator} needs at least one value`);
        if ((r.operator === 'Exists' || r.operator === 'DoesNotExist') && values.length > 0) bad(`${f}.values`, `${r.operator} takes no values`);
        if ((r.operator === 'Gt' || r.operator === 'Lt') && (values.length !== 1 || !/^-?\d+$/.test(String(values[0])))) bad(`${f}.values`, `${r.operator} takes exactly one integer value`);
      });
    }
  };
  const na = spec.affinity?.nodeAffinity;
  (na?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []).forEach((t: object, i: number) => checkTerm(t, `spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[${i}]`));
  (na?.preferredDuringSchedulingIgnoredDuringExecution ?? []).forEach((p: { preference?: object }, i: number) => checkTerm(p.preference, `spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[${i}].preference`));
  (Array.isArray(spec.tolerations) ? spec.tolerations : []).forEach((t: { key?: string; operator?: string; value?: string; effect?: string; tolerationSeconds?: number }, i: number) => {
    const f = `spec.tolerations[${i}]`;
    if (!t.key && t.operator !== 'Exists') bad(`${f}.operator`, 'a toleration without a key must have operator Exists (it tolerates every taint)');
    if (t.operator === 'Exists' && t.value) bad(`${f}.value`, 'operator Exists takes no value');
    if (t.tolerationSeconds !== undefined && t.effect !== 'NoExecute') bad(`${f}.effect`, 'tolerationSeconds needs effect NoExecute');
  });
  return errs;
}
