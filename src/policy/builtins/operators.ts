import { compare, decOfNum, equal, isNumber, isObject, normNum, objEntries, objGet, RDecimal, RSet, type Value } from '../value.js';

import { add, decDiv, decInt, decQuo, exactNum, isIntegral, mul, type Num,sub, toBig } from './operands.js';
import { type Builtin,BuiltinError, typeErr } from './types.js';

const cmp = (f: (c: number) => boolean): Builtin => ({ arity: 2, fn: (a) => f(compare(a[0]!, a[1]!)) });

function arith(name: string, op: (x: Num, y: Num) => Value, setOp?: (x: RSet, y: RSet) => Value): Builtin {
  return {
    arity: 2,
    fn: (a) => {
      if (setOp && a[0] instanceof RSet && a[1] instanceof RSet) return setOp(a[0], a[1]);
      if (setOp && (a[0] instanceof RSet || a[1] instanceof RSet)) {
        // the first operand decides what the second must be
        if (a[0] instanceof RSet) throw typeErr(name, 2, 'set', a[1]!);
        throw typeErr(name, isNumber(a[0]!) ? 2 : 1, isNumber(a[0]!) ? 'number' : 'set', isNumber(a[0]!) ? a[1]! : a[0]!);
      }
      return op(exactNum(name, a, 0), exactNum(name, a, 1));
    },
  };
}

/** Operators: comparison, arithmetic and set algebra behind infix syntax. */
export const register: Record<string, Builtin> = {
  equal: { arity: 2, fn: (a) => equal(a[0]!, a[1]!) },
  neq: { arity: 2, fn: (a) => !equal(a[0]!, a[1]!) },
  lt: cmp((c) => c < 0),
  lte: cmp((c) => c <= 0),
  gt: cmp((c) => c > 0),
  gte: cmp((c) => c >= 0),
  plus: arith('plus', add),
  minus: arith('minus', sub, (x, y) => new RSet(x.values().filter((v) => !y.has(v)))),
  mul: arith('mul', mul),
  div: arith('div', (x, y) => {
    if (x instanceof RDecimal || y instanceof RDecimal) {
      // a decimal is never zero
      if (y === 0) throw new BuiltinError('eval_builtin_error', 'div: divide by zero');
      return decQuo(decOfNum(x), decOfNum(y));
    }
    if (Number(y) === 0) throw new BuiltinError('eval_builtin_error', 'div: divide by zero');
    if ((typeof x === 'bigint' || typeof y === 'bigint') && Number.isInteger(Number(x)) && Number.isInteger(Number(y))) {
      const X = toBig(x);
      const Y = toBig(y);
      if (X % Y === 0n) return normNum(X / Y);
    }
    if (typeof x === 'number' && typeof y === 'number' && (!Number.isInteger(x) || !Number.isInteger(y))) return decDiv(x, y);
    return Number(x) / Number(y);
  }),
  rem: arith('rem', (x, y) => {
    if (x instanceof RDecimal || y instanceof RDecimal) {
      if (!isIntegral(x) || !isIntegral(y)) throw new BuiltinError('eval_builtin_error', 'rem: modulo on floating-point number');
      if (y === 0) throw new BuiltinError('eval_builtin_error', 'rem: modulo by zero');
      return normNum(decInt('rem', decOfNum(x)) % decInt('rem', decOfNum(y)));
    }
    if (!Number.isInteger(Number(x)) || !Number.isInteger(Number(y))) throw new BuiltinError('eval_builtin_error', 'rem: modulo on floating-point number');
    if (Number(y) === 0) throw new BuiltinError('eval_builtin_error', 'rem: modulo by zero');
    if (typeof x === 'bigint' || typeof y === 'bigint') return normNum(toBig(x) % toBig(y));
    const r = x % y;
    return Object.is(r, -0) ? 0 : r;
  }),
  and: {
    arity: 2,
    fn: (a) => {
      if (!(a[0] instanceof RSet)) throw typeErr('and', 1, 'set', a[0]!);
      if (!(a[1] instanceof RSet)) throw typeErr('and', 2, 'set', a[1]!);
      const y = a[1];
      return new RSet(a[0].values().filter((v) => y.has(v)));
    },
  },
  or: {
    arity: 2,
    fn: (a) => {
      if (!(a[0] instanceof RSet)) throw typeErr('or', 1, 'set', a[0]!);
      if (!(a[1] instanceof RSet)) throw typeErr('or', 2, 'set', a[1]!);
      return new RSet([...a[0].values(), ...a[1].values()]);
    },
  },
  'internal.member_2': {
    arity: 2,
    fn: (a) => {
      const [x, c] = a;
      if (Array.isArray(c)) return c.some((v) => equal(v, x!));
      if (c instanceof RSet) return c.has(x!);
      if (isObject(c)) return objEntries(c).some((e) => equal(e[1], x!));
      return false;
    },
  },
  'internal.member_3': {
    arity: 3,
    fn: (a) => {
      const [k, v, c] = a;
      if (Array.isArray(c)) return typeof k === 'number' && Number.isInteger(k) && k >= 0 && k < c.length && equal(c[k]!, v!);
      if (isObject(c)) {
        const got = objGet(c, k!);
        return got !== undefined && equal(got, v!);
      }
      return false;
    },
  },
};
