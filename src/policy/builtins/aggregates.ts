import { compare, isNumber, isObject, objSize, RSet, type Value } from '../value.js';

import { pace } from './limits.js';
import { add, elems, mul, type Num } from './operands.js';
import { type Builtin, type BuiltinContext,typeErr } from './types.js';

function numbers(name: string, a: Value[], ctx: BuiltinContext): Num[] {
  const xs = elems(name, a, 0);
  for (let i = 0; i < xs.length; i++) {
    pace(ctx, i + 1);
    if (!isNumber(xs[i]!)) throw typeErr(name, 1, 'one of {array, set} of numbers', a[0]!);
  }
  return xs as Num[];
}

/** countCodePoints counts a string's code points without building an array of them. */
function countCodePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // a high surrogate followed by a low one is one code point
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Aggregates: count, sum, product, max, min, sort. */
export const register: Record<string, Builtin> = {
  count: {
    arity: 1,
    fn: (a) => {
      const v = a[0]!;
      if (typeof v === 'string') return countCodePoints(v);
      if (Array.isArray(v)) return v.length;
      if (v instanceof RSet) return v.size;
      if (isObject(v)) return objSize(v);
      throw typeErr('count', 1, 'one of {array, object, set, string}', v);
    },
  },
  sum: { arity: 1, fn: (a, ctx) => numbers('sum', a, ctx).reduce<Num>((s, x) => add(s, x), 0) },
  product: { arity: 1, fn: (a, ctx) => numbers('product', a, ctx).reduce<Num>((s, x, i) => (pace(ctx, i + 1), mul(s, x)), 1) },
  max: {
    arity: 1,
    fn: (a) => {
      const xs = elems('max', a, 0);
      if (!xs.length) return undefined;
      return xs.reduce((m, x) => (compare(x, m) > 0 ? x : m));
    },
  },
  min: {
    arity: 1,
    fn: (a) => {
      const xs = elems('min', a, 0);
      if (!xs.length) return undefined;
      return xs.reduce((m, x) => (compare(x, m) < 0 ? x : m));
    },
  },
  sort: {
    arity: 1,
    fn: (a, ctx) => {
      let n = 0;
      return [...elems('sort', a, 0)].sort((x, y) => (pace(ctx, ++n), compare(x, y)));
    },
  },
};
