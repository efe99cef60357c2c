import { parseModule } from '../ast/parser.js';
import type { Expr, Module, Rule, Term } from '../ast/types.js';
import { RegoError } from '../errors.js';
import { fromJSON, type Value } from '../value.js';

import { str } from './operands.js';
import { type Builtin,builtinErr } from './types.js';

type J = Record<string, unknown>;

/** termJSON writes a term in OPA's JSON AST shape ({type, value}). */
function termJSON(t: Term): J {
  switch (t.type) {
    case 'scalar': {
      const v = t.value;
      const type = v === null ? 'null' : typeof v === 'string' ? 'string' : typeof v === 'boolean' ? 'boolean' : 'number';
      return { type, value: typeof v === 'bigint' ? Number(v) : v };
    }
    case 'var':
      return { type: 'var', value: t.name };
    case 'ref':
      return { type: 'ref', value: [termJSON(t.head), ...t.path.map(termJSON)] };
    case 'array':
    case 'set':
      return { type: t.type, value: t.items.map(termJSON) };
    case 'object':
      return { type: 'object', value: t.items.map(([k, v]) => [termJSON(k), termJSON(v)]) };
    case 'call':
      return { type: 'call', value: [{ type: 'ref', value: t.fn.map((s, i) => (i ? { type: 'string', value: s } : { type: 'var', value: s })) }, ...t.args.map(termJSON)] };
    case 'arraycompr':
    case 'setcompr':
      return { type: t.type === 'arraycompr' ? 'arraycomprehension' : 'setcomprehension', value: { term: termJSON(t.head), body: t.body.map(exprJSON) } };
    case 'objectcompr':
      return { type: 'objectcomprehension', value: { key: termJSON(t.key), value: termJSON(t.value), body: t.body.map(exprJSON) } };
    case 'template':
      return { type: 'templatestring', value: t.parts.map((p) => (typeof p === 'string' ? { type: 'string', value: p } : 'kind' in p ? exprJSON(p) : termJSON(p))) };
  }
}

function exprJSON(e: Expr, index = 0): J {
  const out: J = { index };
  if (e.kind === 'term') out.terms = e.term.type === 'call' ? (termJSON(e.term).value as unknown[]) : termJSON(e.term);
  else if (e.kind === 'some') out.terms = { type: 'somedecl', value: e.vars.map(termJSON) };
  else if (e.kind === 'somein') out.terms = { type: 'somedecl', value: [{ type: 'call', value: [{ type: 'ref', value: [{ type: 'var', value: 'internal' }, { type: 'string', value: 'member_2' }] }, termJSON(e.value), termJSON(e.domain)] }] };
  else out.terms = { type: 'every', value: { key: e.key && termJSON(e.key), value: termJSON(e.value), domain: termJSON(e.domain), body: e.body.map(exprJSON) } };
  if (e.negated) out.negated = true;
  if (e.with.length) out.with = e.with.map((w) => ({ target: termJSON(w.target), value: termJSON(w.value) }));
  return out;
}

function ruleJSON(r: Rule): J {
  const head: J = { name: String((r.ref[0] as { value: unknown }).value), ref: r.ref.map(termJSON) };
  if (r.args) head.args = r.args.map(termJSON);
  if (r.key) head.key = termJSON(r.key);
  if (r.value) head.value = termJSON(r.value);
  const out: J = { head, body: r.body.map((e, i) => exprJSON(e, i)) };
  if (r.isDefault) out.default = true;
  return out;
}

/** moduleJSON converts a parsed module into OPA's JSON AST layout (package, imports, rules). */
export function moduleJSON(m: Module): J {
  return {
    package: { path: [{ type: 'var', value: 'data' }, ...m.pkg.slice(1).map((p) => ({ type: 'string', value: p }))] },
    imports: m.imports.map((i) => ({ path: termJSON(i.path), ...(i.alias ? { alias: i.alias } : {}) })),
    rules: m.rules.map(ruleJSON),
  };
}

/** Rego: parse a module into its AST (rego.parse_module). */
export const register: Record<string, Builtin> = {
  'rego.parse_module': {
    arity: 2,
    fn: (a) => {
      const file = str('rego.parse_module', a, 0);
      const text = str('rego.parse_module', a, 1);
      try {
        return fromJSON(moduleJSON(parseModule(file, text))) as Value;
      } catch (e) {
        if (e instanceof RegoError) throw builtinErr('rego.parse_module', e.message);
        throw e;
      }
    },
  },
};
