import { pace } from './limits.js';
import { str } from './operands.js';
import { type Builtin, type BuiltinContext,builtinErr } from './types.js';

interface Tok {
  ranges: Array<[number, number]>;
  neg: boolean;
  star: boolean;
}

/** parse reads the glob-regex subset regex.globs_match accepts: literals, `.`, classes, `\` escapes, `*`, `+`, `?`. */
function parse(p: string): Tok[] {
  const toks: Tok[] = [];
  const cps = [...p];
  const bad = (pos: number, what: string): never => {
    throw builtinErr('regex.globs_match', `input:${p}, pos:${pos}, ${what}: the input provided is invalid`);
  };
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    let tok: Tok;
    if (c === '*' || c === '+' || c === '?') {
      const prev = toks[toks.length - 1];
      if (!prev) bad(i + 1, `quantifier '${c}' without a preceding character`);
      if (c === '*') prev!.star = true;
      else if (c === '+') toks.push({ ...prev!, star: true });
      else {
        // x? is x|ε: approximated as x* (only intersection emptiness is asked)
        prev!.star = true;
      }
      continue;
    }
    if (c === ']') bad(i + 1, "set-close ']' with no preceding '['");
    if (c === '.') tok = { ranges: [[0, 0x10ffff]], neg: false, star: false };
    else if (c === '\\') {
      const n = cps[++i];
      if (n === undefined) bad(i, 'trailing escape');
      tok = { ranges: [[n!.codePointAt(0)!, n!.codePointAt(0)!]], neg: false, star: false };
    } else if (c === '[') {
      let j = i + 1;
      const neg = cps[j] === '^';
      if (neg) j++;
      const ranges: Array<[number, number]> = [];
      while (j < cps.length && cps[j] !== ']') {
        let a = cps[j]!;
        if (a === '\\') a = cps[++j] ?? '\\';
        if (cps[j + 1] === '-' && cps[j + 2] !== undefined && cps[j + 2] !== ']') {
          let b = cps[j + 2]!;
          if (b === '\\') b = cps[j + 3] ?? '\\';
          ranges.push([a.codePointAt(0)!, b.codePointAt(0)!]);
          j += b === cps[j + 2] ? 3 : 4;
        } else {
          ranges.push([a.codePointAt(0)!, a.codePointAt(0)!]);
          j++;
        }
      }
      if (j >= cps.length) bad(i + 1, "set-open '[' without a closing ']'");
      i = j;
      tok = { ranges, neg, star: false };
    } else tok = { ranges: [[c.codePointAt(0)!, c.codePointAt(0)!]], neg: false, star: false };
    toks.push(tok);
  }
  return toks;
}

const member = (t: Tok, c: number): boolean => t.ranges.some(([a, b]) => c >= a && c <= b) !== t.neg;

/** overlap tells whether two character sets share a character (testing range edges suffices). */
function overlap(x: Tok, y: Tok): boolean {
  const pts = new Set<number>([0, 0x10ffff]);
  for (const [a, b] of [...x.ranges, ...y.ranges]) for (const p of [a - 1, a, b, b + 1]) if (p >= 0 && p <= 0x10ffff) pts.add(p);
  for (const p of pts) if (member(x, p) && member(y, p)) return true;
  return false;
}

/** intersects searches the product of both patterns for a string both accept. */
function intersects(a: Tok[], b: Tok[], ctx: BuiltinContext): boolean {
  const seen = new Set<string>();
  const stack: Array<[number, number]> = [[0, 0]];
  for (let n = 1; stack.length; n++) {
    pace(ctx, n);
    const [i, j] = stack.pop()!;
    const key = `${i},${j}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (i === a.length && j === b.length) return true;
    const ta = a[i];
    const tb = b[j];
    if (ta?.star) stack.push([i + 1, j]);
    if (tb?.star) stack.push([i, j + 1]);
    if (ta && tb && overlap(ta, tb)) stack.push([ta.star ? i : i + 1, tb.star ? j : j + 1]);
  }
  return false;
}

/** regex.globs_match: do two glob-like regular expressions match at least one common string? */
export const register: Record<string, Builtin> = {
  'regex.globs_match': { arity: 2, fn: (a, ctx) => intersects(parse(str('regex.globs_match', a, 0)), parse(str('regex.globs_match', a, 1)), ctx) },
};
