import { RSet, type Value } from '../value.js';

import { capElements, pace } from './limits.js';
import { set } from './operands.js';
import { type Builtin,typeErr } from './types.js';

function setOfSets(name: string, a: Value[]): RSet[] {
  const s = set(name, a, 0);
  for (const x of s.values()) if (!(x instanceof RSet)) throw typeErr(name, 1, 'set of sets', a[0]!);
  return s.values() as RSet[];
}

/** Sets: n-ary intersection and union. */
export const register: Record<string, Builtin> = {
  intersection: {
    arity: 1,
    fn: (a, ctx) => {
      const ss = setOfSets('intersection', a);
      if (!ss.length) return new RSet();
      let n = 0;
      return new RSet(ss[0]!.values().filter((v) => ss.every((s) => (pace(ctx, ++n), s.has(v)))));
    },
  },
  union: {
    arity: 1,
    fn: (a, ctx) => {
      const out = new RSet();
      let n = 0;
      for (const s of setOfSets('union', a)) {
        capElements('union', out.size + s.size, ctx);
        for (const v of s.values()) {
          pace(ctx, ++n);
          out.add(v);
        }
      }
      return out;
    },
  },
};
