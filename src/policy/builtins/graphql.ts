import { fromJSON, isObject, type PlainObject, toJSON, type Value } from '../value.js';

import { GraphQLSyntaxError, parseQueryDocument, parseSchemaDocument } from './graphql-parser.js';
import { type Builtin,builtinErr, typeErr } from './types.js';

type Obj = Record<string, unknown>;
type Arr = Obj[];

const SCALARS = ['String', 'Int', 'Float', 'Boolean', 'ID'];
const BUILTIN_DIRECTIVES = ['deprecated', 'include', 'skip', 'specifiedBy', 'oneOf', 'defer'];

class Invalid extends Error {}

const list = (o: Obj, k: string): Arr => (Array.isArray(o[k]) ? (o[k] as Arr) : []);

function named(t: Obj): string {
  return t.Elem ? named(t.Elem as Obj) : (t.NamedType as string);
}

function typeString(t: Obj): string {
  const inner = t.Elem ? `[${typeString(t.Elem as Obj)}]` : (t.NamedType as string);
  return inner + (t.NonNull ? '!' : '');
}

interface Schema {
  types: Map<string, Obj>;
  directives: Set<string>;
  query: string;
  mutation: string;
  subscription: string;
}

/** buildSchema merges definitions and extensions and checks the rules a schema must follow. */
function buildSchema(doc: Obj): Schema {
  const types = new Map<string, Obj>();
  for (const s of SCALARS) types.set(s, { Kind: 'SCALAR', Name: s, BuiltIn: true });
  for (const d of list(doc, 'Definitions')) {
    if (types.has(d.Name as string)) throw new Invalid(`Cannot redeclare type ${d.Name as string}.`);
    types.set(d.Name as string, { ...d });
  }
  for (const e of list(doc, 'Extensions')) {
    const cur = types.get(e.Name as string);
    if (!cur) {
      types.set(e.Name as string, { ...e });
      continue;
    }
    if (cur.Kind !== e.Kind) throw new Invalid(`Cannot extend type ${e.Name as string} because the base type is a ${cur.Kind as string}, not ${e.Kind as string}.`);
    for (const k of ['Fields', 'Interfaces', 'Directives', 'Types', 'EnumValues']) if (Array.isArray(e[k])) cur[k] = [...((cur[k] as unknown[]) ?? []), ...(e[k] as unknown[])];
  }
  const directives = new Set(BUILTIN_DIRECTIVES);
  for (const d of list(doc, 'Directives')) directives.add(d.Name as string);
  const schema: Schema = { types, directives, query: 'Query', mutation: 'Mutation', subscription: 'Subscription' };
  const ops = [...list(doc, 'Schema'), ...list(doc, 'SchemaExtension')];
  for (const s of ops) {
    for (const ot of list(s, 'OperationTypes')) {
      if (!types.has(ot.Type as string)) throw new Invalid(`Schema root ${ot.Operation as string} refers to a type ${ot.Type as string} that does not exist.`);
      schema[ot.Operation as 'query'] = ot.Type as string;
    }
    for (const d of list(s, 'Directives')) if (!directives.has(d.Name as string)) throw new Invalid(`Undefined directive ${d.Name as string}.`);
  }
  const isInput = (n: string): boolean => ['SCALAR', 'ENUM', 'INPUT_OBJECT'].includes(types.get(n)?.Kind as string);
  const isOutput = (n: string): boolean => types.get(n)?.Kind !== 'INPUT_OBJECT';
  const need = (n: string): Obj => {
    const t = types.get(n);
    if (!t) throw new Invalid(`Undefined type ${n}.`);
    return t;
  };
  const checkDirs = (o: Obj): void => {
    for (const d of list(o, 'Directives')) if (!directives.has(d.Name as string)) throw new Invalid(`Undefined directive ${d.Name as string}.`);
  };
  for (const t of types.values()) {
    if (t.BuiltIn) continue;
    checkDirs(t);
    if (t.Kind === 'OBJECT' || t.Kind === 'INTERFACE') {
      const fields = list(t, 'Fields');
      if (!fields.length) throw new Invalid(`${t.Kind as string} ${t.Name as string} must define one or more fields.`);
      for (const f of fields) {
        const ft = named(f.Type as Obj);
        need(ft);
        if (!isOutput(ft)) throw new Invalid(`${t.Name as string}.${f.Name as string} must be an output type`);
        for (const a of list(f, 'Arguments')) {
          need(named(a.Type as Obj));
          if (!isInput(named(a.Type as Obj))) throw new Invalid('argument must be an input type');
        }
        checkDirs(f);
      }
      const ifs = (t.Interfaces as string[] | undefined) ?? [];
      for (const i of ifs) {
        const it = need(i);
        if (it.Kind !== 'INTERFACE') throw new Invalid(`${t.Name as string} must implement an interface`);
        for (const inherited of (it.Interfaces as string[] | undefined) ?? []) if (!ifs.includes(inherited)) throw new Invalid(`${t.Name as string} must implement ${inherited} because it is implemented by ${i}`);
        for (const f of list(it, 'Fields')) if (!fields.some((x) => x.Name === f.Name)) throw new Invalid(`For ${t.Name as string} to implement ${i} it must have a field called ${f.Name as string}.`);
      }
    } else if (t.Kind === 'INPUT_OBJECT') {
      const fields = list(t, 'Fields');
      if (!fields.length) throw new Invalid(`INPUT_OBJECT ${t.Name as string} must define one or more input fields.`);
      for (const f of fields) {
        const ft = named(f.Type as Obj);
        need(ft);
        if (!isInput(ft)) throw new Invalid(`${t.Name as string}.${f.Name as string} must be an input type`);
      }
    } else if (t.Kind === 'UNION') {
      const ts = (t.Types as string[] | undefined) ?? [];
      if (!ts.length) throw new Invalid(`UNION ${t.Name as string} must define one or more member types.`);
      for (const m of ts) if (need(m).Kind !== 'OBJECT') throw new Invalid(`UNION type "${m}" must be OBJECT.`);
    } else if (t.Kind === 'ENUM') {
      if (!list(t, 'EnumValues').length) throw new Invalid(`ENUM ${t.Name as string} must define one or more unique enum values.`);
    }
  }
  for (const d of list(doc, 'Directives')) for (const a of list(d, 'Arguments')) need(named(a.Type as Obj));
  return schema;
}

