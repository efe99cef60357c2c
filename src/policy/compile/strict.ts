import type { Expr, Module, Rule, Term, VarTerm } from '../ast/types.js';
import { walkNodes } from '../ast/walk.js';
import { RegoError } from '../errors.js';

const SKIP = new Set(['module', 'loc']);
const RULE_SKIP = new Set(['module', 'loc', 'annotations']);

/**
 * DEPRECATED names the built-ins OPA keeps only for v0 policies, with their replacements: a v1
 * module (or any module under strict mode) that calls one does not compile.
 */
export const DEPRECATED: Record<string, string> = {
  re_match: 'regex.match',
  'net.cidr_overlap': 'net.cidr_contains',
  set_diff: 'the - operator on sets',
  all: 'every',
  any: 'some ... in',
  cast_array: 'array comprehension',
  cast_set: 'set comprehension',
  cast_string: 'is_string',
  cast_boolean: 'is_boolean',
  cast_null: 'is_null',
  cast_object: 'is_object',
};

/**
 * strictProblems reports what OPA's strict mode rejects and Skiff can check on parsed (not yet
 * compiled) modules: unused imports, and local variables that are assigned (`x := ...`) or
 * declared (`some x`) but never used. (Deprecated built-ins: `deprecatedCalls` in rego-v1.ts,
 * on compiled modules.)
 */
export function strictProblems(modules: Module[]): RegoError[] {
  const out: RegoError[] = [];
  for (const m of modules) {
    const used = new Set<string>();
    walkNodes(m.rules, SKIP, (o) => {
      if (o.type === 'var') used.add((o as unknown as VarTerm).name);
      if (o.type === 'call') used.add((o as unknown as Extract<Term, { type: 'call' }>).fn[0]!);
    });
    for (const r of m.rules) out.push(...unusedLocals(r));
    for (const imp of m.imports) {
      const p = imp.path as Extract<Term, { type: 'ref' }>;
      const head = (p.head as VarTerm).name;
      if (head === 'future' || head === 'rego') continue;
      const segs = p.path.map((t) => String((t as { value: unknown }).value));
      const alias = imp.alias ?? (segs.length ? segs[segs.length - 1]! : head);
      if (!used.has(alias)) out.push(new RegoError('rego_compile_error', `import ${[head, ...segs].join('.')}${imp.alias ? ` as ${imp.alias}` : ''} unused`, imp.loc));
    }
  }
  return out;
}

/**
 * unusedLocals finds `x := ...` and `some x` variables of a rule that no other term of the rule
 * mentions. Names are matched within the whole rule, so a use in a nested scope with the same
 * name counts as a use (never a false report).
 */
function unusedLocals(r: Rule): RegoError[] {
  const decls: Array<{ v: VarTerm; kind: 'assigned' | 'declared' }> = [];
  const declTerms = new Set<object>();
  const patternVars = (t: Term, out: VarTerm[]): void => {
    if (t.type === 'var') out.push(t);
    else if (t.type === 'array') for (const x of t.items) patternVars(x, out);
    else if (t.type === 'object') for (const [, x] of t.items) patternVars(x, out);
  };
  const visitBody = (body: Expr[]): void => {
    for (const e of body) {
      if (e.kind === 'some') {
        for (const v of e.vars) if (v.type === 'var') decls.push({ v, kind: 'declared' });
      } else if (e.kind === 'term' && e.term.type === 'call' && e.term.fn.length === 1 && e.term.fn[0] === 'assign') {
        const vs: VarTerm[] = [];
        patternVars(e.term.args[0]!, vs);
        for (const v of vs) decls.push({ v, kind: 'assigned' });
      }
    }
  };
  // every body of the rule, including comprehension and `every` bodies
  walkNodes(r, RULE_SKIP, (o) => {
    if (Array.isArray(o.body)) visitBody(o.body as Expr[]);
  });
  const unique = decls.filter((d, i) => d.v.name !== '_' && !d.v.name.startsWith('_') && decls.findIndex((x) => x.v === d.v) === i);
  if (!unique.length) return [];
  for (const d of unique) declTerms.add(d.v);
  const uses = new Map<string, number>();
  // Template parts are walked like any other child, so variables used inside string templates count.
  walkNodes(r, RULE_SKIP, (o) => {
    if (o.type === 'var' && !declTerms.has(o)) uses.set(o.name as string, (uses.get(o.name as string) ?? 0) + 1);
  });
  const out: RegoError[] = [];
  const reported = new Set<string>();
  for (const d of unique) {
    if (uses.get(d.v.name) || reported.has(d.v.name)) continue;
    reported.add(d.v.name);
    out.push(new RegoError('rego_compile_error', `${d.kind} var ${d.v.name} unused`, d.v.loc));
  }
  return out;
}
