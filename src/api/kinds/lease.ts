import { formatAge } from '../../util/quantity.js';

import type { FieldError, KindDefinition, ResourceObject } from './types.js';

/**
 * MICRO_TIME is Kubernetes' MicroTime as it travels: RFC 3339 with up to nine fractional digits (client-go
 * writes six). A Lease's times are compared across nodes, so a string that does not parse is refused
 * rather than stored.
 */
const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** microTime renders a time in MicroTime form (microseconds, UTC), as kubelet and client-go write it. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

/**
 * Lease: Kubernetes' coordination.k8s.io/v1 Lease, a named holder and a time it renews. Nodes renew one
 * each in kube-node-lease as their heartbeat; the controllers' leader holds one in skiff-system.
 */
export const leaseKind: KindDefinition = {
  group: 'coordination.k8s.io',
  version: 'v1',
  statusSubresource: false,
  kind: 'Lease',
  plural: 'leases',
  singular: 'lease',
  namespaced: true,
  description:
    'Lease records who holds a lock and when they last renewed it. Each node renews its Lease in kube-node-lease as a heartbeat; a lease not renewed within leaseDurationSeconds is free to take.',
  // Kubernetes lets spec be left out; it reads as empty, and is then checked against the schema like any other.
  normalize: (obj) => {
    obj.spec ??= {};
  },
  specSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      holderIdentity: { type: 'string', description: 'Who holds the lease (a node name).' },
      leaseDurationSeconds: { type: 'integer', minimum: 1, description: 'How long, after renewTime, others wait before taking the lease.' },
      acquireTime: { type: 'string', description: 'When the current holder acquired the lease (RFC 3339 with microseconds).' },
      renewTime: { type: 'string', description: 'When the holder last renewed the lease (RFC 3339 with microseconds).' },
      leaseTransitions: { type: 'integer', minimum: 0, description: 'How many times the lease has changed holders.' },
      strategy: { type: 'string', description: 'How a coordinated leader election picks a holder (Kubernetes\' OldestEmulationVersion); accepted for compatibility.' },
      preferredHolder: { type: 'string', description: 'The holder a coordinated leader election would rather have; accepted for compatibility.' },
    },
  },
  validate(obj: ResourceObject): FieldError[] {
    const errs: FieldError[] = [];
    for (const f of ['acquireTime', 'renewTime']) {
      const v: unknown = obj.spec?.[f];
      if (v !== undefined && (typeof v !== 'string' || !MICRO_TIME.test(v) || !Number.isFinite(Date.parse(v)))) {
        errs.push({ field: `spec.${f}`, message: `Invalid value: ${JSON.stringify(v)}: not a time in RFC 3339 form (such as 2026-01-02T15:04:05.000000Z)`, reason: 'FieldValueInvalid' });
      }
    }
    return errs;
  },
  printerColumns: [
    { name: 'HOLDER', description: 'spec.holderIdentity', jsonPath: '.spec.holderIdentity', value: (o) => String(o.spec?.holderIdentity ?? '') },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
  ],
};
