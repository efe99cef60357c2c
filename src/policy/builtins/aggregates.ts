import { RSet, compare, isNumber, isObject, objSize, type Value } from '../value.js';
import { add, elems, mul, type Num } from './operands.js';
import { typeErr, type Builtin } from './types.js';

function numbers(name: string, a: Value[]): Num[] {
  const xs = elems(name, a, 0);
  for (const x of xs) if (!isNumber(x)) throw typeErr(name, 1, 'one of {array, set} of numbers', a[0]!);
  return xs as Num[];
}

/** Aggregates: count, sum, product, max, min, sort. */
export const register: Record<string, Builtin> = {
  count: {
    arity: 1,
    fn: (a) => {
      const v = a[0]!;
      if (typeof v === 'string') return [...v].length;
      if (Array.isArray(v)) return v.length;
      if (v instanceof RSet) return v.size;
      if (isObject(v)) return objSize(v);
      throw typeErr('count', 1, 'one of {array, object, set, string}', v);
    },
  },
  sum: { arity: 1, fn: (a) => numbers('sum', a).reduce<Num>((s, x) => add(s, x), 0) },
  product: { arity: 1, fn: (a) => numbers('product', a).reduce<Num>((s, x) => mul(s, x), 1) },
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
  sort: { arity: 1, fn: (a) => [...elems('sort', a, 0)].sort(compare) },
};
