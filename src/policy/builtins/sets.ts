import { RSet, type Value } from '../value.js';
import { set } from './operands.js';
import { typeErr, type Builtin } from './types.js';

function setOfSets(name: string, a: Value[]): RSet[] {
  const s = set(name, a, 0);
  for (const x of s.values()) if (!(x instanceof RSet)) throw typeErr(name, 1, 'set of sets', a[0]!);
  return s.values() as RSet[];
}

/** Sets: n-ary intersection and union. */
export const register: Record<string, Builtin> = {
  intersection: {
    arity: 1,
    fn: (a) => {
      const ss = setOfSets('intersection', a);
      if (!ss.length) return new RSet();
      return new RSet(ss[0]!.values().filter((v) => ss.every((s) => s.has(v))));
    },
  },
  union: {
    arity: 1,
    fn: (a) => {
      const out = new RSet();
      for (const s of setOfSets('union', a)) for (const v of s.values()) out.add(v);
      return out;
    },
  },
};
