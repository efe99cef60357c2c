import type { Module, Term, VarTerm } from '../ast/types.js';
import { RegoError } from '../errors.js';

/** DEPRECATED names built-ins kept for v0 policies, with their replacements. */
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
 * compiled) modules: unused imports and calls to deprecated built-ins.
 */
export function strictProblems(modules: Module[]): RegoError[] {
  const out: RegoError[] = [];
  for (const m of modules) {
    const used = new Set<string>();
    const visit = (x: unknown): void => {
      if (!x || typeof x !== 'object') return;
      if (Array.isArray(x)) {
        for (const y of x) visit(y);
        return;
      }
      const o = x as Record<string, unknown>;
      if (o.type === 'var') used.add((o as unknown as VarTerm).name);
      if (o.type === 'call') {
        const fn = (o as unknown as Extract<Term, { type: 'call' }>).fn;
        used.add(fn[0]!);
        const name = fn.join('.');
        if (DEPRECATED[name]) out.push(new RegoError('rego_type_error', `deprecated built-in function calls in expression: ${name} (use ${DEPRECATED[name]})`, o.loc as never));
      }
      for (const [k, v] of Object.entries(o)) if (k !== 'module' && k !== 'loc') visit(v);
    };
    visit(m.rules);
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
