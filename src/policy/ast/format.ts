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

function headText(r: Rule): string {
  let s = r.isDefault ? 'default ' : '';
  s += r.ref.map((t, i) => (i === 0 ? String((t as { value: unknown }).value) : t.type === 'scalar' && typeof t.value === 'string' && IDENT.test(t.value) ? `.${t.value}` : `[${termText(t)}]`)).join('');
  if (r.args) s += `(${r.args.map((a) => termText(a)).join(', ')})`;
  if (r.kind === 'multi') s += ` contains ${termText(r.key!)}`;
  else if (r.value) s += ` := ${termText(r.value)}`;
  return s;
}

/**
 * formatModule prints a module in canonical Rego v1 style (tabs, `if`, `contains`, `:=`),
 * keeping comments on the lines they annotated.
 */
export function formatModule(src: string, file = 'input.rego', regoVersion: 0 | 1 = 1): string {
  const m: Module = parseModule(file, src, regoVersion);
  const comments = collectComments(src);
  const out: string[] = [];
  let ci = 0;
  const flush = (beforeRow: number, indent = ''): void => {
    while (ci < comments.length && comments[ci]!.row < beforeRow) out.push(indent + comments[ci++]!.text);
  };
  flush(m.loc.row);
  out.push(`package ${m.pkg.slice(1).map((p, i) => (i === 0 || IDENT.test(p) ? (i ? '.' : '') + p : `[${JSON.stringify(p)}]`)).join('')}`);
  if (m.imports.length) out.push('');
  for (const imp of m.imports) {
    flush(imp.loc.row);
    out.push(`import ${termText(imp.path)}${imp.alias ? ` as ${imp.alias}` : ''}`);
  }
  for (const r of m.rules) {
    out.push('');
    flush(r.loc.row);
    const head = headText(r);
    const bodyLines = (body: Expr[]): void => {
      for (const e of body) {
        flush(e.loc.row, '\t');
        for (const line of exprText(e).split('\n')) out.push('\t' + line);
      }
    };
    // a head alone must still parse to the same rule: `p` and `p.q` alone are not `p if true`
    if (isTrueBody(r.body) && !r.elses.length) out.push(r.kind === 'complete' && !r.value && !r.isDefault ? `${head} if true` : head);
    else {
      out.push(`${head} if {`);
      bodyLines(r.body);
      out.push('}');
    }
    for (const e of r.elses) {
      const v = e.value ? ` := ${termText(e.value)}` : '';
      out[out.length - 1] += ` else${v}`;
      if (!isTrueBody(e.body)) {
        out[out.length - 1] += ' if {';
        bodyLines(e.body);
        out.push('}');
      } else if (!e.value) out[out.length - 1] += ' if true';
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
