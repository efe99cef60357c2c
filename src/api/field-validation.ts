import type { DuplicateField } from './duplicate-keys.js';
import { ApiError, badRequest } from './errors.js';
import type { FieldError, KindDefinition } from './kinds/types.js';
import type { SchemaObject } from './openapi/convert.js';
import { metaSchemas } from './openapi/meta-schemas.js';
import { objectSchema } from './openapi/object-schema.js';

/**
 * FieldValidation is kube-apiserver's `fieldValidation` directive for unknown and duplicate fields:
 * Strict refuses the request, Warn drops them and warns, Ignore drops them silently.
 */
export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

/**
 * parseFieldValidation reads the `fieldValidation` query parameter (absent: undefined, Skiff's
 * default, which refuses unknown and duplicate fields as invalid fields). Any other value is a 400.
 */
export function parseFieldValidation(value: string | null): FieldValidation | undefined {
  if (value === null || value === '') return undefined;
  if (value === 'Strict' || value === 'Warn' || value === 'Ignore') return value;
  throw badRequest(`fieldValidation: Unsupported value: "${value}": supported values: "Ignore", "Strict", "Warn"`);
}

const META_COMPONENTS = metaSchemas();
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** resolve follows `$ref` into the meta schemas and merges `allOf` parts, so a node's fields are in one place. */
function resolve(schema: SchemaObject | undefined): SchemaObject | undefined {
  if (!schema) return undefined;
  let s = schema;
  if (typeof s.$ref === 'string') s = { ...META_COMPONENTS[s.$ref.replace('#/components/schemas/', '')], ...s, $ref: undefined };
  if (!Array.isArray(s.allOf)) return s;
  const merged: SchemaObject = { ...s, allOf: undefined };
  for (const part of s.allOf as SchemaObject[]) {
    const r = resolve(part) ?? {};
    merged.properties = { ...((r.properties as object) ?? {}), ...((merged.properties as object) ?? {}) };
    if (merged.additionalProperties === undefined && r.additionalProperties !== undefined) merged.additionalProperties = r.additionalProperties;
    if (r['x-kubernetes-preserve-unknown-fields']) merged['x-kubernetes-preserve-unknown-fields'] = true;
    if (Array.isArray(r.anyOf) || Array.isArray(r.oneOf)) merged.anyOf = [...((merged.anyOf as SchemaObject[]) ?? []), ...((r.anyOf ?? r.oneOf) as SchemaObject[])];
  }
  if (Object.keys(merged.properties as object).length === 0) delete merged.properties;
  return merged;
}

interface Fields {
  known: Record<string, SchemaObject>;
  /** The schema of keys not in `known`: a map's values. */
  rest?: SchemaObject;
  open: boolean;
}

/**
 * fieldsOf says which keys an object under `schema` may have, with kube's structural rules: an object
 * schema that lists `properties` knows exactly those (plus any its `anyOf`/`oneOf` branches list),
 * `additionalProperties` with a schema makes a map, and a schema that lists no properties at all,
 * `additionalProperties: true` or `x-kubernetes-preserve-unknown-fields` keeps whatever comes.
 */
function fieldsOf(schema: SchemaObject): Fields {
  const known: Record<string, SchemaObject> = { ...((schema.properties as Record<string, SchemaObject>) ?? {}) };
  let listed = isObj(schema.properties);
  let branchOpen = false;
  for (const b of [...((schema.anyOf as SchemaObject[]) ?? []), ...((schema.oneOf as SchemaObject[]) ?? [])]) {
    const r = resolve(b) ?? {};
    if (isObj(r.properties)) {
      listed = true;
      Object.assign(known, r.properties);
    } else if (r.type === 'object' && r.additionalProperties !== false) branchOpen = true;
  }
  const ap = schema.additionalProperties;
  if (isObj(ap)) return { known, rest: ap, open: false };
  const open = !listed || ap === true || schema['x-kubernetes-preserve-unknown-fields'] === true || branchOpen;
  return { known, open };
}

function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

