import { describe, expect, it } from 'vitest';

import { formatValue, PolicyEngine, RDecimal, RSet, stringifyJSON, toJSON, type Value } from '../../src/policy/index.js';

const engine = new PolicyEngine();
function val(query: string): Value | undefined {
  const rows = engine.evaluate(query);
  return rows.length ? (rows[0]!.bindings.x as Value) : undefined;
}
/** text prints the value of x as Rego term text (decimals with all their digits). */
function text(query: string): string | undefined {
  const v = val(query);
  return v === undefined ? undefined : formatValue(v);
}
function json(query: string): string | undefined {
  const v = val(query);
  return v === undefined ? undefined : stringifyJSON(toJSON(v));
}

const TEN_400 = '1' + '0'.repeat(400);

describe('decimals a float cannot hold', () => {
  it('keeps the digits of literals as written', () => {
    expect(val('x := 0.1234567890123456789')).toBeInstanceOf(RDecimal);
    expect(text('x := 0.1234567890123456789')).toBe('0.1234567890123456789');
    expect(text('x := 2e308')).toBe('2e308');
    expect(text('x := -2e308')).toBe('-2e308');
    expect(text('x := 1e-400')).toBe('1e-400');
    expect(text('x := 123456789012345678901234567890.5')).toBe('123456789012345678901234567890.5');
    expect(text('x := to_number("0.1234567890123456789")')).toBe('0.1234567890123456789');
    // what a float holds stays a float
    expect(val('x := 0.1')).toBe(0.1);
    expect(val('x := 1.5e300')).toBe(1.5e300);
    expect(val('x := 0.10000000000000000000')).toBe(0.1);
    expect(val('x := 5e-324')).toBe(5e-324);
  });

  it('is a number', () => {
    expect(val('x := type_name(2e308)')).toBe('number');
    expect(val('x := is_number(0.1234567890123456789)')).toBe(true);
  });

  it('compares exactly with decimals, floats and integers', () => {
    expect(val('x := 0.1234567890123456789 == 0.12345678901234567890')).toBe(true);
    expect(val('x := 0.1234567890123456789 == 0.1234567890123456788')).toBe(false);
    expect(val('x := 0.1234567890123456789 > 0.12345678901234567')).toBe(true);
    expect(val('x := 0.1234567890123456789 < 0.1234567890123457')).toBe(true);
    expect(val('x := 2e308 > 1.7976931348623157e308')).toBe(true);
    expect(val('x := -2e308 < -1e308')).toBe(true);
    expect(val('x := 1e-400 > 0')).toBe(true);
    expect(val('x := 1e-400 < 5e-324')).toBe(true);
    expect(val('x := -1e-400 < 0')).toBe(true);
    expect(val(`x := 1e400 == ${TEN_400}`)).toBe(true);
    expect(val(`x := 1e400 + 1 > ${TEN_400}`)).toBe(true);
    expect(val('x := sort([2e308, 1, 0.1234567890123456789, -2e308, 1e-400])')).toEqual([
      new RDecimal(-2n, 308, '-2e308'),
      new RDecimal(1n, -400, '1e-400'),
      new RDecimal(1234567890123456789n, -19, '0.1234567890123456789'),
      1,
      new RDecimal(2n, 308, '2e308'),
    ]);
    expect(val('x := max([1, 2e308, 3])')).toEqual(new RDecimal(2n, 308, '2e308'));
  });

  it('does arithmetic exactly', () => {
    expect(text('x := 0.1234567890123456789 + 1')).toBe('1.1234567890123456789');
    expect(val('x := 0.1234567890123456789 - 0.0234567890123456789')).toBe(0.1);
    expect(text('x := 2e308 * 2')).toBe('4e+308');
    expect(val('x := 2e308 / 2')).toBe(1e308);
    expect(val('x := 2e308 - 2e308')).toBe(0);
    expect(text('x := 2e308 + 1')).toBe('2' + '0'.repeat(307) + '1');
    expect(val('x := 2e308 % 3')).toBe(2);
    expect(val('x := 1e400 / 1e399')).toBe(10);
    expect(text('x := 1 / 3e308')).toBe('3.3333333333333333333e-309');
    expect(val('x := sum([2e308, -2e308, 1])')).toBe(1);
    expect(val('x := 0.1234567890123456789 * 0')).toBe(0);
  });

  it('keeps float results beyond float range as decimals instead of infinities or zeros', () => {
    expect(text('x := 1e308 * 10.5')).toBe('1.05e+309');
    expect(text('x := 1e-300 * 1e-300')).toBe('1e-600');
    expect(text('x := 1.5e300 / 1e-300')).toBe('1.5e+600');
    expect(val('x := 1e308 * 10.5 > 1e308')).toBe(true);
  });

  it('rounds, ceils, floors and takes absolute values exactly', () => {
    expect(val('x := round(2.5000000000000000001)')).toBe(3);
    expect(val('x := round(2.4999999999999999999)')).toBe(2);
    expect(val('x := round(-2.5000000000000000000001)')).toBe(-3);
    expect(val('x := round(-2.4999999999999999999)')).toBe(-2);
    expect(val('x := ceil(1.00000000000000000001)')).toBe(2);
    expect(val('x := ceil(-1.00000000000000000001)')).toBe(-1);
    expect(val('x := floor(-1.00000000000000000001)')).toBe(-2);
    expect(val('x := floor(1.99999999999999999999)')).toBe(1);
    expect(val('x := round(123456789012345678901.5)')).toBe(123456789012345678902n);
    expect(val('x := floor(1e-400)')).toBe(0);
    expect(val('x := ceil(1e-400)')).toBe(1);
    expect(text('x := abs(-2e308)')).toBe('2e308');
    expect(text('x := round(2e308)')).toBe('2e308');
  });

  it('prints with sprintf, format_int and numbers.range', () => {
    expect(val('x := sprintf("hi %v", [2e308])')).toBe('hi 2e308');
    expect(val('x := sprintf("%v %s", [0.1234567890123456789, 0.1234567890123456789])')).toBe('0.1234567890123456789 0.1234567890123456789');
    expect(val('x := sprintf("%d", [2e308])')).toBe('2' + '0'.repeat(308));
    expect(val('x := sprintf("%d", [0.1234567890123456789])')).toBe('%!d(big.Float=0.1234567890123456789)');
    expect(val('x := format_int(2e308, 10)')).toBe('2' + '0'.repeat(308));
    expect(val('x := format_int(-123456789012345678901.9, 10)')).toBe('-123456789012345678901');
    expect(val('x := format_int(1e-400, 10)')).toBe('0');
    expect(val('x := numbers.range(1e20, 100000000000000000002)')).toEqual([100000000000000000000n, 100000000000000000001n, 100000000000000000002n]);
    expect(() => engine.evaluate('x := numbers.range(0.1234567890123456789, 3)', { strict: true })).toThrow(/integer/);
  });

  it('writes all digits to JSON', () => {
    expect(json('x := [2e308, 0.1234567890123456789, 1e-400]')).toBe('[2e308,0.1234567890123456789,1e-400]');
    expect(json('x := {"a": 2e308 * 2}')).toBe('{"a":4e+308}');
    expect(val('x := json.marshal([2e308, -0.1234567890123456789])')).toBe('[2e308,-0.1234567890123456789]');
  });

  it('works as keys of sets and objects', () => {
    const s = val('x := {0.1234567890123456789, 0.12345678901234567890, 2e308, 2e308 * 1, 1}');
    expect(s).toBeInstanceOf(RSet);
    expect((s as RSet).size).toBe(3);
    expect(val(`x := {1e400, ${TEN_400}}`)).toSatisfy((v: RSet) => v.size === 1);
    expect(val('x := {2e308: "big"}[2e308]')).toBe('big');
    expect(val('x := {2e308: "big"}[2e308 + 0]')).toBe('big');
    expect(val('x := {0.1234567890123456789: 1}[0.1234567890123456788]')).toBeUndefined();
    expect(val('x := 2e308 in {2e308}')).toBe(true);
    expect(val('x := 0.1234567890123456789 in [1, 0.12345678901234567890]')).toBe(true);
    expect(val('x := count({y | some y in [2e308, 2e308, 0.1234567890123456789]})')).toBe(2);
  });

  it('passes the type checker as a number', () => {
    expect(val('x := abs(2e308) + 1 > 0')).toBe(true);
    expect(() => engine.evaluate('x := upper(2e308)')).toThrow(/rego_type_error/);
  });

  it('is not an object', () => {
    expect(val('x := is_object(2e308)')).toBe(false);
    expect(val('y := 2e308; x := y.c')).toBeUndefined();
    expect(val('x := count([k | some k, _ in 2e308])')).toBe(0);
  });
});
