import type { SchemaObject } from './convert.js';

/** Where the shared Kubernetes meta types live in `components.schemas`, under kube's own names. */
export const META = 'io.k8s.apimachinery.pkg.apis.meta.v1';

export const ref = (name: string): SchemaObject => ({ $ref: `#/components/schemas/${name}` });

/** A field whose type is another named schema, described in place (kube's allOf-wrapped reference). */
export const refField = (name: string, description: string, extra: SchemaObject = {}): SchemaObject => ({ allOf: [ref(name)], description, ...extra });

const str = (description: string, extra: SchemaObject = {}): SchemaObject => ({ type: 'string', description, ...extra });
const stringMap = (description: string): SchemaObject => ({ type: 'object', additionalProperties: { type: 'string', default: '' }, description });

export const API_VERSION_DESCRIPTION = 'The versioned schema of this object: GROUP/VERSION (for example skiff.dev/v1). The server refuses an object whose apiVersion is not the one of the URL it is sent to.';
export const KIND_DESCRIPTION = 'The type of this object, in CamelCase (for example Function). It must match the resource of the URL.';

/**
 * metaSchemas are the Kubernetes meta types Skiff's documents reference (ObjectMeta, ListMeta,
 * Status, ...), with descriptions of what Skiff does with each field.
 */