interface Pos {
  line: number;
  col: number;
}

/** validateQuery checks a query document against a schema (the usual executable-document rules). */
function validateQuery(doc: Obj, schema: Schema): void {
  const frags = new Map<string, Obj>();
  for (const f of list(doc, 'Fragments')) frags.set(f.Name as string, f);
  const fail = (msg: string, at?: Obj): never => {
    const p = (at as { __pos?: Pos } | undefined)?.__pos;
    const e = new Invalid(msg);
    (e as { pos?: Pos }).pos = p;
    throw e;
  };
  const fieldOf = (typeName: string, name: string): Obj | undefined => {
    const t = schema.types.get(typeName);
    return list(t ?? {}, 'Fields').find((f) => f.Name === name);
  };
  const usedVars = new Set<string>();
  const visitValue = (v: Obj): void => {
    if (v.Kind === 0) usedVars.add(v.Raw as string);
    for (const c of list(v, 'Children')) visitValue(c.Value as Obj);
  };
  const visitSelections = (sels: Arr, typeName: string, seen: Set<string>): void => {
    for (const s of sels) {
      for (const d of list(s, 'Directives')) {
        if (!schema.directives.has(d.Name as string)) fail(`Unknown directive "@${d.Name as string}".`, s);
        for (const a of list(d, 'Arguments')) visitValue(a.Value as Obj);
      }
      if (s.Alias !== undefined) {
        const name = s.Name as string;
        if (name.startsWith('__')) continue;
        const t = schema.types.get(typeName);
        const f = fieldOf(typeName, name);
        if (!f && t?.Kind !== 'UNION') fail(`Cannot query field "${name}" on type "${typeName}".`, s);
        if (!f) fail(`Cannot query field "${name}" on type "${typeName}".`, s);
        const args = list(s, 'Arguments');
        for (const a of args) {
          if (!list(f!, 'Arguments').some((x) => x.Name === a.Name)) fail(`Unknown argument "${a.Name as string}" on field "${typeName}.${name}".`, s);
          visitValue(a.Value as Obj);
        }
        for (const def of list(f!, 'Arguments')) {
          const ty = def.Type as Obj;
          if (ty.NonNull && def.DefaultValue === undefined && !args.some((a) => a.Name === def.Name)) fail(`Field "${name}" argument "${def.Name as string}" of type "${typeString(ty)}" is required, but it was not provided.`, s);
        }
        const ft = named(f!.Type as Obj);
        const kind = schema.types.get(ft)?.Kind;
        const sub = list(s, 'SelectionSet');
        if ((kind === 'OBJECT' || kind === 'INTERFACE' || kind === 'UNION') && !sub.length) fail(`Field "${name}" of type "${typeString(f!.Type as Obj)}" must have a selection of subfields.`, s);
        if ((kind === 'SCALAR' || kind === 'ENUM') && sub.length) fail(`Field "${name}" must not have a selection since type "${ft}" has no subfields.`, s);
        visitSelections(sub, ft, seen);
      } else if (s.SelectionSet !== undefined) {
        const tc = (s.TypeCondition as string | undefined) ?? typeName;
        if (!schema.types.has(tc)) fail(`Unknown type "${tc}".`, s);
        visitSelections(list(s, 'SelectionSet'), tc, seen);
      } else {
        const fr = frags.get(s.Name as string);
        if (!fr) fail(`Unknown fragment "${s.Name as string}".`, s);
        if (seen.has(s.Name as string)) continue;
        const next = new Set(seen).add(s.Name as string);
        visitSelections(list(fr!, 'SelectionSet'), fr!.TypeCondition as string, next);
      }
    }
  };
  for (const f of frags.values()) if (!schema.types.has(f.TypeCondition as string)) fail(`Unknown type "${f.TypeCondition as string}".`, f);
  for (const op of list(doc, 'Operations')) {
    usedVars.clear();
    const root = schema[(op.Operation as 'query') ?? 'query'];
    if (!schema.types.has(root)) fail(`Schema does not support operation type "${op.Operation as string}"`, op);
    visitSelections(list(op, 'SelectionSet'), root, new Set());
    const defined = list(op, 'VariableDefinitions').map((v) => v.Variable as string);
    for (const v of list(op, 'VariableDefinitions')) if (!schema.types.has(named(v.Type as Obj))) fail(`Unknown type "${named(v.Type as Obj)}".`, op);
    for (const u of usedVars) if (!defined.includes(u)) fail(`Variable "$${u}" is not defined.`, op);
    for (const d of defined) if (!usedVars.has(d)) fail(`Variable "$${d}" is never used.`, op);
  }
}

