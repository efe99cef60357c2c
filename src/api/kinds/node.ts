import { formatAge } from '../../util/quantity.js';

import type { Condition } from './conditions.js';
import { CORE_GROUP, type FieldError, type KindDefinition, type ResourceObject } from './types.js';

/** The namespace of the nodes' heartbeat Leases, one per node and named after it, as in Kubernetes. */
export const NODE_LEASE_NAMESPACE = 'kube-node-lease';

/** A node carries `skiff.dev/runtime-class-NAME: "true"` for each runtime class it can run, for nodeSelectors. */
export const RUNTIME_CLASS_LABEL_PREFIX = 'skiff.dev/runtime-class-';

/** The annotation `skiff drain` sets beside spec.unschedulable: the scheduler moves the node's replicas elsewhere. */
export const DRAIN_ANNOTATION = 'skiff.dev/drain';

/** The label prefix kubectl reads a node's roles from (`node-role.kubernetes.io/control-plane`). */
const ROLE_LABEL_PREFIX = 'node-role.kubernetes.io/';

/** NodeCondition is a Kubernetes node condition: a status Condition that also says when it was last reported. */
export interface NodeCondition extends Condition {
  lastHeartbeatTime: string;
}

const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];
const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

const quantities = (description: string) => ({ type: 'object', additionalProperties: { type: 'string' }, description });

/**
 * Node: Kubernetes' core v1 Node, one per Skiff process that runs workloads. Its node agent registers
 * it, reports what the host offers (CPU, memory, the runtime classes whose handlers run here) and
 * keeps its Ready condition; the lifecycle controller marks it Unknown when the heartbeats stop.
 */
export const nodeKind: KindDefinition = {
  group: CORE_GROUP,
  version: 'v1',
  kind: 'Node',
  plural: 'nodes',
  singular: 'node',
  shortNames: ['no'],
  namespaced: false,
  description:
    'Node is one Skiff process that runs workloads: what its host offers (cpu, memory, runtime classes) and whether it is Ready. Its agent registers it and renews a Lease in kube-node-lease; spec.unschedulable (skiff cordon) keeps new work off it.',
  // Kubernetes lets spec be left out; it reads as empty, and is then checked against the schema like any other.
  normalize: (obj) => {
    obj.spec ??= {};
  },
  specSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      unschedulable: { type: 'boolean', description: 'Whether new work may not be placed here (set by skiff cordon, cleared by skiff uncordon).' },
      taints: {
        type: 'array',
        'x-kubernetes-list-type': 'atomic',
        description: 'Taints keep work that does not tolerate them off the node.',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['key', 'effect'],
          properties: {
            key: { type: 'string', minLength: 1, description: 'The taint key, a qualified name.' },
            value: { type: 'string', description: 'The taint value.' },
            effect: { enum: TAINT_EFFECTS, description: 'NoSchedule, PreferNoSchedule or NoExecute.' },
            timeAdded: { type: 'string', format: 'date-time', description: 'When a NoExecute taint was added.' },
          },
        },
      },
      podCIDR: { type: 'string', description: 'Accepted for compatibility with Kubernetes; Skiff assigns no pod ranges.' },
      podCIDRs: { type: 'array', items: { type: 'string' }, description: 'Accepted for compatibility with Kubernetes.' },
      providerID: { type: 'string', description: 'The node\'s identity at its cloud provider, if any.' },
    },
  },
  statusSchema: {
    type: 'object',
    properties: {
      capacity: quantities('What the host has: cpu (cores), memory (bytes as a quantity such as 16318420Ki).'),
      allocatable: quantities('What workloads may use of the capacity.'),
      runtimeClasses: { type: 'array', items: { type: 'string' }, description: 'The runtime classes whose handlers run on this host (wasm, container, vm).' },
      conditions: { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, description: 'Ready, with lastHeartbeatTime: when the node last reported it.' },
      addresses: { type: 'array', items: { type: 'object', properties: { type: { type: 'string' }, address: { type: 'string' } } }, description: 'How to reach the node: Hostname, InternalIP.' },
      nodeInfo: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, description: 'The host: operating system, architecture, kernel, and the Skiff version (kubeletVersion).' },
    },
  },
  validate(obj: ResourceObject): FieldError[] {
    const errs: FieldError[] = [];
    const taints: Array<{ key?: unknown; effect?: unknown }> = Array.isArray(obj.spec?.taints) ? obj.spec.taints : [];
    const seen = new Set<string>();
    taints.forEach((t, i) => {
      if (typeof t.key === 'string' && t.key !== '' && !QUALIFIED_NAME.test(t.key)) {
        errs.push({ field: `spec.taints[${i}].key`, message: `Invalid value: "${t.key}": a taint key is a qualified name (such as example.com/dedicated)`, reason: 'FieldValueInvalid' });
      }
      const id = `${String(t.key)}:${String(t.effect)}`;
      if (seen.has(id)) errs.push({ field: `spec.taints[${i}]`, message: `Duplicate value: a taint with key "${String(t.key)}" and effect ${String(t.effect)} is already listed`, reason: 'FieldValueDuplicate' });
      seen.add(id);
    });
    return errs;
  },
  printerColumns: [
    { name: 'STATUS', description: 'The Ready condition, and SchedulingDisabled when cordoned', value: nodeStatusColumn },
    { name: 'ROLES', description: 'The node-role.kubernetes.io/ labels', noneAsText: true, value: (o) => nodeRoles(o) },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
    { name: 'VERSION', description: 'status.nodeInfo.kubeletVersion', jsonPath: '.status.nodeInfo.kubeletVersion', value: (o) => String(o.status?.nodeInfo?.kubeletVersion ?? '') },
  ],
};

/** nodeStatusColumn is kubectl's STATUS of a node: Ready, NotReady or Unknown, then `,SchedulingDisabled` when cordoned. */
export function nodeStatusColumn(o: ResourceObject): string {
  const ready = (o.status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready');
  const status = ready?.status === 'True' ? 'Ready' : ready?.status === 'False' ? 'NotReady' : 'Unknown';
  return o.spec?.unschedulable === true ? `${status},SchedulingDisabled` : status;
}

function nodeRoles(o: ResourceObject): string {
  const roles = Object.keys(o.metadata.labels ?? {})
    .filter((k) => k.startsWith(ROLE_LABEL_PREFIX) && k.length > ROLE_LABEL_PREFIX.length)
    .map((k) => k.slice(ROLE_LABEL_PREFIX.length))
    .sort();
  return roles.length ? roles.join(',') : '<none>';
}
