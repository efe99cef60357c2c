import { RSet, type Value } from '../value.js';
import { str } from './operands.js';
import { builtinErr, typeErr, type Builtin, type BuiltinContext } from './types.js';

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** globToRegExp translates gobwas/glob syntax (as OPA's glob.match uses it) to a RegExp source. */
export function globToRegExp(pattern: string, delims: string[]): string {
  const notDelim = delims.length ? `[^${delims.map(esc).join('')}]` : '[\\s\\S]';
  let out = '';
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    switch (c) {
      case '\\':
        i++;
        if (i >= pattern.length) throw new Error('unexpected end of input');
        out += esc(pattern[i]!);
        break;
      case '*':
        if (pattern[i + 1] === '*') {
          out += '[\\s\\S]*';
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
        out += `[${neg ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
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
  return `^${out}$`;
}

function compileGlob(pattern: string, delims: string[], ctx: BuiltinContext): RegExp {
  const key = 'glob:' + JSON.stringify([pattern, delims]);
  const hit = ctx.shared.get(key) as RegExp | undefined;
  if (hit) return hit;
  let re: RegExp;
  try {
    re = new RegExp(globToRegExp(pattern, delims), 'u');
  } catch (e) {
    throw builtinErr('glob.match', (e as Error).message);
  }
  ctx.shared.set(key, re);
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
      return compileGlob(pattern, delims, ctx).test(s);
    },
  },
  'glob.quote_meta': { arity: 1, fn: (a) => str('glob.quote_meta', a, 0).replace(/[*?\\[\]{}]/g, '\\$&') },
};
export type { Value };
