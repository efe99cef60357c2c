import AjvModule, { type ErrorObject } from 'ajv';
import { RE2JS } from 're2js';

import { fromJSON, isObject, toJSON, type Value } from '../value.js';

import { parseJSON } from './encoding.js';
import { patternCache } from './pattern-cache.js';
import { type Builtin, type BuiltinContext,builtinErr, typeErr } from './types.js';

/**
 * RE2 is the regular-expression engine ajv uses for `pattern` and `patternProperties`: a schema comes
 * from the policy, and a backtracking `pattern` would let it stall the process (gojsonschema, which OPA
 * uses, has Go's linear-time regexp too).
 */
const RE2 = Object.assign((pattern: string) => RE2JS.compile(pattern), { code: 're2js' });

/** How many schemas one ajv instance compiles before it is replaced (ajv keeps every schema it compiled). */
const MAX_SCHEMAS_PER_AJV = 256;

// ajv ships CommonJS; under NodeNext its default export is the module object.
const Ajv = ((AjvModule as unknown as { default?: typeof AjvModule }).default ?? AjvModule) as unknown as new (opts: object) => {
  compile(schema: unknown): ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
};

const PRIMITIVES = ['array', 'boolean', 'integer', 'number', 'null', 'object', 'string'];

function schemaArg(name: string, v: Value, pos: number): unknown {
  if (typeof v === 'string') {
    try {
      return toJSON(parseJSON(v));
    } catch (e) {
      throw builtinErr(name, `operand ${pos}: ${(e as Error).message}`);
    }
  }
  if (isObject(v) || typeof v === 'boolean') return toJSON(v);
  throw typeErr(name, pos, 'one of {string, object, boolean}', v);
}

/** badType finds a `type` keyword naming no JSON type, reported with gojsonschema's wording. */
function badType(schema: unknown): string | undefined {
  if (!schema || typeof schema !== 'object') return undefined;
  for (const [k, v] of Object.entries(schema as Record<string, unknown>)) {
    if (k === 'type') {
      for (const t of Array.isArray(v) ? v : [v]) if (typeof t === 'string' && !PRIMITIVES.includes(t)) return `has a primitive type that is NOT VALID -- given: /${t}/ Expected valid values are:[${PRIMITIVES.join(' ')}]`;
    } else {
      const found = badType(v);
      if (found) return found;
    }
  }
  return undefined;
}

function compile(name: string, schema: unknown, ctx: BuiltinContext): ((data: unknown) => boolean) & { errors?: ErrorObject[] | null } {
  const bad = badType(schema);
  if (bad) throw builtinErr(name, bad);
  const key = 'jsonschema:' + JSON.stringify(schema);
  const cache = patternCache(ctx);
  const hit = cache.get<ReturnType<typeof compile>>(key);
  if (hit) return hit;
  let holder = ctx.shared.get('jsonschema:ajv') as { ajv: InstanceType<typeof Ajv>; compiled: number } | undefined;
  if (!holder || holder.compiled >= MAX_SCHEMAS_PER_AJV) {
    holder = { ajv: new Ajv({ allErrors: true, strict: false, verbose: true, code: { regExp: RE2 } }), compiled: 0 };
    ctx.shared.set('jsonschema:ajv', holder);
  }
  holder.compiled++;
  const v = holder.ajv.compile(schema);
  cache.set(key, v);
  return v;
}

function describe(e: ErrorObject): Value {
  const field = e.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(root)';
  let desc = e.message ?? 'invalid';
  let type = e.keyword;
  if (e.keyword === 'type') {
    const given = e.data === null ? 'null' : Array.isArray(e.data) ? 'array' : Number.isInteger(e.data) ? 'integer' : typeof e.data;
    desc = `Invalid type. Expected: ${(e.params as { type: string }).type}, given: ${given}`;
    type = 'invalid_type';
  } else if (e.keyword === 'required') {
    desc = `${(e.params as { missingProperty: string }).missingProperty} is required`;
  }
  return fromJSON({ desc, error: `${field}: ${desc}`, field, type });
}

/** JSON Schema validation (via ajv) with OPA's result shapes. */
export const register: Record<string, Builtin> = {
  'json.verify_schema': {
    arity: 1,
    fn: (a, ctx) => {
      try {
        compile('json.verify_schema', schemaArg('json.verify_schema', a[0]!, 1), ctx);
        return [true, null];
      } catch (e) {
        return [false, 'jsonschema: ' + (e as Error).message.replace(/^json\.verify_schema: /, '')];
      }
    },
  },
  'json.match_schema': {
    arity: 2,
    fn: (a, ctx) => {
      const doc = schemaArg('json.match_schema', a[0]!, 1);
      const validate = compile('json.match_schema', schemaArg('json.match_schema', a[1]!, 2), ctx);
      if (validate(doc)) return [true, []];
      return [false, (validate.errors ?? []).map(describe)];
    },
  },
};
