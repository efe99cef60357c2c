import type { Value } from '../value.js';

import { capElements, pace } from './limits.js';
import { arr, int } from './operands.js';
import type { Builtin } from './types.js';

/** Arrays: concat, slice, reverse, flatten. */
export const register: Record<string, Builtin> = {
  'array.concat': {
    arity: 2,
    fn: (a, ctx) => {
      const x = arr('array.concat', a, 0);
      const y = arr('array.concat', a, 1);
      capElements('array.concat', x.length + y.length, ctx);
      return x.concat(y);
    },
  },
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
    fn: (a, ctx) => {
      const out: Value[] = [];
      const xs = arr('array.flatten', a, 0);
      for (let i = 0; i < xs.length; i++) {
        const x = xs[i]!;
        pace(ctx, i + 1);
        if (Array.isArray(x)) {
          capElements('array.flatten', out.length + x.length, ctx);
          for (const y of x) out.push(y);
        } else out.push(x);
      }
      return out;
    },
  },
};
