import type { KindDefinition } from '../kinds/types.js';

/**
 * FieldType is what server-side apply needs to know about a field's shape, read from the kind's JSON
 * Schema as kube reads a CRD's structural schema:
 * - `map`: an object; declared `fields` merge one by one, other keys (a map's entries) by `element`;
 *   `atomic` (`x-kubernetes-map-type: atomic`) makes the whole map one value.
 * - `list`: `x-kubernetes-list-type` `atomic` (the default: the list is one value), `set` (scalars,
 *   each item owned on its own) or `map` (items keyed by `x-kubernetes-list-map-keys`).
 * - `scalar`, and `deduced` for a schema that says nothing (objects granular, lists atomic).
 */
export type FieldType =
  | { kind: 'scalar' }
  | { kind: 'deduced' }
  | { kind: 'map'; fields: Readonly<Record<string, FieldType>>; element: FieldType; atomic: boolean }
  | { kind: 'list'; listType: 'atomic' | 'set' | 'map'; keys: readonly string[]; element: FieldType };

const SCALAR: FieldType = { kind: 'scalar' };
const DEDUCED: FieldType = { kind: 'deduced' };

const mapOf = (fields: Record<string, FieldType>, element: FieldType = DEDUCED): FieldType => ({ kind: 'map', fields, element, atomic: false });

/**
 * Object metadata as kube types it: labels and annotations are maps of strings, `finalizers` a set,
 * `ownerReferences` a list keyed by `uid`.
 */
const METADATA = mapOf(
  {
    labels: mapOf({}, SCALAR),
    annotations: mapOf({}, SCALAR),
    finalizers: { kind: 'list', listType: 'set', keys: [], element: SCALAR },
    ownerReferences: { kind: 'list', listType: 'map', keys: ['uid'], element: DEDUCED },
    managedFields: { kind: 'list', listType: 'atomic', keys: [], element: DEDUCED },
  },
  SCALAR,
);

/** Skiff's kinds publish no status schema; their conditions are keyed by `type`, as kube's are. */
const STATUS = mapOf({ conditions: { kind: 'list', listType: 'map', keys: ['type'], element: DEDUCED } });

/**
 * objectTypeOf is the FieldType of a whole object of a kind: the envelope, metadata, `spec` from the
 * kind's schema, and status. Kinds without `spec` (Event) keep their other top-level fields deduced.
 */
export function objectTypeOf(def: KindDefinition): FieldType {
  return mapOf({ apiVersion: SCALAR, kind: SCALAR, metadata: METADATA, spec: fromSchema(def.specSchema), status: STATUS });
}

/** fromSchema reads a JSON Schema (draft-07, with kube's `x-kubernetes-*` list and map extensions). */
export function fromSchema(schema: unknown): FieldType {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return DEDUCED;
  const s = schema as Record<string, unknown>;
  if (s['x-kubernetes-preserve-unknown-fields'] === true && !s.properties) return DEDUCED;
  const types = Array.isArray(s.type) ? s.type : s.type === undefined ? [] : [s.type];
  if (types.includes('array') || s.items !== undefined) {
    const listType = s['x-kubernetes-list-type'];
    const keys = Array.isArray(s['x-kubernetes-list-map-keys']) ? (s['x-kubernetes-list-map-keys'] as string[]) : [];
    return {
      kind: 'list',
      listType: listType === 'set' || (listType === 'map' && keys.length) ? listType : 'atomic',
      keys,
      element: fromSchema(s.items),
    };
  }
  if (types.includes('object') || s.properties !== undefined || s.additionalProperties !== undefined) {
    const props = (s.properties ?? {}) as Record<string, unknown>;
    const fields: Record<string, FieldType> = {};
    for (const [k, v] of Object.entries(props)) fields[k] = fromSchema(v);
    const extra = s.additionalProperties;
    return { kind: 'map', fields, element: extra && typeof extra === 'object' ? fromSchema(extra) : DEDUCED, atomic: s['x-kubernetes-map-type'] === 'atomic' };
  }
  // anyOf/oneOf and bare schemas: what the value turns out to be decides (see resolveType).
  if (types.length && types.every((t) => t !== 'object' && t !== 'array')) return SCALAR;
  return DEDUCED;
}

/** The shape a value is walked as: a granular map, a list whose items are owned one by one, or a leaf. */
export type Resolved =
  | { shape: 'leaf' }
  | { shape: 'map'; type: Extract<FieldType, { kind: 'map' }> }
  | { shape: 'items'; type: Extract<FieldType, { kind: 'list' }>; elements: string[] };

/**
 * resolveType decides how a value is walked. A value that does not have the shape its type says (a
 * string where a map is declared), a keyed list with an item missing a key or with two items under
 * one key, and every atomic list or map are leaves: one value, owned as a whole.
 */
export function resolveType(t: FieldType, v: unknown): Resolved {
  if (t.kind === 'deduced') {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return { shape: 'map', type: { kind: 'map', fields: {}, element: DEDUCED, atomic: false } };
    return { shape: 'leaf' };
  }
  if (t.kind === 'map') return !t.atomic && v !== null && typeof v === 'object' && !Array.isArray(v) ? { shape: 'map', type: t } : { shape: 'leaf' };
  if (t.kind === 'list' && t.listType !== 'atomic' && Array.isArray(v)) {
    const elements = listElements(t, v);
    if (elements) return { shape: 'items', type: t, elements };
  }
  return { shape: 'leaf' };
}

/** listElements names each item of a set or keyed list (`v:...`, `k:{...}`), or undefined when they cannot all be named uniquely. */
export function listElements(t: Extract<FieldType, { kind: 'list' }>, list: unknown[]): string[] | undefined {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const item of list) {
    const pe = itemElement(t, item);
    if (pe === undefined || seen.has(pe)) return undefined;
    seen.add(pe);
    out.push(pe);
  }
  return out;
}

/** itemElement names one list item, or undefined when it lacks what names it. */
export function itemElement(t: Extract<FieldType, { kind: 'list' }>, item: unknown): string | undefined {
  if (t.listType === 'set') return item !== null && typeof item === 'object' ? undefined : `v:${JSON.stringify(item)}`;
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return undefined;
  const keys: Record<string, unknown> = {};
  for (const k of [...t.keys].sort()) {
    const v = (item as Record<string, unknown>)[k];
    if (v === undefined || v === null || typeof v === 'object') return undefined;
    keys[k] = v;
  }
  return `k:${JSON.stringify(keys)}`;
}
