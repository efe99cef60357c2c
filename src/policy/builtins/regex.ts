import { RE2JS } from 're2js';

import { capElements, capString } from './limits.js';
import { int, str } from './operands.js';
import { patternCache } from './pattern-cache.js';
import { type Builtin, type BuiltinContext,builtinErr } from './types.js';

/**
 * compileRe compiles with RE2 semantics (as Go's regexp, which OPA uses: no backreferences or
 * lookaround, matching in time linear in the input), memoised in the engine's bounded pattern cache.
 */
export function compileRe(name: string, pattern: string, ctx: BuiltinContext): RE2JS {
  const key = 're:' + pattern;
  const cache = patternCache(ctx);
  const hit = cache.get<RE2JS>(key);
  if (hit) return hit;
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (e) {
    throw builtinErr(name, `error parsing regexp: ${(e as Error).message}`);
  }
  cache.set(key, re);
  return re;
}

interface Match {
  start: number;
  end: number;
  groups: Array<string | null>;
}

/**
 * findAll lists up to n matches (n < 0: all), skipping an empty match right after the previous one as
 * Go does. Each match is a search of its own, so the deadline is checked between matches and their
 * number is capped.
 */
function findAll(name: string, re: RE2JS, s: string, n: number, ctx: BuiltinContext): Match[] {
  const out: Match[] = [];
  const m = re.matcher(s);
  let pos = 0;
  let prevEnd = -1;
  const max = ctx.limits.maxElements;
  while ((n < 0 || out.length < n) && pos <= s.length && m.find(pos)) {
    if ((out.length & 255) === 0) ctx.check();
    if (out.length >= max) capElements(name, out.length + 1, ctx);
    const st = m.start();
    const en = m.end();
    if (en === st && st === prevEnd) {
      pos = st + 1;
      continue;
    }
    const groups: Array<string | null> = [];
    for (let g = 0; g <= m.groupCount(); g++) groups.push(m.group(g));
    out.push({ start: st, end: en, groups });
    prevEnd = en;
    pos = en === st ? en + 1 : en;
  }
  return out;
}

/** expandGo expands $1, ${1}, $name in a Go regexp replacement template. */
function expandGo(tpl: string, m: Match, names: Record<string, number>): string {
  let out = '';
  for (let i = 0; i < tpl.length; i++) {
    const c = tpl[i]!;
    if (c !== '$' || i + 1 >= tpl.length) {
      out += c;
      continue;
    }
    if (tpl[i + 1] === '$') {
      out += '$';
      i++;
      continue;
    }
    let name: string;
    if (tpl[i + 1] === '{') {
      const j = tpl.indexOf('}', i + 2);
      if (j < 0) {
        out += c;
        continue;
      }
      name = tpl.slice(i + 2, j);
      i = j;
    } else {
      const mm = /^[A-Za-z0-9_]+/.exec(tpl.slice(i + 1));
      if (!mm) {
        out += c;
        continue;
      }
      name = mm[0];
      i += name.length;
    }
    const idx = /^\d+$/.test(name) ? Number(name) : names[name];
    out += idx !== undefined ? (m.groups[idx] ?? '') : '';
  }
  return out;
}

/** Regular expressions with RE2 semantics (via re2js). */
export const register: Record<string, Builtin> = {
  'regex.match': { arity: 2, fn: (a, c) => compileRe('regex.match', str('regex.match', a, 0), c).test(str('regex.match', a, 1)) },
  'regex.is_valid': {
    arity: 1,
    fn: (a, c) => {
      if (typeof a[0] !== 'string') return false;
      try {
        compileRe('regex.is_valid', a[0], c);
        return true;
      } catch {
        return false;
      }
    },
  },
  'regex.split': {
    arity: 2,
    fn: (a, c) => {
      const re = compileRe('regex.split', str('regex.split', a, 0), c);
      const s = str('regex.split', a, 1);
      const ms = findAll('regex.split', re, s, -1, c);
      if (s === '' ) return [''];
      const out: string[] = [];
      let last = 0;
      for (const m of ms) {
        if (m.end === 0 && m.start === 0 && ms.length) {
          continue;
        }
        out.push(s.slice(last, m.start));
        last = m.end;
      }
      out.push(s.slice(last));
      return out;
    },
  },
  'regex.find_n': {
    arity: 3,
    fn: (a, c) => {
      const re = compileRe('regex.find_n', str('regex.find_n', a, 0), c);
      return findAll('regex.find_n', re, str('regex.find_n', a, 1), int('regex.find_n', a, 2), c).map((m) => m.groups[0] ?? '');
    },
  },
  'regex.find_all_string_submatch_n': {
    arity: 3,
    fn: (a, c) => {
      const re = compileRe('regex.find_all_string_submatch_n', str('regex.find_all_string_submatch_n', a, 0), c);
      return findAll('regex.find_all_string_submatch_n', re, str('regex.find_all_string_submatch_n', a, 1), int('regex.find_all_string_submatch_n', a, 2), c).map((m) => m.groups.map((g) => g ?? ''));
    },
  },
  'regex.replace': {
    arity: 3,
    fn: (a, c) => {
      const s = str('regex.replace', a, 0);
      const re = compileRe('regex.replace', str('regex.replace', a, 1), c);
      const tpl = str('regex.replace', a, 2);
      const names: Record<string, number> = {};
      const ng = (re as unknown as { namedGroups?: () => Record<string, number> }).namedGroups?.();
      if (ng) Object.assign(names, ng);
      let out = '';
      let last = 0;
      for (const m of findAll('regex.replace', re, s, -1, c)) {
        out += s.slice(last, m.start) + expandGo(tpl, m, names);
        last = m.end;
        capString('regex.replace', out.length, c);
      }
      return out + s.slice(last);
    },
  },
  'regex.template_match': {
    arity: 4,
    fn: (a, c) => {
      const tpl = str('regex.template_match', a, 0);
      const s = str('regex.template_match', a, 1);
      const open = str('regex.template_match', a, 2);
      const close = str('regex.template_match', a, 3);
      let pattern = '^';
      let i = 0;
      while (i < tpl.length) {
        const j = tpl.indexOf(open, i);
        if (j < 0) {
          pattern += RE2JS.quote(tpl.slice(i));
          break;
        }
        pattern += RE2JS.quote(tpl.slice(i, j));
        const k = tpl.indexOf(close, j + open.length);
        if (k < 0) throw builtinErr('regex.template_match', `unbalanced braces in ${JSON.stringify(tpl)}`);
        pattern += '(?:' + tpl.slice(j + open.length, k) + ')';
        i = k + close.length;
      }
      return compileRe('regex.template_match', pattern + '$', c).test(s);
    },
  },
};
