import { formatAge } from '../../util/quantity.js';

import { CORE_GROUP, type KindDefinition } from './types.js';

/**
 * Event: something a controller wants a person to know about an object: Kubernetes' core v1 Event
 * (top-level fields, no spec, no status), so `kubectl get events` and `kubectl describe` find it.
 * Written by controllers, shown by `skiff describe`; `skiff.dev/v1`, where it lived first, stays an alias.
 */
export const eventKind: KindDefinition = {
  group: CORE_GROUP,
  version: 'v1',
  legacyApiVersions: ['skiff.dev/v1'],
  statusSubresource: false,
  kind: 'Event',
  plural: 'events',
  singular: 'event',
  shortNames: ['ev'],
  namespaced: true,
  specRequired: false,
  specSchema: { type: 'object' },
  printerColumns: [
    { name: 'LAST SEEN', value: (o) => formatAge(o.lastTimestamp as string) },
    { name: 'TYPE', value: (o) => String(o.type ?? '') },
    { name: 'REASON', value: (o) => String(o.reason ?? '') },
    { name: 'OBJECT', value: (o) => { const io = o.involvedObject as { kind?: string; name?: string } | undefined; return io ? `${String(io.kind).toLowerCase()}/${io.name}` : ''; } },
    { name: 'MESSAGE', value: (o) => String(o.message ?? '') },
  ],
};
