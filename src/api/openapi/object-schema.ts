import { groupOf, type KindDefinition } from '../kinds/types.js';

import { type SchemaObject, toOpenApiV3 } from './convert.js';
import { API_VERSION_DESCRIPTION, KIND_DESCRIPTION, META, ref, refField } from './meta-schemas.js';

/** The GVK of a kind as `x-kubernetes-group-version-kind` writes it (the core group is ""). */
export function gvkOf(def: KindDefinition, kind = def.kind): { group: string; kind: string; version: string } {
  return { group: groupOf(def), kind, version: def.version ?? 'v1' };
}

/**
 * schemaName names a kind's schema as kube-apiserver does: the group reversed (skiff.dev →
 * dev.skiff), the version, the kind; the core group's kinds are io.k8s.api.core.v1.KIND.
 */
export function schemaName(def: KindDefinition, kind = def.kind): string {
  const group = groupOf(def);
  const prefix = group === '' ? 'io.k8s.api.core' : group.split('.').reverse().join('.');
  return `${prefix}.${def.version ?? 'v1'}.${kind}`;
}

/** The `spec` schema a kind publishes (a constraint's carries its template's parameters). */
export function publishedSpec(def: KindDefinition): Record<string, unknown> {
  return def.publishedSpecSchema?.() ?? def.specSchema;
}

/**
 * objectSchema is a kind's whole object as an OpenAPI 3.0 schema: apiVersion, kind, metadata (a
 * reference to ObjectMeta), spec from the kind's JSON Schema, status, and for kinds without spec
 * their own top-level fields.
 */
export function objectSchema(def: KindDefinition): SchemaObject {
  const properties: Record<string, SchemaObject> = {
    apiVersion: { type: 'string', description: API_VERSION_DESCRIPTION },
    kind: { type: 'string', description: KIND_DESCRIPTION },
    metadata: refField(`${META}.ObjectMeta`, 'Standard object metadata: name, namespace, labels, annotations, and what the server maintains.', { default: {} }),
  };
  const noSpec = def.specRequired === false && def.rootFields !== undefined;
  if (!noSpec) {
    const spec = toOpenApiV3(publishedSpec(def));
    spec.description ??= `The desired state of the ${def.kind}.`;
    if (spec.type === undefined && spec.anyOf === undefined && spec.allOf === undefined && spec.oneOf === undefined) spec.type = 'object';
    properties.spec = spec;
  }
  for (const [name, s] of Object.entries(def.rootFields ?? {})) properties[name] = toOpenApiV3(s);
  const status = def.statusSchema ? toOpenApiV3(def.statusSchema) : { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  status.description ??= `The observed state of the ${def.kind}, written by Skiff's controllers through the status subresource.`;
  properties.status = status;
  const out: SchemaObject = {
    type: 'object',
    description: def.description ?? `${def.kind} is a kind served by Skiff.`,
    properties,
    'x-kubernetes-group-version-kind': [gvkOf(def)],
  };
  if (def.specRequired !== false) out.required = ['spec'];
  return out;
}

/** listSchema is `KINDList`: apiVersion, kind, ListMeta and the items. */
export function listSchema(def: KindDefinition): SchemaObject {
  return {
    type: 'object',
    description: `A list of ${def.kind} objects.`,
    required: ['items'],
    properties: {
      apiVersion: { type: 'string', description: API_VERSION_DESCRIPTION },
      kind: { type: 'string', description: KIND_DESCRIPTION },
      metadata: refField(`${META}.ListMeta`, 'Standard list metadata: the revision the list was read at, and the continue token of a cut list.', { default: {} }),
      items: { type: 'array', items: ref(schemaName(def)), description: `The ${def.plural}.` },
    },
    'x-kubernetes-group-version-kind': [gvkOf(def, `${def.kind}List`)],
  };
}