export function metaSchemas(): Record<string, SchemaObject> {
  return {
    [`${META}.ObjectMeta`]: {
      type: 'object',
      description: 'Metadata every stored object carries: its name and namespace, labels and annotations, and the bookkeeping the server keeps.',
      properties: {
        name: str('The object\'s name, unique per kind within its namespace (or cluster-wide for cluster-scoped kinds). A lowercase RFC 1123 subdomain (a Namespace: an RFC 1123 label). Cannot be changed.'),
        generateName: str('Accepted for compatibility; Skiff does not generate names, so name must be set.'),
        namespace: str('The namespace the object lives in, for namespaced kinds; "default" when left out. Cluster-scoped kinds take none.'),
        uid: str('Set by the server when the object is created; unique over time. Read-only.'),
        resourceVersion: str('The store revision of the object\'s last change, set by the server. Send it back on an update to make the update conditional: a stale value gets 409 Conflict. Watches resume from it.'),
        generation: { type: 'integer', format: 'int64', description: 'How many times the desired state (spec) has changed; set by the server. Controllers report the generation they acted on in status.' },
        creationTimestamp: refField(`${META}.Time`, 'When the object was created (RFC 3339, UTC), set by the server. Read-only.'),
        deletionTimestamp: refField(`${META}.Time`, 'When the object was asked to be deleted, if it still exists. Read-only.'),
        labels: stringMap('Key/value pairs that select and group objects (label selectors, Pod Security levels on a Namespace, Gatekeeper matches). Keys are optionally prefixed names; values at most 63 characters.'),
        annotations: stringMap('Key/value pairs for tools and people, not used to select objects (for example the last-applied configuration kubectl keeps).'),
        ownerReferences: { type: 'array', items: ref(`${META}.OwnerReference`), description: 'Objects this one belongs to.', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['uid'], 'x-kubernetes-patch-merge-key': 'uid', 'x-kubernetes-patch-strategy': 'merge' },
        finalizers: { type: 'array', items: { type: 'string', default: '' }, description: 'Names of cleanups that must finish before the object goes away.', 'x-kubernetes-list-type': 'set' },
        managedFields: { type: 'array', items: ref(`${META}.ManagedFieldsEntry`), description: 'Which field manager set which fields (server-side apply). Maintained by the server.' },
      },
    },
    [`${META}.ListMeta`]: {
      type: 'object',
      description: 'Metadata of a list.',
      properties: {
        resourceVersion: str('The store revision the list was read at: watch from it to see every later change.'),
        continue: str('Set when the list was cut at `limit`: send it as `continue` to get the next page.'),
        remainingItemCount: { type: 'integer', format: 'int64', description: 'How many items remain after this page, when known.' },
      },
    },
    [`${META}.Time`]: { type: 'string', format: 'date-time', description: 'A point in time, RFC 3339 in UTC with second precision (2024-05-01T12:00:00Z).' },
    [`${META}.OwnerReference`]: {
      type: 'object',
      description: 'Names an object that owns this one.',
      required: ['apiVersion', 'kind', 'name', 'uid'],
      properties: {
        apiVersion: str('apiVersion of the owner.'),
        kind: str('kind of the owner.'),
        name: str('Name of the owner.'),
        uid: str('uid of the owner.'),
        controller: { type: 'boolean', description: 'Whether the owner is the managing controller.' },
        blockOwnerDeletion: { type: 'boolean', description: 'Accepted for compatibility; has no effect in Skiff.' },
      },
      'x-kubernetes-map-type': 'atomic',
    },
    [`${META}.ManagedFieldsEntry`]: {
      type: 'object',
      description: 'The fields one manager set with one operation.',
      properties: {
        manager: str('Name of the field manager (the fieldManager of the request, e.g. kubectl).'),
        operation: str('Apply or Update.'),
        apiVersion: str('The version the fields are expressed in.'),
        time: refField(`${META}.Time`, 'When the manager last changed these fields.'),
        fieldsType: str('How fieldsV1 is encoded; always FieldsV1.'),
        fieldsV1: { type: 'object', description: 'The set of fields, in Kubernetes\' FieldsV1 form.' },
        subresource: str('The subresource the change went through (status), or empty for the object itself.'),
      },
    },
    [`${META}.Condition`]: {
      type: 'object',
      description: 'One aspect of an object\'s current state, as a controller last observed it.',
      required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
      properties: {
        type: str('What the condition is about, in CamelCase; Ready for most kinds.'),
        status: str('True, False or Unknown.', { enum: ['True', 'False', 'Unknown'] }),
        reason: str('A one-word CamelCase reason for the last transition, for programs.'),
        message: str('What happened, for people.'),
        lastTransitionTime: refField(`${META}.Time`, 'When status last changed.'),
        observedGeneration: { type: 'integer', format: 'int64', description: 'The metadata.generation the controller acted on.' },
      },
    },
    [`${META}.Status`]: {
      type: 'object',
      description: 'The answer to a request that returns no object: every error, and some deletions.',
      properties: {
        apiVersion: str(API_VERSION_DESCRIPTION),
        kind: str(KIND_DESCRIPTION),
        metadata: refField(`${META}.ListMeta`, 'Standard list metadata.', { default: {} }),
        status: str('Success or Failure.'),
        message: str('What went wrong, for people.'),
        reason: str('A CamelCase reason for programs: NotFound, AlreadyExists, Conflict, Invalid, BadRequest, Forbidden, Gone, ...'),
        details: refField(`${META}.StatusDetails`, 'More about the failure: the object and, for Invalid, every bad field.'),
        code: { type: 'integer', format: 'int32', description: 'The HTTP status code.' },
      },
    },
    [`${META}.StatusDetails`]: {
      type: 'object',
      description: 'The object a failure is about, and its causes.',
      properties: {
        name: str('Name of the object.'),
        group: str('API group of the object.'),
        kind: str('Kind of the object.'),
        uid: str('uid of the object.'),
        causes: { type: 'array', items: ref(`${META}.StatusCause`), description: 'One entry per problem (for Invalid: per bad field).', 'x-kubernetes-list-type': 'atomic' },
        retryAfterSeconds: { type: 'integer', format: 'int32', description: 'When to retry, if the request may be retried.' },
      },
    },
    [`${META}.StatusCause`]: {
      type: 'object',
      description: 'One problem with a request.',
      properties: {
        reason: str('FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, FieldValueDuplicate, FieldValueForbidden, ...'),
        message: str('What is wrong, for people.'),
        field: str('Path of the field from the object\'s root, e.g. spec.limits.memory.'),
      },
    },
    [`${META}.DeleteOptions`]: {
      type: 'object',
      description: 'Options of a delete request.',
      properties: {
        apiVersion: str(API_VERSION_DESCRIPTION),
        kind: str(KIND_DESCRIPTION),
        dryRun: { type: 'array', items: { type: 'string', default: '' }, description: 'All: check and admit the deletion without performing it.' },
        gracePeriodSeconds: { type: 'integer', format: 'int64', description: 'Accepted for compatibility; Skiff deletes at once.' },
        preconditions: refField(`${META}.Preconditions`, 'Conditions the object must meet to be deleted.'),
        propagationPolicy: str('Accepted for compatibility (Orphan, Background, Foreground).'),
      },
    },
    [`${META}.Preconditions`]: {
      type: 'object',
      description: 'What the stored object must be for a deletion to go ahead.',
      properties: { resourceVersion: str('The resourceVersion the object must have.'), uid: str('The uid the object must have.') },
    },
    [`${META}.WatchEvent`]: {
      type: 'object',
      description: 'One change in a watch stream, one JSON document per line.',
      required: ['type', 'object'],
      properties: {
        type: str('ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.'),
        object: { type: 'object', description: 'The object after the change (before it, for DELETED); a Status for ERROR.' },
      },
    },
    [`${META}.Patch`]: { type: 'object', description: 'A patch body: a JSON merge patch, a strategic merge patch (applied as a merge patch), a JSON patch, or an apply configuration (server-side apply).' },
  };
}
