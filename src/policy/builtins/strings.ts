import { formatNumber, formatValue, isNumber, isObject, objEntries, RDecimal, RSet, type Value } from '../value.js';

import { arr, decInt, decOf, elems, exactNum, int, isIntegral, type Num,num, obj, str } from './operands.js';

/** bigOf is an integral number as a bigint (decimals exactly). */
function bigOf(v: Num): bigint {
  return v instanceof RDecimal ? decInt('sprintf', v) : BigInt(v);
}
import { capElements, capString, pace } from './limits.js';
import { type Builtin, type BuiltinContext,builtinErr, BuiltinError, typeErr } from './types.js';

const cps = (s: string): string[] => [...s];

function strOrColl(name: string, a: Value[], i: number): string[] {
  const v = a[i]!;
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) || v instanceof RSet) {
    const xs = Array.isArray(v) ? v : v.values();
    for (const x of xs) if (typeof x !== 'string') throw new BuiltinError('eval_type_error', `${name}: operand ${i + 1} must be array of strings but got array containing ${typeNameOf(x)}`);
    return xs as string[];
  }
  throw typeErr(name, i + 1, 'one of {string, set, array}', v);
}

function typeNameOf(v: Value): string {
  return typeof v === 'string' ? 'string' : isNumber(v) ? 'number' : v === null ? 'null' : typeof v === 'boolean' ? 'boolean' : Array.isArray(v) ? 'array' : v instanceof RSet ? 'set' : 'object';
}

/** decTrunc truncates a float toward zero as the decimal its text denotes. */
function decTrunc(n: number): bigint {
  const d = decOf(n);
  return d.e >= 0 ? d.c * 10n ** BigInt(d.e) : d.c / 10n ** BigInt(-d.e);
}

