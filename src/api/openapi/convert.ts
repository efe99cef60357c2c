/** A JSON Schema or OpenAPI schema object, as plain JSON. */
export type SchemaObject = Record<string, unknown>;

/** Keywords an OpenAPI 3.0 Schema Object has in common with JSON Schema draft-07, copied as they are. */
const SAME = new Set([
  'title', 'description', 'format', 'default', 'multipleOf', 'maximum', 'minimum', 'maxLength', 'minLength', 'pattern',
  'maxItems', 'minItems', 'uniqueItems', 'maxProperties', 'minProperties', 'enum', 'readOnly', 'writeOnly', 'deprecated',
  'nullable', 'example', 'externalDocs', 'discriminator', 'xml',
]);

const isObj = (v: unknown): v is SchemaObject => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * toOpenApiV3 converts a draft-07 JSON Schema into an OpenAPI 3.0 Schema Object, recursively:
 * - a `type` list becomes one type plus `nullable` when it names `null`, `anyOf` one schema per type otherwise;
 * - `const` becomes a one-value `enum`; an `enum` without `type` gets the type its values share;
 * - numeric `exclusiveMinimum`/`exclusiveMaximum` become `minimum`/`maximum` with the boolean flag;
 * - `examples` becomes `example`; `anyOf` of a string and an integer is marked `x-kubernetes-int-or-string`;
 * - keywords OpenAPI 3.0 does not have (`if`/`then`/`else`, `contains`, `propertyNames`,
 *   `patternProperties`, `dependencies`, `$schema`, `$id`, tuple `items`) are left out: the server
 *   still checks them, the document only cannot say so.
 * Vendor extensions (`x-...`) pass through.
 */
export function toOpenApiV3(schema: unknown): SchemaObject {
  if (schema === true || schema === undefined) return {};
  if (schema === false) return { not: {} };
  if (!isObj(schema)) return {};
  const out: SchemaObject = {};
  for (const [k, v] of Object.entries(schema)) {
    if (SAME.has(k) || k.startsWith('x-')) out[k] = structuredClone(v);
  }
  if (typeof schema.$ref === 'string' && schema.$ref.startsWith('#/components/schemas/')) out.$ref = schema.$ref;
  const type = schema.type;
  if (Array.isArray(type)) {
    const types = type.filter((t) => t !== 'null');
    if (types.length < type.length) out.nullable = true;
    if (types.length === 1) out.type = types[0];
    else if (types.length > 1) out.anyOf = types.map((t) => ({ type: t }));
  } else if (typeof type === 'string') {
    if (type === 'null') out.nullable = true;
    else out.type = type;
  }
  if ('const' in schema) out.enum = [structuredClone(schema.const)];
  if (Array.isArray(out.enum) && out.type === undefined && out.anyOf === undefined) {
    const kinds = new Set(out.enum.map((v) => (v === null ? 'null' : Number.isInteger(v) ? 'integer' : typeof v)));
    if (kinds.has('null')) {
      out.nullable = true;
      kinds.delete('null');
    }
    if (kinds.size === 1) {
      const only = [...kinds][0];
      if (only === 'string' || only === 'boolean' || only === 'integer' || only === 'number') out.type = only;
    }
  }
  for (const [bound, flag] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    const v = schema[bound];
    if (typeof v === 'number') {
      out[flag] = v;
      out[bound] = true;
    } else if (v === true) out[bound] = true;
  }
  if (out.example === undefined && Array.isArray(schema.examples) && schema.examples.length) out.example = structuredClone(schema.examples[0]);
  if (Array.isArray(schema.required) && schema.required.length) out.required = [...(schema.required as string[])];
  if (isObj(schema.properties)) {
    out.properties = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, toOpenApiV3(v)]));
  }
  if (schema.additionalProperties !== undefined) {
    const ap = schema.additionalProperties;
    out.additionalProperties = typeof ap === 'boolean' ? ap : toOpenApiV3(ap);
  }
  if (isObj(schema.items) || typeof schema.items === 'boolean') out.items = toOpenApiV3(schema.items);
  else if (Array.isArray(schema.items)) out.items = {};
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) {
    const list = schema[k];
    if (!Array.isArray(list)) continue;
    const converted = list.map(toOpenApiV3);
    if (k === 'anyOf' && Array.isArray(out.anyOf)) {
      // A type list already became anyOf: both must hold.
      out.allOf = [...((out.allOf as SchemaObject[] | undefined) ?? []), { anyOf: out.anyOf }, { anyOf: converted }];
      delete out.anyOf;
    } else if (k === 'allOf' && Array.isArray(out.allOf)) {
      out.allOf = [...(out.allOf as SchemaObject[]), ...converted];
    } else {
      out[k] = converted;
    }
  }
  if (schema.not !== undefined) out.not = toOpenApiV3(schema.not);
  if (Array.isArray(out.anyOf) && isIntOrString(out.anyOf as SchemaObject[])) out['x-kubernetes-int-or-string'] = true;
  return out;
}

function isIntOrString(branches: SchemaObject[]): boolean {
  const types = new Set(branches.map((b) => b.type));
  return branches.length === 2 && types.has('string') && types.has('integer');
}

/**
 * toSwagger converts an OpenAPI 3.0 schema (as {@link toOpenApiV3} makes them) into a Swagger 2.0
 * one, the way kube-apiserver publishes custom resources in /openapi/v2: references point into
 * `#/definitions/`, `nullable` becomes `x-nullable`, and the combinators Swagger 2.0 lacks (`anyOf`,
 * `oneOf`, `not`) are left out, so clients that validate with the v2 document never refuse what
 * the server accepts.
 */
export function toSwagger(schema: unknown): SchemaObject {
  if (!isObj(schema)) return {};
  const out: SchemaObject = {};
  for (const [k, v] of Object.entries(schema)) {
    switch (k) {
      case 'anyOf':
      case 'oneOf':
      case 'not':
      case 'writeOnly':
      case 'deprecated':
        break;
      case 'nullable':
        if (v === true) out['x-nullable'] = true;
        break;
      case '$ref':
        out.$ref = String(v).replace('#/components/schemas/', '#/definitions/');
        break;
      case 'properties':
        out.properties = Object.fromEntries(Object.entries(v as SchemaObject).map(([p, s]) => [p, toSwagger(s)]));
        break;
      case 'items':
        out.items = toSwagger(v);
        break;
      case 'additionalProperties':
        out.additionalProperties = typeof v === 'boolean' ? v : toSwagger(v);
        break;
      case 'allOf': {
        const list = (v as unknown[]).map(toSwagger);
        // kube's v2 documents reference a type directly, with the field's description beside the $ref.
        if (list.length === 1 && typeof list[0]!.$ref === 'string' && Object.keys(list[0]!).length === 1) out.$ref = list[0]!.$ref;
        else out.allOf = list;
        break;
      }
      default:
        out[k] = structuredClone(v);
    }
  }
  return out;
}
