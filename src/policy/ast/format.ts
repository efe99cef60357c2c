import { formatNumber } from '../value.js';

import { parseModule } from './parser.js';
import type { Expr, Module, Rule, Term } from './types.js';

const INFIX: Record<string, [string, number]> = {
  or: ['|', 2],
  and: ['&', 3],
  equal: ['==', 1],
  neq: ['!=', 1],
  lt: ['<', 1],
  lte: ['<=', 1],
  gt: ['>', 1],
  gte: ['>=', 1],
  plus: ['+', 4],
  minus: ['-', 4],
  mul: ['*', 5],
  div: ['/', 5],
  rem: ['%', 5],
};

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** termText prints a term in canonical Rego syntax. */
export function termText(t: Term, prec = 0): string {
  switch (t.type) {
    case 'scalar':
      return typeof t.value === 'string' ? JSON.stringify(t.value) : typeof t.value === 'number' || typeof t.value === 'bigint' ? formatNumber(t.value) : String(t.value);
    case 'var':
      return t.name;
    case 'ref':
      return termText(t.head, 9) + t.path.map((p) => (p.type === 'scalar' && typeof p.value === 'string' && IDENT.test(p.value) ? `.${p.value}` : `[${termText(p)}]`)).join('');
    case 'array':
      return `[${t.items.map((x) => termText(x)).join(', ')}]`;
    case 'set':
      return t.items.length ? `{${t.items.map((x) => termText(x)).join(', ')}}` : 'set()';
    case 'object':
      return `{${t.items.map(([k, v]) => `${termText(k)}: ${termText(v)}`).join(', ')}}`;
    case 'arraycompr':
      return `[${termText(t.head)} | ${bodyInline(t.body)}]`;
    case 'setcompr':
      return `{${termText(t.head)} | ${bodyInline(t.body)}}`;
    case 'objectcompr':
      return `{${termText(t.key)}: ${termText(t.value)} | ${bodyInline(t.body)}}`;
    case 'template':
      return '$"' + t.parts.map((p) => (typeof p === 'string' ? JSON.stringify(p).slice(1, -1).replace(/\{/g, '\\{') : `{${'kind' in p ? exprText(p) : termText(p)}}`)).join('') + '"';
    case 'call': {
      const name = t.fn.join('.');
      if (t.fn.length === 1 && INFIX[name] && t.args.length === 2) {
        const [op, p] = INFIX[name]!;
        const s = `${termText(t.args[0]!, p)} ${op} ${termText(t.args[1]!, p + 1)}`;
        return p < prec ? `(${s})` : s;
      }
      if (name === 'internal.member_2') return wrap(`${termText(t.args[0]!, 1)} in ${termText(t.args[1]!, 1)}`, prec > 0);
      if (name === 'internal.member_3') return wrap(`${termText(t.args[0]!, 1)}, ${termText(t.args[1]!, 1)} in ${termText(t.args[2]!, 1)}`, true);
      if (name === 'eq') return `${termText(t.args[0]!)} = ${termText(t.args[1]!)}`;
      if (name === 'assign') return `${termText(t.args[0]!)} := ${termText(t.args[1]!)}`;
      return `${name}(${t.args.map((a) => termText(a)).join(', ')})`;
    }
  }
}

const wrap = (s: string, yes: boolean): string => (yes ? `(${s})` : s);

function exprText(e: Expr): string {
  let s: string;
  switch (e.kind) {
    case 'term':
      s = termText(e.term);
      break;
    case 'some':
      s = `some ${e.vars.map((v) => v.name).join(', ')}`;
      break;
    case 'somein':
      s = `some ${e.key ? termText(e.key) + ', ' : ''}${termText(e.value)} in ${termText(e.domain)}`;
      break;
    case 'every':
      s = `every ${e.key ? termText(e.key) + ', ' : ''}${termText(e.value)} in ${termText(e.domain)} {\n${e.body.map((x) => '\t' + exprText(x)).join('\n')}\n}`;
      break;
  }
  if (e.negated) s = `not ${s}`;
  for (const w of e.with) s += ` with ${termText(w.target)} as ${termText(w.value)}`;
  return s;
}

function bodyInline(body: Expr[]): string {
  return body.map(exprText).join('; ');
}

function isTrueBody(body: Expr[]): boolean {
  return body.length === 1 && body[0]!.kind === 'term' && !body[0]!.negated && body[0]!.term.type === 'scalar' && body[0]!.term.value === true && !body[0]!.with.length;
}

/**
 * Style is what a formatted module may use: v1 prints `if`, `contains` and `:=`; v0 prints only the
 * keywords the module imports and keeps `=` where it was written, as OPA's v0 formatter does.
 */
interface Style {
  ifs: boolean;
  contains: boolean;
  /** print the operator each head was written with, not always `:=` */
  keepEq: boolean;
}

const V1: Style = { ifs: true, contains: true, keepEq: false };

function headText(r: Rule, st: Style): string {
  let s = r.isDefault ? 'default ' : '';
  s += r.ref.map((t, i) => (i === 0 ? String((t as { value: unknown }).value) : t.type === 'scalar' && typeof t.value === 'string' && IDENT.test(t.value) ? `.${t.value}` : `[${termText(t)}]`)).join('');
  if (r.args) s += `(${r.args.map((a) => termText(a)).join(', ')})`;
  if (r.kind === 'multi') s += st.contains ? ` contains ${termText(r.key!)}` : `[${termText(r.key!)}]`;
  else if (r.value) s += ` ${valueOp(r.assign, st)} ${termText(r.value)}`;
  return s;
}

const valueOp = (assign: true | undefined, st: Style): string => (assign || !st.keepEq ? ':=' : '=');

/** FmtTarget is the syntax `formatModule` prints: as parsed (`same`), or v1 with `import rego.v1` (`v0v1`, OPA's `--v0-v1`). */
export type FmtTarget = 'same' | 'v0v1';

const isImport = (imp: Module['imports'][number], ...path: string[]): boolean =>
  imp.path.type === 'ref' && imp.path.head.type === 'var' && imp.path.head.name === path[0] && imp.path.path.length >= path.length - 1 && path.slice(1).every((p, i) => (imp.path as Extract<Term, { type: 'ref' }>).path[i]!.type === 'scalar' && ((imp.path as Extract<Term, { type: 'ref' }>).path[i] as { value: unknown }).value === p);

/** importsKeyword: the module imports `future.keywords` or `future.keywords.KW`. */
function importsKeyword(m: Module, kw: string): boolean {
  return m.imports.some((imp) => isImport(imp, 'future', 'keywords') && (imp.path.type !== 'ref' || imp.path.path.length === 1 || (imp.path.path[1] as { value: unknown }).value === kw));
}

/**
 * formatModule prints a module in canonical style (tabs, one expression a line), keeping comments on
 * the lines they annotated. A v1 module (or a v0 one that imports `rego.v1`) prints in Rego v1 style
 * (`if`, `contains`, `:=`). A v0 module prints in v0 style, as `opa fmt --v0-compatible` does: `if`
 * and `contains` only where the module imports them, `=` kept where it was written, so the output
 * still parses as v0. With target `v0v1` a v0 module prints in v1 style with `import rego.v1` in
 * place of its `future.keywords` imports, so that it parses the same in both versions (`opa fmt --v0-v1`).
 */
export function formatModule(src: string, file = 'input.rego', regoVersion: 0 | 1 = 1, target: FmtTarget = 'same'): string {
  const m: Module = parseModule(file, src, regoVersion);
  const toV1 = target === 'v0v1' && m.regoVersion === 0;
  const st: Style = m.regoVersion === 1 || toV1 ? V1 : { ifs: importsKeyword(m, 'if'), contains: importsKeyword(m, 'contains'), keepEq: true };
  const comments = collectComments(src);
  const out: string[] = [];
  let ci = 0;
  const flush = (beforeRow: number, indent = ''): void => {
    while (ci < comments.length && comments[ci]!.row < beforeRow) out.push(indent + comments[ci++]!.text);
  };
  flush(m.loc.row);
  out.push(`package ${m.pkg.slice(1).map((p, i) => (i === 0 || IDENT.test(p) ? (i ? '.' : '') + p : `[${JSON.stringify(p)}]`)).join('')}`);
  const imports = toV1 ? m.imports.filter((imp) => !isImport(imp, 'future', 'keywords') && !isImport(imp, 'rego', 'v1')) : m.imports;
  if (imports.length || toV1) out.push('');
  if (toV1) out.push('import rego.v1');
  for (const imp of imports) {
    flush(imp.loc.row);
    out.push(`import ${termText(imp.path)}${imp.alias ? ` as ${imp.alias}` : ''}`);
  }
  for (const r of m.rules) {
    // v0 without `if` puts a block after the head; `p[x] if` without `contains` would be `p[x] := true`
    const opens = st.ifs && (r.kind !== 'multi' || st.contains) ? ' if {' : ' {';
    out.push('');
    flush(r.loc.row);
    const head = headText(r, st);
    const bodyLines = (body: Expr[]): void => {
      for (const e of body) {
        flush(e.loc.row, '\t');
        for (const line of exprText(e).split('\n')) out.push('\t' + line);
      }
    };
    // a head alone must still parse to the same rule: `p` and `p.q` alone are not `p if true`
    if (isTrueBody(r.body) && !r.elses.length) out.push(r.kind === 'complete' && !r.value && !r.isDefault ? (st.ifs ? `${head} if true` : `${head} { true }`) : head);
    else {
      out.push(head + opens);
      bodyLines(r.body);
      out.push('}');
    }
    for (const e of r.elses) {
      const v = e.value ? ` ${valueOp(e.assign, st)} ${termText(e.value)}` : '';
      out[out.length - 1] += ` else${v}`;
      if (!isTrueBody(e.body)) {
        out[out.length - 1] += opens;
        bodyLines(e.body);
        out.push('}');
      } else if (!e.value) out[out.length - 1] += st.ifs ? ' if true' : ' { true }';
    }
  }
  flush(Number.MAX_SAFE_INTEGER);
  return out.join('\n').replace(/\n{3,}/g, '\n\n') + '\n';
}

/** collectComments finds `#` comments outside strings, with their rows. */
function collectComments(src: string): Array<{ row: number; text: string }> {
  const out: Array<{ row: number; text: string }> = [];
  let row = 1;
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') row++;
    else if (c === '"') {
      i++;
      while (i < src.length && src[i] !== '"' && src[i] !== '\n') i += src[i] === '\\' ? 2 : 1;
    } else if (c === '`') {
      i++;
      while (i < src.length && src[i] !== '`') {
        if (src[i] === '\n') row++;
        i++;
      }
    } else if (c === '#') {
      const j = src.indexOf('\n', i);
      out.push({ row, text: src.slice(i, j < 0 ? undefined : j).trimEnd() });
      i = j < 0 ? src.length : j;
      continue;
    }
    i++;
  }
  return out;
}