function syntax(name: string, e: unknown): never {
  if (e instanceof GraphQLSyntaxError) throw builtinErr(name, `${e.message} in GraphQL string at location ${e.line}:${e.col}`);
  throw e;
}

function strip(o: unknown): unknown {
  if (Array.isArray(o)) return o.map(strip);
  if (o && typeof o === 'object') return Object.fromEntries(Object.entries(o).filter(([k]) => k !== '__pos').map(([k, v]) => [k, strip(v)]));
  return o;
}

function queryArg(name: string, v: Value, pos: number): Obj {
  if (typeof v === 'string') {
    try {
      return parseQueryDocument(v);
    } catch (e) {
      return syntax(name, e);
    }
  }
  if (isObject(v)) return toJSON(v) as Obj;
  throw typeErr(name, pos, 'one of {string, object}', v);
}

function schemaArg(name: string, v: Value, pos: number): Obj {
  if (typeof v === 'string') {
    try {
      return parseSchemaDocument(v);
    } catch (e) {
      return syntax(name, e);
    }
  }
  if (isObject(v)) return toJSON(v) as Obj;
  throw typeErr(name, pos, 'one of {string, object}', v);
}

function soft<T>(f: () => T, otherwise: T): T {
  try {
    return f();
  } catch {
    return otherwise;
  }
}

const empty = (): PlainObject => Object.create(null) as PlainObject;

/** GraphQL: parse queries and schemas (gqlparser-shaped ASTs) and validate queries against schemas. */
export const register: Record<string, Builtin> = {
  'graphql.parse_query': { arity: 1, fn: (a) => fromJSON(strip(queryArg('graphql.parse_query', a[0]!, 1))) },
  'graphql.parse_schema': { arity: 1, fn: (a) => fromJSON(strip(schemaArg('graphql.parse_schema', a[0]!, 1))) },
  'graphql.schema_is_valid': {
    arity: 1,
    fn: (a) =>
      soft(() => {
        buildSchema(schemaArg('graphql.schema_is_valid', a[0]!, 1));
        return true;
      }, false),
  },
  'graphql.is_valid': {
    arity: 2,
    fn: (a) =>
      soft(() => {
        const q = queryArg('graphql.is_valid', a[0]!, 1);
        validateQuery(q, buildSchema(schemaArg('graphql.is_valid', a[1]!, 2)));
        return true;
      }, false),
  },
  'graphql.parse': {
    arity: 2,
    fn: (a) => {
      const q = queryArg('graphql.parse', a[0]!, 1);
      const sdoc = schemaArg('graphql.parse', a[1]!, 2);
      try {
        validateQuery(q, buildSchema(sdoc));
      } catch (e) {
        if (e instanceof Invalid) {
          const p = (e as { pos?: Pos }).pos;
          throw builtinErr('graphql.parse', `${e.message.replace(/\.$/, '')}${p ? ` in GraphQL string at location ${p.line}:${p.col}` : ''}`);
        }
        throw e;
      }
      return [fromJSON(strip(q)), fromJSON(strip(sdoc))];
    },
  },
  'graphql.parse_and_verify': {
    arity: 2,
    fn: (a) =>
      soft(() => {
        const q = queryArg('graphql.parse_and_verify', a[0]!, 1);
        const sdoc = schemaArg('graphql.parse_and_verify', a[1]!, 2);
        validateQuery(q, buildSchema(sdoc));
        return [true, fromJSON(strip(q)), fromJSON(strip(sdoc))] as Value;
      }, [false, empty(), empty()] as Value),
  },
};
