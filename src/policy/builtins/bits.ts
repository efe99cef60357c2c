import { normNum, RDecimal, type Value } from '../value.js';

import { decInt, exactNum } from './operands.js';
import { type Builtin,BuiltinError } from './types.js';

function bigInt(name: string, a: Value[], i: number): bigint {
  const n = exactNum(name, a, i);
  if (n instanceof RDecimal) {
    if (n.e < 0) throw new BuiltinError('eval_type_error', `${name}: operand ${i + 1} must be integer number but got floating-point number`);
    return decInt(name, n);
  }
  if (typeof n === 'number' && !Number.isInteger(n)) throw new BuiltinError('eval_type_error', `${name}: operand ${i + 1} must be integer number but got floating-point number`);
  return BigInt(n);
}

const bin = (name: string, f: (x: bigint, y: bigint) => bigint): Builtin => ({ arity: 2, fn: (a) => normNum(f(bigInt(name, a, 0), bigInt(name, a, 1))) });

/** Bits: integer bitwise operations on arbitrary-size integers. */
export const register: Record<string, Builtin> = {
  'bits.and': bin('bits.and', (x, y) => x & y),
  'bits.or': bin('bits.or', (x, y) => x | y),
  'bits.xor': bin('bits.xor', (x, y) => x ^ y),
  'bits.negate': { arity: 1, fn: (a) => normNum(~bigInt('bits.negate', a, 0)) },
  'bits.lsh': bin('bits.lsh', (x, y) => {
    if (y < 0n) throw new BuiltinError('eval_type_error', 'bits.lsh: operand 2 must be an unsigned integer number but got a negative integer');
    return x << y;
  }),
  'bits.rsh': bin('bits.rsh', (x, y) => {
    if (y < 0n) throw new BuiltinError('eval_type_error', 'bits.rsh: operand 2 must be an unsigned integer number but got a negative integer');
    return x >> y;
  }),
};
