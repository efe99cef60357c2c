import { formatAge, parseBytes } from '../../util/quantity.js';

import { parseCpuMillis } from './function-workload.js';
import type { FieldError, KindDefinition, ResourceObject } from './types.js';

/** The runtime classes every server has; Functions name one in spec.runtimeClassName (wasm when absent). */
export const BUILTIN_RUNTIME_CLASSES: ReadonlyArray<{ name: string; handler: string; description: string }> = [
  { name: 'wasm', handler: 'wasm', description: 'WebAssembly (WASI preview 1) in Skiff\'s own sandbox: microsecond starts, high density, no ambient access.' },
  { name: 'container', handler: 'bwrap', description: 'A Linux container from an OCI image, isolated with bubblewrap (namespaces, no capabilities, seccomp, limits).' },
  { name: 'vm', handler: 'qemu', description: 'A micro-VM (QEMU microvm) booting its own Linux kernel: hardware-level isolation.' },
];

const quantityMap = (description: string) => ({
  type: 'object',
  description,
  additionalProperties: { anyOf: [{ type: 'string' }, { type: 'integer', minimum: 0 }] },
});

/**
 * RuntimeClass: Kubernetes' node.k8s.io/v1 RuntimeClass. It names a handler (wasm, bwrap, runc,
 * qemu) that runs a Function's replicas; a Function picks one with spec.runtimeClassName.
 */
export const runtimeClassKind: KindDefinition = {
  group: 'node.k8s.io',
  version: 'v1',
  statusSubresource: false,
  kind: 'RuntimeClass',
  plural: 'runtimeclasses',
  singular: 'runtimeclass',
  namespaced: false,
  description:
    'RuntimeClass names the handler that runs a Function\'s replicas: wasm (Skiff\'s WebAssembly sandbox), bwrap or runc (Linux containers), qemu (micro-VMs). The classes wasm, container and vm always exist; a Function chooses one with spec.runtimeClassName.',
  specRequired: false,
  specSchema: { type: 'object' },
  rootFields: {
    handler: { type: 'string', description: 'The handler that runs replicas of this class: wasm, bwrap, runc or qemu. Immutable in Kubernetes; here a change applies to replicas started afterwards.' },
    overhead: {
      type: 'object',
      description: 'Resources a replica of this class costs beyond what the Function asks for (the sandbox, the guest kernel).',
      properties: { podFixed: quantityMap('Fixed overhead per replica, such as memory: 64Mi or cpu: 100m.') },
    },
    scheduling: {
      type: 'object',
      description: 'Which nodes can run this class: nodeSelector labels that a node must have; tolerations are accepted for compatibility.',
      properties: {
        nodeSelector: { type: 'object', additionalProperties: { type: 'string' }, description: 'Labels a node must carry to run replicas of this class.' },
        tolerations: { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, description: 'Accepted for compatibility with Kubernetes manifests.' },
      },
    },
  },
  validate(obj: ResourceObject): FieldError[] {
    const handler = (obj as { handler?: unknown }).handler;
    if (typeof handler !== 'string' || handler === '') return [{ field: 'handler', message: 'is required: wasm, bwrap, runc or qemu', reason: 'FieldValueRequired' }];
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(handler) || handler.length > 63) return [{ field: 'handler', message: `"${handler}" must be a DNS label such as bwrap` }];
    const errs: FieldError[] = [];
    const fixed = (obj as { overhead?: { podFixed?: Record<string, unknown> } }).overhead?.podFixed ?? {};
    for (const [name, value] of Object.entries(fixed)) {
      const v = value as string | number;
      if (name === 'memory' && parseBytes(v) === undefined) errs.push({ field: 'overhead.podFixed.memory', message: `"${String(v)}" is not a byte quantity (e.g. 64Mi)` });
      else if (name === 'cpu' && parseCpuMillis(v) === undefined) errs.push({ field: 'overhead.podFixed.cpu', message: `"${String(v)}" is not a CPU quantity (e.g. 100m)` });
      else if (name !== 'memory' && name !== 'cpu') errs.push({ field: `overhead.podFixed.${name}`, message: 'is not a resource Skiff accounts; use memory or cpu', reason: 'FieldValueNotSupported' });
    }
    return errs;
  },
  printerColumns: [
    { name: 'HANDLER', value: (o) => String((o as { handler?: string }).handler ?? '') },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
  ],
};
