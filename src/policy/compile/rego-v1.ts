import type { CallTerm, Expr, Import, Module, Term, VarTerm } from '../ast/types.js';
import { walkNodes } from '../ast/walk.js';
import { RegoError } from '../errors.js';

import { DEPRECATED } from './strict.js';

const SKIP = new Set(['module', 'loc', 'annotations']);
// a compiled call's `target` points at what it resolved to (another rule's tree)
const SKIP_COMPILED = new Set([...SKIP, 'target']);
const ROOTS = new Set(['data', 'input']);
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * OPA 1.x compiles every v1 module (and every v0 module with `import rego.v1`) with some checks
 * that are otherwise strict-mode only: no import shadows another, no rule, function argument or
 * `:=` variable is named `input` or `data`, and no deprecated built-in is called. `importProblems`
 * and `shadowProblems` need only the parsed module; `deprecatedCalls` needs a compiled one (calls
 * resolved), so that a package's own function named `any` is not taken for the built-in.
 */

/** importText prints an import as OPA's `Import.String()` does: `import data.x.y as z`. */
function importText(imp: Import): string {
  const p = imp.path as Extract<Term, { type: 'ref' }>;
  const segs = p.path.map((t) => String((t as { value: unknown }).value));
  const path = (p.head as VarTerm).name + segs.map((s) => (IDENT.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`)).join('');
  return `import ${path}${imp.alias ? ` as ${imp.alias}` : ''}`;
}

/** importName is the name an import binds: its alias, else the last segment of its path. */
function importName(imp: Import): string {
  if (imp.alias) return imp.alias;
  const p = imp.path as Extract<Term, { type: 'ref' }>;
  const last = p.path[p.path.length - 1];
  return last ? String((last as { value: unknown }).value) : (p.head as VarTerm).name;
}

/** importProblems: OPA's "import must not shadow import ..." for a second import of the same name. */
export function importProblems(m: Module): RegoError[] {
  const seen = new Map<string, Import>();
  const out: RegoError[] = [];
  for (const imp of m.imports) {
    const name = importName(imp);
    const first = seen.get(name);
    if (first) out.push(new RegoError('rego_compile_error', `import must not shadow ${importText(first)}`, imp.loc));
    else seen.set(name, imp);
  }
  return out;
}

/** shadowProblems: rules, function arguments and `:=` variables named `input` or `data`. */
export function shadowProblems(m: Module): RegoError[] {
  const out: RegoError[] = [];
  for (const r of m.rules) {
    const name = String((r.ref[0] as { value: unknown }).value);
    if (ROOTS.has(name)) out.push(new RegoError('rego_compile_error', `rules must not shadow ${name} (use a different rule name)`, r.loc));
    for (const a of r.args ?? []) {
      if (a.type === 'var' && ROOTS.has(a.name)) out.push(new RegoError('rego_compile_error', `args must not shadow ${a.name} (use a different variable name)`, a.loc));
    }
    walkNodes(r, SKIP, (o) => {
      if (!Array.isArray(o.body)) return;
      for (const e of o.body as Expr[]) {
        if (e.kind !== 'term' || e.term.type !== 'call' || e.term.fn.length !== 1 || e.term.fn[0] !== 'assign') continue;
        const lhs = e.term.args[0]!;
        if (lhs.type === 'var' && ROOTS.has(lhs.name)) out.push(new RegoError('rego_compile_error', `variables must not shadow ${lhs.name} (use a different variable name)`, e.loc));
      }
    });
  }
  return out;
}

/** deprecatedCalls: calls of deprecated built-ins in a compiled module (OPA reports them as type errors). */
export function deprecatedCalls(m: Module): RegoError[] {
  const out: RegoError[] = [];
  walkNodes(m.rules, SKIP_COMPILED, (o) => {
    if (o.type !== 'call') return;
    const c = o as unknown as CallTerm;
    const name = c.target?.kind === 'builtin' ? c.target.name : undefined;
    if (name && DEPRECATED[name] !== undefined) out.push(new RegoError('rego_type_error', `deprecated built-in function calls in expression: ${name}`, c.loc));
  });
  return out;
}