/**
 * pruneUnknownFields removes from `obj` every field the kind's schema does not know (metadata by
 * ObjectMeta, spec by the kind's schema, the kind's other top-level fields) and returns their paths
 * (`spec.limits.memroy`, `spec.http[0].foo`), sorted. `status` is left alone: writes to the object
 * itself never change it. Iterative, so a deep body costs no stack.
 */
export function pruneUnknownFields(def: KindDefinition, obj: Record<string, unknown>): string[] {
  const unknown: string[] = [];
  walk(obj, objectSchema(def), unknown);
  return unknown.sort();
}

function walk(start: unknown, startSchema: SchemaObject, unknown: string[]): void {
  const work: Array<{ value: unknown; schema: SchemaObject | undefined; path: string; root: boolean }> = [{ value: start, schema: startSchema, path: '', root: true }];
  while (work.length) {
    const { value, schema: raw, path, root } = work.pop()!;
    const schema = resolve(raw);
    if (!schema) continue;
    if (Array.isArray(value)) {
      const items = isObj(schema.items) ? (schema.items as SchemaObject) : undefined;
      if (items) value.forEach((v, i) => work.push({ value: v, schema: items, path: child(path, i), root: false }));
      continue;
    }
    if (!isObj(value)) continue;
    const { known, rest, open } = fieldsOf(schema);
    for (const key of Object.keys(value)) {
      if (root && key === 'status') continue;
      const sub = Object.hasOwn(known, key) ? known[key] : rest;
      if (sub) work.push({ value: value[key], schema: sub, path: child(path, key), root: false });
      else if (!open) {
        unknown.push(child(path, key));
        delete value[key];
      }
    }
  }
}

/** How each problem reads in a strict decoding error and in a Warning header, in kube-apiserver's words. */
function problemTexts(duplicates: DuplicateField[], unknown: string[]): { strict: string[]; warnings: string[] } {
  const yamlDups = duplicates.filter((d) => d.line !== undefined).map((d) => `line ${d.line}: key "${d.key}" already set in map`);
  const jsonDups = duplicates.filter((d) => d.line === undefined).map((d) => `duplicate field "${d.path}"`);
  const unknownTexts = unknown.map((p) => `unknown field "${p}"`);
  const strict = [...(yamlDups.length ? [`yaml: unmarshal errors:\n  ${yamlDups.join('\n  ')}`] : []), ...jsonDups, ...unknownTexts];
  return { strict, warnings: [...yamlDups, ...jsonDups, ...unknownTexts] };
}

/**
 * checkFields prunes unknown fields from `obj` and applies the directive to them and to the body's
 * duplicate keys: Strict throws kube's 400 (`Function in version "v1" cannot be handled as a
 * Function: strict decoding error: unknown field "spec.foo"`), Warn returns one warning per field,
 * Ignore returns nothing, and Skiff's default (no directive) returns them as field errors for the
 * 422 that lists every bad field.
 */
export function checkFields(def: KindDefinition, obj: Record<string, unknown>, directive: FieldValidation | undefined, duplicates: DuplicateField[] = []): { warnings: string[]; errors: FieldError[] } {
  const unknown = pruneUnknownFields(def, obj);
  if (directive === 'Ignore' || (unknown.length === 0 && duplicates.length === 0)) return { warnings: [], errors: [] };
  const texts = problemTexts(duplicates, unknown);
  if (directive === 'Strict') {
    const version = def.version ?? 'v1';
    throw new ApiError(400, 'BadRequest', `${def.kind} in version "${version}" cannot be handled as a ${def.kind}: strict decoding error: ${texts.strict.join(', ')}`);
  }
  if (directive === 'Warn') return { warnings: texts.warnings, errors: [] };
  const errors: FieldError[] = [
    ...duplicates.map((d) => ({ field: d.path, message: `duplicate field "${d.key}"${d.line !== undefined ? ` (line ${d.line})` : ''}`, reason: 'FieldValueDuplicate' })),
    ...unknown.map((p) => ({ field: p, message: `unknown field "${p.slice(p.lastIndexOf('.') + 1)}"`, reason: 'FieldValueNotSupported' })),
  ];
  return { warnings: [], errors };
}
