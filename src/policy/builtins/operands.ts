import { type Dec, decFrom, decOf, decOfNum, decToFloat, isNumber, isObject, normNum, type PlainObject, RDecimal, type RObject, RSet, type Value } from '../value.js';

export { decOf };

/** Num is any Rego number: a float, a bigint beyond 2^53, or an exact decimal a float cannot hold. */
export type Num = number | bigint | RDecimal;
import { BuiltinError, typeErr } from './types.js';

/** Shared operand checks, so every built-in's type error reads the same (as OPA's do). */
export function str(name: string, a: Value[], i: number): string {
  const v = a[i]!;
  if (typeof v !== 'string') throw typeErr(name, i + 1, 'string', v);
  return v;
}

/** num reads a number operand; a decimal a float cannot hold becomes the nearest float (as OPA converts for most built-ins). */
export function num(name: string, a: Value[], i: number): number | bigint {
  const v = a[i]!;
  if (!isNumber(v)) throw typeErr(name, i + 1, 'number', v);
  return v instanceof RDecimal ? decToFloat(v) : v;
}

/** exactNum reads a number operand keeping decimals exact. */
export function exactNum(name: string, a: Value[], i: number): Num {
  const v = a[i]!;
  if (!isNumber(v)) throw typeErr(name, i + 1, 'number', v);
  return v;
}

/** decInt is the integer value of an integral decimal (bounded, so 1e999999999 cannot exhaust memory). */
export function decInt(name: string, d: Dec): bigint {
  if (d.e < 0) throw new BuiltinError('eval_type_error', `${name}: operand must be integer number but got floating-point number`);
  if (d.e > 100000) throw new BuiltinError('eval_builtin_error', `${name}: number too large`);
  return d.c * 10n ** BigInt(d.e);
}

/** isIntegral tells whether a number (float, bigint or decimal) is an integer. */
export function isIntegral(n: Num): boolean {
  return typeof n === 'bigint' || (n instanceof RDecimal ? n.e >= 0 : Number.isInteger(n));
}

export function int(name: string, a: Value[], i: number): number {
  const v = num(name, a, i);
  if (typeof v === 'bigint') return Number(v);
  if (!Number.isInteger(v)) throw new BuiltinError('eval_type_error', `${name}: operand ${i + 1} must be integer number but got floating-point number`);
  return v;
}

export function arr(name: string, a: Value[], i: number): Value[] {
  const v = a[i]!;
  if (!Array.isArray(v)) throw typeErr(name, i + 1, 'array', v);
  return v;
}

export function set(name: string, a: Value[], i: number): RSet {
  const v = a[i]!;
  if (!(v instanceof RSet)) throw typeErr(name, i + 1, 'set', v);
  return v;
}

export function obj(name: string, a: Value[], i: number): PlainObject | RObject {
  const v = a[i]!;
  if (!isObject(v)) throw typeErr(name, i + 1, 'object', v);
  return v;
}

export function bool(name: string, a: Value[], i: number): boolean {
  const v = a[i]!;
  if (typeof v !== 'boolean') throw typeErr(name, i + 1, 'boolean', v);
  return v;
}

/** collection accepts an array or a set and returns its elements. */
export function elems(name: string, a: Value[], i: number, want = 'one of {array, set}'): Value[] {
  const v = a[i]!;
  if (Array.isArray(v)) return v;
  if (v instanceof RSet) return v.values();
  throw typeErr(name, i + 1, want, v);
}

/** toBig converts an integral number to bigint. */
export function toBig(n: number | bigint): bigint {
  return typeof n === 'bigint' ? n : BigInt(n);
}

const isInt = (n: Num): n is number | bigint => typeof n === 'bigint' || Number.isInteger(n);

/**
 * Decimal semantics for floats: a float stands for the decimal its shortest round-trip text denotes
 * (0.1 is 1/10, as OPA's parsed json.Number is). Sums, differences and products of non-integers are
 * computed exactly on those decimals and then rounded once to the nearest float, so 0.1 + 0.2 is
 * 0.3 and no digits are cut off; integers stay exact (bigint beyond 2^53).
 */
export function add(a: Num, b: Num): Num {
  if (a instanceof RDecimal || b instanceof RDecimal) return decArith(decOfNum(a), decOfNum(b), 0);
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a + b;
    if (Number.isInteger(a) && Number.isInteger(b)) {
      if (Number.isSafeInteger(r)) return r;
    } else return decOp(a, b, 0, r);
  }
  if (isInt(a) && isInt(b)) return normNum(toBig(a) + toBig(b));
  return Number(a) + Number(b);
}

