import { isNumber, normNum, type Value } from '../value.js';
import { num } from './operands.js';
import { BuiltinError, builtinErr, typeErr, type Builtin } from './types.js';

function isIntNum(n: number | bigint): boolean {
  return typeof n === 'bigint' || Number.isInteger(n);
}

function range(name: string, a: Value[], step: number | bigint): Value[] {
  const x = num(name, a, 0);
  const y = num(name, a, 1);
  if (!isIntNum(x)) throw new BuiltinError('eval_type_error', `${name}: operand 1 must be integer number but got floating-point number`);
  if (!isIntNum(y)) throw new BuiltinError('eval_type_error', `${name}: operand 2 must be integer number but got floating-point number`);
  const s = Number(step);
  const out: Value[] = [];
  const from = Number(x);
  const to = Number(y);
  if (Math.abs(to - from) / s > 1e7) throw builtinErr(name, 'range too large');
  if (from <= to) for (let i = from; i <= to; i += s) out.push(i);
  else for (let i = from; i >= to; i -= s) out.push(i);
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
      const n = num('abs', a, 0);
      return typeof n === 'bigint' ? normNum(n < 0n ? -n : n) : Math.abs(n);
    },
  },
  round: { arity: 1, fn: (a) => { const n = num('round', a, 0); return typeof n === 'bigint' ? n : roundHalfAway(n); } },
  ceil: { arity: 1, fn: (a) => { const n = num('ceil', a, 0); return typeof n === 'bigint' ? n : Math.ceil(n) || 0; } },
  floor: { arity: 1, fn: (a) => { const n = num('floor', a, 0); return typeof n === 'bigint' ? n : Math.floor(n); } },
  'numbers.range': { arity: 2, fn: (a) => range('numbers.range', a, 1) },
  'numbers.range_step': {
    arity: 3,
    fn: (a) => {
      const s = num('numbers.range_step', a, 2);
      if (!isIntNum(s)) throw builtinErr('numbers.range_step', 'operand 3 must be integer number but got floating-point number');
      if (Number(s) <= 0) throw builtinErr('numbers.range_step', 'step must be a positive integer');
      return range('numbers.range_step', a, s);
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
