import type { Value } from '../value.js';
import { arr, int } from './operands.js';
import type { Builtin } from './types.js';

/** Arrays: concat, slice, reverse, flatten. */
export const register: Record<string, Builtin> = {
  'array.concat': { arity: 2, fn: (a) => [...arr('array.concat', a, 0), ...arr('array.concat', a, 1)] },
  'array.slice': {
    arity: 3,
    fn: (a) => {
      const xs = arr('array.slice', a, 0);
      let s = int('array.slice', a, 1);
      let e = int('array.slice', a, 2);
      if (s < 0) s = 0;
      if (e > xs.length) e = xs.length;
      if (s > e) return [];
      return xs.slice(s, e);
    },
  },
  'array.reverse': { arity: 1, fn: (a) => [...arr('array.reverse', a, 0)].reverse() },
  'array.flatten': {
    arity: 1,
    fn: (a) => {
      const out: Value[] = [];
      for (const x of arr('array.flatten', a, 0)) Array.isArray(x) ? out.push(...x) : out.push(x);
      return out;
    },
  },
};