export function sub(a: Num, b: Num): Num {
  if (a instanceof RDecimal || b instanceof RDecimal) return decArith(decOfNum(a), decOfNum(b), 1);
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a - b;
    if (Number.isInteger(a) && Number.isInteger(b)) {
      if (Number.isSafeInteger(r)) return r;
    } else return decOp(a, b, 1, r);
  }
  if (isInt(a) && isInt(b)) return normNum(toBig(a) - toBig(b));
  return Number(a) - Number(b);
}

export function mul(a: Num, b: Num): Num {
  if (a instanceof RDecimal || b instanceof RDecimal) return decArith(decOfNum(a), decOfNum(b), 2);
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a * b;
    if (Number.isInteger(a) && Number.isInteger(b)) {
      if (Number.isSafeInteger(r)) return r;
    } else return decOp(a, b, 2, r);
  }
  if (isInt(a) && isInt(b)) return normNum(toBig(a) * toBig(b));
  return Number(a) * Number(b);
}

/**
 * decArith computes x + y (0), x - y (1) or x × y (2) exactly when a decimal is involved; the result is a
 * float, integer or decimal as decFrom decides.
 */
function decArith(x: Dec, y: Dec, op: 0 | 1 | 2): Num {
  if (op === 2) return decFrom(x.c * y.c, x.e + y.e);
  const yc = op === 0 ? y.c : -y.c;
  if (x.c === 0n) return decFrom(yc, y.e);
  if (yc === 0n) return decFrom(x.c, x.e);
  // an exponent gap beyond any sensible precision: the smaller operand cannot show in the result's digits
  const mag = (d: Dec): number => (d.c < 0n ? -d.c : d.c).toString().length + d.e;
  if (Math.abs(x.e - y.e) > 4000) return mag(x) >= mag(y) ? decFrom(x.c, x.e) : decFrom(yc, y.e);
  const e = Math.min(x.e, y.e);
  return decFrom(x.c * 10n ** BigInt(x.e - e) + yc * 10n ** BigInt(y.e - e), e);
}

/**
 * decQuo divides exactly when the quotient terminates within 40 digits beyond the divisor's length;
 * else it is the nearest float, or, beyond float range, a decimal of 20 significant digits.
 */
export function decQuo(x: Dec, y: Dec): Num {
  const p = 40 + (y.c < 0n ? -y.c : y.c).toString().length;
  const n = x.c * 10n ** BigInt(p);
  let q = n / y.c;
  const e = x.e - y.e - p;
  if (n % y.c === 0n) return decFrom(q, e);
  const f = Number(`${q}e${e}`);
  if (Number.isFinite(f) && Math.abs(f) >= 2.2250738585072014e-308) return f;
  const ds = (q < 0n ? -q : q).toString().length;
  if (ds <= 20) return decFrom(q, e);
  const cut = 10n ** BigInt(ds - 20);
  const r = q % cut;
  q /= cut;
  if ((r < 0n ? -r : r) * 2n >= cut) q += q < 0n ? -1n : 1n;
  return decFrom(q, e + ds - 20);
}

/** decText prints an exact decimal in plain or exponent notation (for Number() to round once). */
function decText(d: Dec): string {
  return `${d.c}e${d.e}`;
}

/** decOp computes a + b (0), a - b (1) or a × b (2) exactly on decimals; r is the float result. */
function decOp(a: number, b: number, op: 0 | 1 | 2, r: number): number | RDecimal {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return r;
  const x = decOf(a);
  const y = decOf(b);
  let out: Dec;
  if (op === 2) out = { c: x.c * y.c, e: x.e + y.e };
  else {
    const e = Math.min(x.e, y.e);
    // keep the exponents' gap bounded: beyond float precision the float result is already exact enough
    if (Math.abs(x.e - y.e) > 400) return r;
    const xc = x.c * 10n ** BigInt(x.e - e);
    const yc = y.c * 10n ** BigInt(y.e - e);
    out = { c: op === 0 ? xc + yc : xc - yc, e };
  }
  const v = Number(decText(out));
  // beyond float range, or a nonzero result that underflows: keep it as a decimal
  if (!Number.isFinite(v) || (v === 0 && out.c !== 0n)) return decFrom(out.c, out.e) as number | RDecimal;
  return Object.is(v, -0) ? 0 : v;
}

/** decDiv divides floats of which one is not an integer as decimals (0.3 / 0.1 is 3), rounding once. */
export function decDiv(a: number, b: number): Num {
  const r = a / b;
  if (!Number.isFinite(a) || !Number.isFinite(b) || a === 0) return r;
  if (!Number.isFinite(r) || r === 0) return decQuo(decOf(a), decOf(b));
  const x = decOf(a);
  const y = decOf(b);
  // 40 digits beyond the divisor's length: far more than a float holds
  const p = 40 + y.c.toString().length;
  const q = (x.c * 10n ** BigInt(p)) / y.c;
  const v = Number(`${q}e${x.e - y.e - p}`);
  return Object.is(v, -0) ? 0 : v;
}