/** goFloat formats a float the way Go's %v / strconv 'g' shortest form does for typical values. */
function goFloat(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return String(n);
  const s = String(n);
  if (/e/.test(s)) return s.replace(/e([+-])(\d)$/, 'e$10$2');
  return s;
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/** sprintf implements Go's fmt verbs as far as policies use them; widths and the result are capped. */
export function sprintf(format: string, args: Value[], ctx?: BuiltinContext): string {
  // Text between verbs is copied a run at a time: appending one character at a time builds a
  // deep rope that every later use (a set key, a comparison) must flatten first.
  let out = '';
  let ai = 0;
  for (let i = 0; i < format.length; i++) {
    const pct = format.indexOf('%', i);
    if (pct < 0) {
      out += i === 0 ? format : format.slice(i);
      break;
    }
    if (pct > i) out += format.slice(i, pct);
    let j = pct + 1;
    const f0 = j;
    while (j < format.length && '+-# 0'.includes(format[j]!)) j++;
    const flags = format.slice(f0, j);
    const w0 = j;
    while (isDigit(format.charCodeAt(j))) j++;
    const width = format.slice(w0, j);
    let prec: number | undefined;
    if (format[j] === '.') {
      const p0 = ++j;
      while (isDigit(format.charCodeAt(j))) j++;
      prec = j > p0 ? Number(format.slice(p0, j)) : 0;
    }
    const verb = format[j];
    i = j;
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (verb === undefined) {
      out += '%!(NOVERB)';
      break;
    }
    if (ai >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const v = args[ai++]!;
    if ((ai & 255) === 0) ctx?.check();
    let s: string;
    switch (verb) {
      case 'v':
        s = typeof v === 'string' ? v : isNumber(v) ? (typeof v === 'number' ? goFloat(v) : v.toString()) : formatValue(v);
        break;
      case 's':
        s = typeof v === 'string' ? v : isNumber(v) ? formatNumber(v) : formatValue(v);
        break;
      case 'q':
        s = typeof v === 'string' ? JSON.stringify(v) : `%!q(${formatValue(v)})`;
        break;
      case 'd':
        if (isNumber(v) && isIntegral(v)) s = typeof v === 'number' ? v.toFixed(0) : bigOf(v).toString();
        else s = `%!d(${isNumber(v) ? 'big.Float=' + formatNumber(v) : formatValue(v)})`;
        if (flags.includes('+') && !s.startsWith('-')) s = '+' + s;
        break;
      case 'f':
      case 'F':
        s = isNumber(v) ? Number(v).toFixed(prec ?? 6) : `%!f(${formatValue(v)})`;
        break;
      case 'e':
        s = isNumber(v) ? Number(v).toExponential(prec ?? 6).replace(/e([+-])(\d)$/, 'e$10$2') : `%!e(${formatValue(v)})`;
        break;
      case 'g':
        s = isNumber(v) ? goFloat(prec !== undefined ? Number(Number(v).toPrecision(prec)) : Number(v)) : `%!g(${formatValue(v)})`;
        break;
      case 'x':
      case 'X': {
        if (typeof v === 'string') s = Buffer.from(v).toString('hex');
        else if (isNumber(v) && (v instanceof RDecimal ? isIntegral(v) : Number.isInteger(Number(v)))) s = bigOf(v).toString(16);
        else s = `%!${verb}(${formatValue(v)})`;
        if (verb === 'X') s = s.toUpperCase();
        break;
      }
      case 'o':
        s = isNumber(v) ? bigOf(v).toString(8) : `%!o(${formatValue(v)})`;
        break;
      case 'b':
        s = isNumber(v) ? bigOf(v).toString(2) : `%!b(${formatValue(v)})`;
        break;
      case 't':
        s = typeof v === 'boolean' ? String(v) : `%!t(${formatValue(v)})`;
        break;
      default:
        s = `%!${verb}(${formatValue(v)})`;
    }
    if (prec !== undefined && (verb === 's' || verb === 'v') && typeof v === 'string') s = [...s].slice(0, prec).join('');
    if (width) {
      const w = Number(width);
      if (ctx) capString('sprintf', w, ctx);
      if (s.length < w) s = flags.includes('-') ? s.padEnd(w) : flags.includes('0') && verb !== 's' ? (s.startsWith('-') ? '-' + s.slice(1).padStart(w - 1, '0') : s.padStart(w, '0')) : s.padStart(w);
    }
    out += s;
    if (ctx) capString('sprintf', out.length, ctx);
  }
  if (ai < args.length) out += '%!(EXTRA ' + args.slice(ai).map((v) => `${goType(v)}=${typeof v === 'string' ? v : formatValue(v)}`).join(', ') + ')';
  return out;
}

function goType(v: Value): string {
  return typeof v === 'string' ? 'string' : isNumber(v) ? 'json.Number' : typeof v === 'boolean' ? 'bool' : 'ast.Value';
}

function trimSet(cut: string): (c: string) => boolean {
  const set = new Set(cps(cut));
  return (c) => set.has(c);
}

function trimLeft(s: string, cut: string): string {
  const has = trimSet(cut);
  const a = cps(s);
  let i = 0;
  while (i < a.length && has(a[i]!)) i++;
  return a.slice(i).join('');
}

function trimRight(s: string, cut: string): string {
  const has = trimSet(cut);
  const a = cps(s);
  let j = a.length;
  while (j > 0 && has(a[j - 1]!)) j--;
  return a.slice(0, j).join('');
}

/** Go's unicode.IsSpace set, used by strings.TrimSpace. */
const SPACE = '\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';

/** Strings: concatenation, search, trimming, formatting. */
export const register: Record<string, Builtin> = {
  concat: {
    arity: 2,
    fn: (a, ctx) => {
      const sep = str('concat', a, 0);
      const xs = elems('concat', a, 1, 'one of {array, set}');
      let len = xs.length ? sep.length * (xs.length - 1) : 0;
      for (let i = 0; i < xs.length; i++) {
        const x = xs[i]!;
        if (typeof x !== 'string') throw typeErr('concat', 2, 'one of {array, set} of strings', a[1]!);
        len += x.length;
        pace(ctx, i + 1);
      }
      capString('concat', len, ctx);
      return xs.join(sep);
    },
  },
  contains: { arity: 2, fn: (a) => str('contains', a, 0).includes(str('contains', a, 1)) },
  startswith: { arity: 2, fn: (a) => str('startswith', a, 0).startsWith(str('startswith', a, 1)) },
  endswith: { arity: 2, fn: (a) => str('endswith', a, 0).endsWith(str('endswith', a, 1)) },
  lower: { arity: 1, fn: (a) => str('lower', a, 0).toLowerCase() },
  upper: { arity: 1, fn: (a) => str('upper', a, 0).toUpperCase() },
  split: { arity: 2, fn: (a, ctx) => splitGo(str('split', a, 0), str('split', a, 1), ctx) },
  replace: { arity: 3, fn: (a, ctx) => replaceAll(str('replace', a, 0), str('replace', a, 1), str('replace', a, 2), ctx) },
  'strings.replace_n': {
    arity: 2,
    fn: (a, ctx) => {
      const pats = obj('strings.replace_n', a, 0);
      let s = str('strings.replace_n', a, 1);
      const entries = objEntries(pats);
      for (const [k, v] of entries) {
        if (typeof k !== 'string') throw new BuiltinError('eval_type_error', 'strings.replace_n: operand 1 non-string key found in pattern object');
        if (typeof v !== 'string') throw new BuiltinError('eval_type_error', 'strings.replace_n: operand 1 non-string value found in pattern object');
      }
      // Go's strings.Replacer: at each position, the first matching pattern in argument order (sorted keys) wins.
      let out = '';
      let i = 0;
      let n = 0;
      outer: while (i < s.length) {
        if ((++n & 1023) === 0) {
          ctx.check();
          capString('strings.replace_n', out.length, ctx);
        }
        for (const [k, v] of entries) {
          if ((k as string).length && s.startsWith(k as string, i)) {
            out += v as string;
            i += (k as string).length;
            continue outer;
          }
        }
        out += s[i];
        i++;
      }
      capString('strings.replace_n', out.length, ctx);
      s = out;
      return s;
    },
  },
  indexof: {
    arity: 2,
    fn: (a, ctx) => {
      const s = cps(str('indexof', a, 0));
      const sub = cps(str('indexof', a, 1));
      if (!sub.length) return 0;
      outer: for (let i = 0; i + sub.length <= s.length; i++) {
        pace(ctx, i);
        for (let j = 0; j < sub.length; j++) if (s[i + j] !== sub[j]) continue outer;
        return i;
      }
      return -1;
    },
  },
  indexof_n: {
    arity: 2,
    fn: (a, ctx) => {
      const s = cps(str('indexof_n', a, 0));
      const sub = cps(str('indexof_n', a, 1));
      const out: number[] = [];
      if (!sub.length) return out;
      outer: for (let i = 0; i + sub.length <= s.length; i++) {
        pace(ctx, i);
        for (let j = 0; j < sub.length; j++) if (s[i + j] !== sub[j]) continue outer;
        out.push(i);
      }
      return out;
    },
  },
  substring: {
    arity: 3,
    fn: (a) => {
      const s = cps(str('substring', a, 0));
      const start = int('substring', a, 1);
      const len = int('substring', a, 2);
      if (start < 0) throw builtinErr('substring', 'negative offset');
      if (start >= s.length) return '';
      return (len < 0 ? s.slice(start) : s.slice(start, start + len)).join('');
    },
  },
  trim: { arity: 2, fn: (a) => trimRight(trimLeft(str('trim', a, 0), str('trim', a, 1)), str('trim', a, 1)) },
  trim_left: { arity: 2, fn: (a) => trimLeft(str('trim_left', a, 0), str('trim_left', a, 1)) },
  trim_right: { arity: 2, fn: (a) => trimRight(str('trim_right', a, 0), str('trim_right', a, 1)) },
  trim_prefix: {
    arity: 2,
    fn: (a) => {
      const s = str('trim_prefix', a, 0);
      const p = str('trim_prefix', a, 1);
      return s.startsWith(p) ? s.slice(p.length) : s;
    },
  },
  trim_suffix: {
    arity: 2,
    fn: (a) => {
      const s = str('trim_suffix', a, 0);
      const p = str('trim_suffix', a, 1);
      return p && s.endsWith(p) ? s.slice(0, s.length - p.length) : s;
    },
  },
  trim_space: { arity: 1, fn: (a) => trimRight(trimLeft(str('trim_space', a, 0), SPACE), SPACE) },
  sprintf: {
    arity: 2,
    fn: (a, ctx) => {
      const f = str('sprintf', a, 0);
      return sprintf(f, arr('sprintf', a, 1), ctx);
    },
  },
  format_int: {
    arity: 2,
    fn: (a) => {
      const x = exactNum('format_int', a, 0);
      const base = num('format_int', a, 1);
      if (![2, 8, 10, 16].includes(Number(base))) throw new BuiltinError('eval_type_error', 'format_int: operand 2 must be one of {2, 8, 10, 16}');
      if (x instanceof RDecimal) {
        // truncated toward zero, exactly
        const d = x.e >= 0 ? decInt('format_int', x) : x.e < -100000 ? 0n : x.c / 10n ** BigInt(-x.e);
        return d.toString(Number(base));
      }
      const n = x;
      // a float beyond 2^53 stands for the decimal of its text (1e30 is 10^30, not its binary neighbour)
      const i = typeof n === 'bigint' ? n : Number.isSafeInteger(Math.trunc(n)) || !Number.isFinite(n) ? BigInt(Math.trunc(Number.isFinite(n) ? n : 0)) : decTrunc(n);
      return i.toString(Number(base));
    },
  },
  'strings.reverse': { arity: 1, fn: (a) => cps(str('strings.reverse', a, 0)).reverse().join('') },
  'strings.count': {
    arity: 2,
    fn: (a, ctx) => {
      const s = str('strings.count', a, 0);
      const sub = str('strings.count', a, 1);
      if (!sub) return cps(s).length + 1;
      let n = 0;
      for (let i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length)) pace(ctx, ++n);
      return n;
    },
  },
  'strings.any_prefix_match': {
    arity: 2,
    fn: (a, ctx) => {
      const xs = strOrColl('strings.any_prefix_match', a, 0);
      const ps = strOrColl('strings.any_prefix_match', a, 1);
      let n = 0;
      return xs.some((x) => ps.some((p) => (pace(ctx, ++n), x.startsWith(p))));
    },
  },
  'strings.any_suffix_match': {
    arity: 2,
    fn: (a, ctx) => {
      const xs = strOrColl('strings.any_suffix_match', a, 0);
      const ps = strOrColl('strings.any_suffix_match', a, 1);
      let n = 0;
      return xs.some((x) => ps.some((p) => (pace(ctx, ++n), x.endsWith(p))));
    },
  },
  'strings.render_template': {
    arity: 2,
    fn: (a, ctx) => renderTemplate(str('strings.render_template', a, 0), obj('strings.render_template', a, 1), ctx),
  },
};

function splitGo(s: string, sep: string, ctx: BuiltinContext): string[] {
  const max = ctx.limits.maxElements;
  const out = sep === '' ? cps(s) : s.split(sep, max + 1);
  capElements('split', out.length, ctx);
  return out;
}

function replaceAll(s: string, old: string, nw: string, ctx: BuiltinContext): string {
  if (old === '') {
    const parts = cps(s);
    capString('replace', s.length + (parts.length + 1) * nw.length, ctx);
    return nw + parts.map((c) => c + nw).join('');
  }
  const parts = s.split(old);
  capString('replace', s.length + (parts.length - 1) * (nw.length - old.length), ctx);
  return parts.join(nw);
}

/** tokens splits a template into text and `{{...}}` actions (odd indexes), in one pass with no backtracking. */
function tokens(tpl: string): string[] {
  const out: string[] = [];
  let last = 0;
  for (let i = tpl.indexOf('{{'); i >= 0; ) {
    const j = tpl.indexOf('}}', i + 2);
    if (j < 0) break;
    out.push(tpl.slice(last, i), tpl.slice(i, j + 2));
    last = j + 2;
    i = tpl.indexOf('{{', last);
  }
  out.push(tpl.slice(last));
  return out;
}

const WS = /\s/;

/** actionBody is the text of a `{{- body -}}` action with its trim markers and spaces removed (undefined for text). */
function actionBody(t: string): string | undefined {
  if (!t.startsWith('{{') || !t.endsWith('}}') || t.length < 4) return undefined;
  let a = 2;
  let b = t.length - 2;
  if (t[a] === '-') a++;
  while (a < b && WS.test(t[a]!)) a++;
  if (b > a && t[b - 1] === '-') b--;
  while (b > a && WS.test(t[b - 1]!)) b--;
  return t.slice(a, b);
}

/** renderTemplate supports the Go text/template subset policies use: {{.key}}, {{range}}, {{if}}. */
function renderTemplate(tpl: string, vars: Value, ctx: BuiltinContext): string {
  let work = 0;
  const scope = new Map<string, Value>();
  const lookup = (path: string, dot: Value): Value | undefined => {
    if (path === '.') return dot;
    const vm = /^(\$\w+)(.*)$/.exec(path);
    let cur: Value | undefined = vm && vm[1] !== '$' ? scope.get(vm[1]!) : path.startsWith('$') ? vars : dot;
    const rest = vm && vm[1] !== '$' ? vm[2]! : path;
    for (const p of rest.replace(/^\$?\./, '').split('.').filter(Boolean)) {
      if (!isObject(cur)) throw new Error(`can't evaluate field ${p}`);
      const e: [Value, Value] | undefined = objEntries(cur).find(([k]) => k === p);
      cur = e ? e[1] : undefined;
    }
    return cur;
  };
  const show = (v: Value | undefined): string => (v === undefined ? '<undefined>' : typeof v === 'string' ? v : isNumber(v) ? formatNumber(v) : Array.isArray(v) ? '[' + v.map(show).join(' ') + ']' : formatValue(v));
  const toks = tokens(tpl);
  const bodies = toks.map((t, i) => (i % 2 ? actionBody(t) : undefined));
  const render = (start: number, end: number, dot: Value): string => {
    let out = '';
    for (let i = start; i < end; i++) {
      pace(ctx, ++work);
      capString('strings.render_template', out.length, ctx);
      const t = toks[i]!;
      const body = bodies[i];
      if (body === undefined) {
        out += t;
        continue;
      }
      if (body.startsWith('range ') || body.startsWith('if ')) {
        let depth = 1;
        let j = i + 1;
        let elseAt = -1;
        for (; j < end; j++) {
          pace(ctx, ++work);
          const mb = bodies[j];
          if (mb === undefined) continue;
          if (/^(range|if|with) /.test(mb)) depth++;
          else if (mb === 'end' && --depth === 0) break;
          else if (mb === 'else' && depth === 1) elseAt = j;
        }
        const expr = body.replace(/^(range|if)\s+/, '');
        const rm = /^(\$\w+)\s*,\s*(\$\w+)\s*:=\s*(.*)$/.exec(expr);
        const v = lookup(rm ? rm[3]! : expr, dot);
        if (body.startsWith('range ')) {
          const pairs: Array<[Value, Value]> = Array.isArray(v) ? v.map((x, n) => [n, x]) : v instanceof RSet ? v.values().map((x, n) => [n, x]) : isObject(v) ? objEntries(v) : [];
          for (const [key, it] of pairs) {
            if (rm) {
              scope.set(rm[1]!, key);
              scope.set(rm[2]!, it);
            }
            out += render(i + 1, elseAt >= 0 ? elseAt : j, it);
          }
        } else {
          const truthy = v !== undefined && v !== false && v !== null && v !== '' && v !== 0 && !(Array.isArray(v) && !v.length);
          out += truthy ? render(i + 1, elseAt >= 0 ? elseAt : j, dot) : elseAt >= 0 ? render(elseAt + 1, j, dot) : '';
        }
        i = j;
        continue;
      }
      out += show(lookup(body, dot));
    }
    return out;
  };
  const out = render(0, toks.length, vars);
  capString('strings.render_template', out.length, ctx);
  return out;
}
