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
  description: 'Event records something a controller wants a person to know about an object: a module loaded, a route refused, a capability unused. Shown by skiff describe and kubectl get events; old events are removed.',
  specRequired: false,
  specSchema: { type: 'object' },
  rootFields: {
    involvedObject: {
      type: 'object',
      description: 'The object the event is about.',
      properties: {
        apiVersion: { type: 'string', description: 'apiVersion of the object.' },
        kind: { type: 'string', description: 'Kind of the object.' },
        name: { type: 'string', description: 'Name of the object.' },
        namespace: { type: 'string', description: 'Namespace of the object.' },
        uid: { type: 'string', description: 'uid of the object.' },
        resourceVersion: { type: 'string', description: 'resourceVersion of the object when the event happened.' },
        fieldPath: { type: 'string', description: 'The part of the object the event is about, if any.' },
      },
    },
    reason: { type: 'string', description: 'Why, in one CamelCase word for programs (ModuleLoaded, DigestMismatch, ...).' },
    message: { type: 'string', description: 'What happened, for people.' },
    type: { type: 'string', description: 'Normal or Warning.' },
    source: { type: 'object', description: 'Who reported the event.', properties: { component: { type: 'string', description: 'The controller that reported it.' }, host: { type: 'string', description: 'The node it ran on.' } } },
    count: { type: 'integer', description: 'How many times this event happened; repeats update one object.' },
    firstTimestamp: { type: 'string', format: 'date-time', description: 'When it first happened.' },
    lastTimestamp: { type: 'string', format: 'date-time', description: 'When it last happened.' },
    eventTime: { type: 'string', format: 'date-time', description: 'When it happened, with microseconds (events.k8s.io writers).' },
    reportingComponent: { type: 'string', description: 'The controller that reported it (events.k8s.io writers).' },
    reportingInstance: { type: 'string', description: 'The instance of that controller.' },
    action: { type: 'string', description: 'What the reporter did or failed to do.' },
    related: { type: 'object', description: 'A second object the event involves.', 'x-kubernetes-preserve-unknown-fields': true },
    series: { type: 'object', description: 'Counts of a repeating event (events.k8s.io writers).', 'x-kubernetes-preserve-unknown-fields': true },
  },
  printerColumns: [
    { name: 'LAST SEEN', value: (o) => formatAge(o.lastTimestamp as string) },
    { name: 'TYPE', value: (o) => String(o.type ?? '') },
    { name: 'REASON', value: (o) => String(o.reason ?? '') },
    { name: 'OBJECT', value: (o) => { const io = o.involvedObject as { kind?: string; name?: string } | undefined; return io ? `${String(io.kind).toLowerCase()}/${io.name}` : ''; } },
    { name: 'MESSAGE', value: (o) => String(o.message ?? '') },
  ],
};
