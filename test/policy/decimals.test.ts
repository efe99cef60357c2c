import { describe, expect, it } from 'vitest';

import { PolicyEngine, toJSON, type Value } from '../../src/policy/index.js';

const engine = new PolicyEngine();
function x(query: string): unknown {
  const rows = engine.evaluate(query);
  return rows.length ? toJSON(rows[0]!.bindings.x as Value) : undefined;
}

describe('decimal semantics of non-integer numbers', () => {
  it('adds, subtracts and multiplies the decimals, not their binary approximations', () => {
    expect(x('x := 0.1 + 0.2 == 0.3')).toBe(true);
    expect(x('x := 0.1 + 0.2')).toBe(0.3);
    expect(x('x := 0.3 - 0.1')).toBe(0.2);
    expect(x('x := 0.1 * 3')).toBe(0.3);
    expect(x('x := 1.1 * 1.1')).toBe(1.21);
    expect(x('x := 0.07 * 100')).toBe(7);
  });

  it('keeps every digit a float holds (no rounding to 15 digits)', () => {
    expect(x('x := 0.12345678901234568 + 0')).toBe(0.12345678901234568);
    // more digits than a float holds: kept as a decimal (test/policy/big-decimals.test.ts)
    expect(String(x('x := 0.1234567890123456789 + 0'))).toBe('0.1234567890123456789');
    expect(x('x := 1234567.891234567 + 0.000000001')).toBe(1234567.891234568);
  });

  it('divides decimals exactly when one operand is not an integer', () => {
    expect(x('x := 0.3 / 0.1')).toBe(3);
    expect(x('x := -0.7 / 0.1')).toBe(-7);
    expect(x('x := 1 / 0.2')).toBe(5);
    expect(x('x := 7.5 / 2.5 == 3')).toBe(true);
  });

  it('keeps integers exact, beyond 2^53 too', () => {
    expect(engine.evaluate('x := 9007199254740993 + 1')[0]!.bindings.x).toBe(9007199254740994n);
    expect(engine.evaluate('x := 18446744073709551615 - 1')[0]!.bindings.x).toBe(18446744073709551614n);
    expect(x('x := 10 / 4')).toBe(2.5);
  });

  it('formats floats beyond 2^53 by their decimal digits in format_int', () => {
    expect(x('x := format_int(1e30, 10)')).toBe('1000000000000000000000000000000');
    expect(x('x := format_int(-2.5, 10)')).toBe('-2');
    expect(x('x := format_int(255.9, 16)')).toBe('ff');
  });
});
