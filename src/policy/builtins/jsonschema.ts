import AjvModule, { type ErrorObject } from 'ajv';
import { fromJSON, isObject, toJSON, type Value } from '../value.js';
import { parseJSON } from './encoding.js';
import { builtinErr, typeErr, type Builtin, type BuiltinContext } from './types.js';

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
  const hit = ctx.shared.get(key) as ReturnType<typeof compile> | undefined;
  if (hit) return hit;
  let ajv = ctx.shared.get('jsonschema:ajv') as InstanceType<typeof Ajv> | undefined;
  if (!ajv) ctx.shared.set('jsonschema:ajv', (ajv = new Ajv({ allErrors: true, strict: false, verbose: true })));
  const v = ajv.compile(schema);
  ctx.shared.set(key, v);
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
