import { RObject, RSet, isNumber, isObject, normNum, type PlainObject, type Value } from '../value.js';
import { BuiltinError, typeErr } from './types.js';

/** Shared operand checks, so every built-in's type error reads the same (as OPA's do). */
export function str(name: string, a: Value[], i: number): string {
  const v = a[i]!;
  if (typeof v !== 'string') throw typeErr(name, i + 1, 'string', v);
  return v;
}

export function num(name: string, a: Value[], i: number): number | bigint {
  const v = a[i]!;
  if (!isNumber(v)) throw typeErr(name, i + 1, 'number', v);
  return v;
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

const isInt = (n: number | bigint): boolean => typeof n === 'bigint' || Number.isInteger(n);

/**
 * Decimal semantics for floats: a float stands for the decimal its shortest round-trip text denotes
 * (0.1 is 1/10, as OPA's parsed json.Number is). Sums, differences and products of non-integers are
 * computed exactly on those decimals and then rounded once to the nearest float, so 0.1 + 0.2 is
 * 0.3 and no digits are cut off; integers stay exact (bigint beyond 2^53).
 */
export function add(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a + b;
    if (Number.isInteger(a) && Number.isInteger(b)) {
      if (Number.isSafeInteger(r)) return r;
    } else return decOp(a, b, 0, r);
  }
  if (isInt(a) && isInt(b)) return normNum(toBig(a) + toBig(b));
  return Number(a) + Number(b);
}

export function sub(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a - b;
    if (Number.isInteger(a) && Number.isInteger(b)) {
      if (Number.isSafeInteger(r)) return r;
    } else return decOp(a, b, 1, r);
  }
  if (isInt(a) && isInt(b)) return normNum(toBig(a) - toBig(b));
  return Number(a) - Number(b);
}

export function mul(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a * b;
    if (Number.isInteger(a) && Number.isInteger(b)) {
      if (Number.isSafeInteger(r)) return r;
    } else return decOp(a, b, 2, r);
  }
  if (isInt(a) && isInt(b)) return normNum(toBig(a) * toBig(b));
  return Number(a) * Number(b);
}

/** Dec is an exact decimal c × 10^e. */
interface Dec {
  c: bigint;
  e: number;
}

/** decOf reads a finite float as the decimal of its shortest round-trip text. */
export function decOf(n: number): Dec {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/.exec(String(n))!;
  const frac = m[3] ?? '';
  const c = BigInt(m[1]! + m[2]! + frac);
  return { c, e: Number(m[4] ?? 0) - frac.length };
}

/** decText prints an exact decimal in plain or exponent notation (for Number() to round once). */
function decText(d: Dec): string {
  return `${d.c}e${d.e}`;
}

/** decOp computes a + b (0), a - b (1) or a × b (2) exactly on decimals; r is the float result. */
function decOp(a: number, b: number, op: 0 | 1 | 2, r: number): number {
  if (!Number.isFinite(r) || !Number.isFinite(a) || !Number.isFinite(b)) return r;
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
  return Object.is(v, -0) ? 0 : v;
}

/** decDiv divides floats of which one is not an integer as decimals (0.3 / 0.1 is 3), rounding once. */
export function decDiv(a: number, b: number): number {
  const r = a / b;
  if (!Number.isFinite(r) || !Number.isFinite(a) || !Number.isFinite(b) || r === 0) return r;
  const x = decOf(a);
  const y = decOf(b);
  // 40 digits beyond the divisor's length: far more than a float holds
  const p = 40 + y.c.toString().length;
  const q = (x.c * 10n ** BigInt(p)) / y.c;
  const v = Number(`${q}e${x.e - y.e - p}`);
  return Object.is(v, -0) ? 0 : v;
}
