import { RE2JS } from 're2js';

import { RSet, type Value } from '../value.js';

import { str } from './operands.js';
import { patternCache } from './pattern-cache.js';
import { type Builtin, type BuiltinContext,builtinErr, typeErr } from './types.js';

/** Characters with a meaning in RE2 syntax outside a class. */
const META = /[\\.+*?()|[\]{}^$]/g;
const esc = (s: string): string => s.replace(META, '\\$&');
/** Inside a class only these need escaping (`[` too: RE2 reads `[:alpha:]` there). */
const escClass = (s: string): string => s.replace(/[\\\][^-]/g, '\\$&');

/**
 * globToRegExp translates gobwas/glob syntax (as OPA's glob.match uses it) to an RE2 pattern matched
 * against the whole string: `*` any run of non-delimiters, `**` any run, `?` one non-delimiter,
 * `[abc]`, `[a-z]`, `[!a-z]`, `{a,b}` (nested), `\x` a literal x. RE2 runs in time linear in the
 * input, whatever the pattern: a glob is never a backtracking regular expression.
 */
export function globToRegExp(pattern: string, delims: string[]): string {
  const notDelim = delims.length ? `[^${delims.map(escClass).join('')}]` : '(?s:.)';
  let out = '';
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    switch (c) {
      case '\\': {
        i++;
        if (i >= pattern.length) throw new Error('unexpected end of input');
        const cp = pattern.codePointAt(i)!;
        const ch = String.fromCodePoint(cp);
        out += esc(ch);
        i += ch.length - 1;
        break;
      }
      case '*':
        if (pattern[i + 1] === '*') {
          out += '(?s:.*)';
          i++;
        } else out += `${notDelim}*`;
        break;
      case '?':
        out += notDelim;
        break;
      case '[': {
        const j = pattern.indexOf(']', i + 1);
        if (j < 0) throw new Error('unexpected end of input');
        let body = pattern.slice(i + 1, j);
        let neg = false;
        if (body.startsWith('!')) {
          neg = true;
          body = body.slice(1);
        }
        // a range keeps its '-'; everything else is a literal member
        const cps = [...body];
        let cls = '';
        for (let k = 0; k < cps.length; k++) cls += cps[k] === '-' && k > 0 && k < cps.length - 1 ? '-' : escClass(cps[k]!);
        out += `[${neg ? '^' : ''}${cls}]`;
        i = j;
        break;
      }
      case '{':
        depth++;
        out += '(?:';
        break;
      case '}':
        if (!depth) throw new Error('unexpected end of input');
        depth--;
        out += ')';
        break;
      case ',':
        out += depth ? '|' : ',';
        break;
      default:
        out += esc(c);
    }
  }
  if (depth) throw new Error('unexpected end of input');
  return out;
}

function compileGlob(pattern: string, delims: string[], ctx: BuiltinContext): RE2JS {
  const key = 'glob:' + JSON.stringify([pattern, delims]);
  const cache = patternCache(ctx);
  const hit = cache.get<RE2JS>(key);
  if (hit) return hit;
  let re: RE2JS;
  try {
    re = RE2JS.compile(globToRegExp(pattern, delims));
  } catch (e) {
    throw builtinErr('glob.match', (e as Error).message);
  }
  cache.set(key, re);
  return re;
}

/** Glob matching with delimiters. */
export const register: Record<string, Builtin> = {
  'glob.match': {
    arity: 3,
    fn: (a, ctx) => {
      const pattern = str('glob.match', a, 0);
      const d = a[1]!;
      let delims: string[];
      if (d === null) delims = [];
      else if (Array.isArray(d) || d instanceof RSet) {
        const xs = Array.isArray(d) ? d : d.values();
        for (const x of xs) if (typeof x !== 'string') throw typeErr('glob.match', 2, 'array of strings', d);
        delims = xs.length ? (xs as string[]) : ['.'];
      } else throw typeErr('glob.match', 2, 'array', d);
      const s = str('glob.match', a, 2);
      return compileGlob(pattern, delims, ctx).matches(s);
    },
  },
  'glob.quote_meta': { arity: 1, fn: (a) => str('glob.quote_meta', a, 0).replace(/[*?\\[\]{}]/g, '\\$&') },
};
export type { Value };
