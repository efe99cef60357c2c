import { isNumber, normNum, RDecimal, type Value } from '../value.js';

import { decInt, exactNum, num } from './operands.js';

/**
 * decRound rounds a decimal to an integer exactly: mode 0 half away from zero (Go's math.Round), 1 ceil,
 * 2 floor. An integral decimal is returned as it is.
 */
function decRound(d: RDecimal, mode: 0 | 1 | 2): Value {
  if (d.e >= 0) return d;
  if (d.e < -100000) return mode === 1 && d.c > 0n ? 1 : mode === 2 && d.c < 0n ? -1 : 0;
  const p = 10n ** BigInt(-d.e);
  let q = d.c / p; // toward zero
  const r = d.c % p; // same sign as c, never 0 (c has no trailing zeros and e < 0)
  if (mode === 0) {
    if ((r < 0n ? -r : r) * 2n >= p) q += d.c < 0n ? -1n : 1n;
  } else if (mode === 1 && r > 0n) q += 1n;
  else if (mode === 2 && r < 0n) q -= 1n;
  return normNum(q);
}

/** rangeEnd reads a range bound, exactly for integral decimals. */
function rangeEnd(name: string, a: Value[], i: number): number | bigint {
  const v = exactNum(name, a, i);
  if (v instanceof RDecimal) {
    if (v.e < 0) throw new BuiltinError('eval_type_error', `${name}: operand ${i + 1} must be integer number but got floating-point number`);
    return decInt(name, v);
  }
  return v;
}
import { capElements, pace } from './limits.js';
import { type Builtin, type BuiltinContext,builtinErr, BuiltinError, typeErr } from './types.js';

function isIntNum(n: number | bigint): boolean {
  return typeof n === 'bigint' || Number.isInteger(n);
}

function range(name: string, a: Value[], step: number | bigint, ctx: BuiltinContext): Value[] {
  const x = rangeEnd(name, a, 0);
  const y = rangeEnd(name, a, 1);
  if (!isIntNum(x)) throw new BuiltinError('eval_type_error', `${name}: operand 1 must be integer number but got floating-point number`);
  if (!isIntNum(y)) throw new BuiltinError('eval_type_error', `${name}: operand 2 must be integer number but got floating-point number`);
  const s = Number(step);
  const out: Value[] = [];
  if (typeof x === 'bigint' || typeof y === 'bigint' || !Number.isSafeInteger(x) || !Number.isSafeInteger(y)) {
    // beyond 2^53: count in bigints (a float's steps would stall)
    const X = BigInt(x);
    const Y = BigInt(y);
    const S = BigInt(step);
    const n = (X <= Y ? Y - X : X - Y) / S + 1n;
    capElements(name, n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n), ctx);
    let j = 0;
    const dir = X <= Y ? S : -S;
    for (let i = X; X <= Y ? i <= Y : i >= Y; i += dir) {
      pace(ctx, ++j);
      out.push(normNum(i));
    }
    return out;
  }
  const from = Number(x);
  const to = Number(y);
  capElements(name, Math.floor(Math.abs(to - from) / s) + 1, ctx);
  let j = 0;
  const dir = from <= to ? s : -s;
  for (let i = from; from <= to ? i <= to : i >= to; i += dir) {
    pace(ctx, ++j);
    out.push(i);
  }
  return out;
}

/** roundHalfAway rounds like Go's math.Round (half away from zero). */
function roundHalfAway(n: number): number {
  const r = Math.sign(n) * Math.round(Math.abs(n));
  return Object.is(r, -0) ? 0 : r;
}

/** Numbers: rounding, abs, ranges, random integers. */
export const register: Record<string, Builtin> = {
  abs: {
    arity: 1,
    fn: (a) => {
      const v = exactNum('abs', a, 0);
      if (v instanceof RDecimal) return v.c < 0n ? new RDecimal(-v.c, v.e, v.text.replace(/^-/, '')) : v;
      const n = v;
      return typeof n === 'bigint' ? normNum(n < 0n ? -n : n) : Math.abs(n);
    },
  },
  round: { arity: 1, fn: (a) => { const v = exactNum('round', a, 0); if (v instanceof RDecimal) return decRound(v, 0); const n = v; return typeof n === 'bigint' ? n : roundHalfAway(n); } },
  ceil: { arity: 1, fn: (a) => { const v = exactNum('ceil', a, 0); if (v instanceof RDecimal) return decRound(v, 1); const n = v; return typeof n === 'bigint' ? n : Math.ceil(n) || 0; } },
  floor: { arity: 1, fn: (a) => { const v = exactNum('floor', a, 0); if (v instanceof RDecimal) return decRound(v, 2); const n = v; return typeof n === 'bigint' ? n : Math.floor(n); } },
  'numbers.range': { arity: 2, fn: (a, ctx) => range('numbers.range', a, 1, ctx) },
  'numbers.range_step': {
    arity: 3,
    fn: (a, ctx) => {
      const s = num('numbers.range_step', a, 2);
      if (!isIntNum(s)) throw builtinErr('numbers.range_step', 'operand 3 must be integer number but got floating-point number');
      if (Number(s) <= 0) throw builtinErr('numbers.range_step', 'step must be a positive integer');
      return range('numbers.range_step', a, s, ctx);
    },
  },
  'rand.intn': {
    arity: 2,
    sideEffect: true,
    fn: (a, ctx) => {
      const seed = a[0]!;
      if (typeof seed !== 'string') throw typeErr('rand.intn', 1, 'string', seed);
      const n = num('rand.intn', a, 1);
      if (!isNumber(n)) throw typeErr('rand.intn', 2, 'number', n);
      const key = `rand.intn:${seed}:${n}`;
      const hit = ctx.memo.get(key);
      if (hit !== undefined) return hit;
      const m = Math.abs(Math.trunc(Number(n)));
      const v = m === 0 ? 0 : Math.floor(Math.random() * m);
      ctx.memo.set(key, v);
      return v;
    },
  },
};
void BuiltinError;
