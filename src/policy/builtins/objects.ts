import { equal, isObject, ObjectBuilder, objEntries, objGet, type PlainObject, type RObject, RSet, type Value } from '../value.js';

import { Meter } from './limits.js';
import { obj } from './operands.js';
import { type Builtin,typeErr } from './types.js';

/** union merges b into a recursively, b winning on conflicts (as object.union); a meter paces the copying. */
export function unionObjects(a: PlainObject | RObject, b: PlainObject | RObject, m?: Meter): PlainObject | RObject {
  const out = new ObjectBuilder();
  for (const [k, v] of objEntries(a)) {
    m?.step();
    out.set(k, v);
  }
  for (const [k, v] of objEntries(b)) {
    m?.step();
    const prev = objGet(a, k);
    out.set(k, prev !== undefined && isObject(prev) && isObject(v) ? unionObjects(prev, v, m) : v);
  }
  return out.build();
}

function keyList(name: string, a: Value[], i: number): Value[] {
  const v = a[i]!;
  if (Array.isArray(v)) return v;
  if (v instanceof RSet) return v.values();
  if (isObject(v)) return objEntries(v).map((e) => e[0]);
  throw typeErr(name, i + 1, 'one of {object, set, array}', v);
}

/** isSubset tells whether sub is contained in sup (objects recursively, arrays as contiguous runs, sets). */
function isSubset(sup: Value, sub: Value, m: Meter): boolean {
  m.step();
  if (isObject(sup) && isObject(sub)) {
    for (const [k, v] of objEntries(sub)) {
      const s = objGet(sup, k);
      if (s === undefined) return false;
      if (isObject(s) && isObject(v)) {
        if (!isSubset(s, v, m)) return false;
      } else if ((s instanceof RSet && v instanceof RSet) || (Array.isArray(s) && Array.isArray(v))) {
        if (!isSubset(s, v, m)) return false;
      } else if (!equal(s, v)) return false;
    }
    return true;
  }
  if (sup instanceof RSet && sub instanceof RSet) return sub.values().every((v) => (m.step(), sup.has(v)));
  if (Array.isArray(sup) && Array.isArray(sub)) {
    if (!sub.length) return true;
    for (let i = 0; i + sub.length <= sup.length; i++) if (sub.every((v, j) => (m.step(), equal(sup[i + j]!, v)))) return true;
    return false;
  }
  if (sup instanceof RSet && Array.isArray(sub)) return sub.every((v) => (m.step(), sup.has(v)));
  if (Array.isArray(sup) && sub instanceof RSet) return sub.values().every((v) => sup.some((x) => (m.step(), equal(x, v))));
  return false;
}

/** Objects: get, keys, union, remove, filter, subset. */
export const register: Record<string, Builtin> = {
  'object.get': {
    arity: 3,
    fn: (a) => {
      const o = obj('object.get', a, 0);
      const key = a[1]!;
      if (Array.isArray(key)) {
        let cur: Value = o;
        for (const k of key) {
          if (isObject(cur)) {
            const n = objGet(cur, k);
            if (n === undefined) return a[2]!;
            cur = n;
          } else if (Array.isArray(cur)) {
            if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k >= cur.length) return a[2]!;
            cur = cur[k]!;
          } else if (cur instanceof RSet) {
            if (!cur.has(k)) return a[2]!;
            cur = k;
          } else return a[2]!;
        }
        return cur;
      }
      const v = objGet(o, key);
      return v === undefined ? a[2]! : v;
    },
  },
  'object.keys': { arity: 1, fn: (a) => new RSet(objEntries(obj('object.keys', a, 0)).map((e) => e[0])) },
  'object.union': { arity: 2, fn: (a, ctx) => unionObjects(obj('object.union', a, 0), obj('object.union', a, 1), new Meter('object.union', ctx)) },
  'object.union_n': {
    arity: 1,
    fn: (a, ctx) => {
      const xs = a[0]!;
      if (!Array.isArray(xs)) throw typeErr('object.union_n', 1, 'array', xs);
      let out: PlainObject | RObject = Object.create(null) as PlainObject;
      const m = new Meter('object.union_n', ctx);
      for (const x of xs) {
        if (!isObject(x)) throw typeErr('object.union_n', 1, 'array of objects', xs);
        out = unionObjects(out, x, m);
      }
      return out;
    },
  },
  'object.remove': {
    arity: 2,
    fn: (a, ctx) => {
      const o = obj('object.remove', a, 0);
      const keys = new RSet(keyList('object.remove', a, 1));
      const out = new ObjectBuilder();
      const m = new Meter('object.remove', ctx);
      for (const [k, v] of objEntries(o)) if ((m.step(), !keys.has(k))) out.set(k, v);
      return out.build();
    },
  },
  'object.filter': {
    arity: 2,
    fn: (a, ctx) => {
      const o = obj('object.filter', a, 0);
      const keys = new RSet(keyList('object.filter', a, 1));
      const out = new ObjectBuilder();
      const m = new Meter('object.filter', ctx);
      for (const [k, v] of objEntries(o)) if ((m.step(), keys.has(k))) out.set(k, v);
      return out.build();
    },
  },
  'object.subset': {
    arity: 2,
    fn: (a, ctx) => {
      const [sup, sub] = a;
      const ok = (v: Value): boolean => isObject(v) || v instanceof RSet || Array.isArray(v);
      if (!ok(sup!)) throw typeErr('object.subset', 1, 'one of {object, set, array}', sup!);
      if (!ok(sub!)) throw typeErr('object.subset', 2, 'one of {object, set, array}', sub!);
      if (isObject(sup!) !== isObject(sub!)) {
        if (isObject(sup!)) throw typeErr('object.subset', 2, 'object', sub!);
        throw typeErr('object.subset', 1, isObject(sub!) ? 'object' : 'one of {object, set, array}', sup!);
      }
      return isSubset(sup!, sub!, new Meter('object.subset', ctx));
    },
  },
};
