import { formatAge } from '../../util/quantity.js';

import type { KindDefinition } from './types.js';

/**
 * Event: something a controller wants a person to know about an object (Kubernetes' core/v1 Event
 * shape, top-level fields, no spec). Written by controllers, shown by `skiff describe`.
 */
export const eventKind: KindDefinition = {
  kind: 'Event',
  plural: 'events',
  singular: 'event',
  shortNames: ['ev'],
  namespaced: true,
  specRequired: false,
  specSchema: { type: 'object' },
  // What kubectl describe and kube-apiserver's Events select on.
  selectableFields: ['involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'type'],
  printerColumns: [
    { name: 'LAST SEEN', type: 'date', description: 'When the event was last seen', value: (o) => formatAge(o.lastTimestamp as string) },
    { name: 'TYPE', value: (o) => String(o.type ?? '') },
    { name: 'REASON', value: (o) => String(o.reason ?? '') },
    { name: 'OBJECT', value: (o) => { const io = o.involvedObject as { kind?: string; name?: string } | undefined; return io ? `${String(io.kind).toLowerCase()}/${io.name}` : ''; } },
    { name: 'MESSAGE', value: (o) => String(o.message ?? '') },
  ],
};
