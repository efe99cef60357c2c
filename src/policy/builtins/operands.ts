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

/** Exact integer arithmetic where the operands are integers; floats otherwise (as OPA's big numbers mostly behave). */
export function add(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a + b;
    if (Number.isSafeInteger(r) || !Number.isInteger(a) || !Number.isInteger(b)) return fixFloat(r, a, b);
  }
  if (isInt(a) && isInt(b)) return normNum(toBig(a) + toBig(b));
  return Number(a) + Number(b);
}

export function sub(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a - b;
    if (Number.isSafeInteger(r) || !Number.isInteger(a) || !Number.isInteger(b)) return fixFloat(r, a, b);
  }
  if (isInt(a) && isInt(b)) return normNum(toBig(a) - toBig(b));
  return Number(a) - Number(b);
}

export function mul(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a * b;
    if (Number.isSafeInteger(r) || !Number.isInteger(a) || !Number.isInteger(b)) return fixFloat(r, a, b);
  }
  if (isInt(a) && isInt(b)) return normNum(toBig(a) * toBig(b));
  return Number(a) * Number(b);
}

/**
 * fixFloat rounds away binary noise (0.1 + 0.2) the way OPA's decimal arithmetic would not show it:
 * the result is printed with at most 15 significant digits when the operands are short decimals.
 */
function fixFloat(r: number, a: number, b: number): number {
  if (Number.isInteger(r) || !Number.isFinite(r)) return r;
  if (Number.isInteger(a) && Number.isInteger(b)) return r;
  const p = Number(r.toPrecision(15));
  return p;
}
