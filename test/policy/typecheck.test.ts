import { describe, expect, it } from 'vitest';

import { builtinTable } from '../../src/policy/builtins/registry.js';
import { SIGNATURES } from '../../src/policy/builtins/signatures.js';
import { PolicyEngine, RegoErrors } from '../../src/policy/index.js';

/** compileErrors compiles one module and returns its errors (empty when it compiles). */
function compileErrors(body: string): RegoErrors['errors'] {
  const e = new PolicyEngine();
  e.addModule('t.rego', `package t\n${body}`);
  try {
    e.compile();
    return [];
  } catch (err) {
    if (err instanceof RegoErrors) return err.errors;
    throw err;
  }
}

function oneError(body: string): string {
  const errs = compileErrors(body);
  expect(errs).toHaveLength(1);
  expect(errs[0]!.code).toBe('rego_type_error');
  return errs[0]!.message;
}

describe('compile-time type checking of built-in calls', () => {
  it('every declared signature names a built-in with the same arity', () => {
    const table = builtinTable();
    for (const name of Object.keys(SIGNATURES)) {
      const b = table.get(name);
      expect(b, name).toBeDefined();
      expect(b!.sig!.args.length, name).toBe(b!.arity);
    }
  });

  it('reports a scalar literal operand of the wrong type, with its location', () => {
    const errs = compileErrors('p if {\n  x := 1\n  upper(2)\n}');
    expect(errs).toHaveLength(1);
    expect(errs[0]!.loc).toEqual({ file: 't.rego', row: 4, col: 3 });
    expect(errs[0]!.message).toBe('t.rego:4: rego_type_error: upper: invalid argument(s)\n\thave: (number)\n\twant: (string)');
  });

  it('reports a composite literal whose element type cannot match', () => {
    expect(oneError('p := concat(",", [1, 2])')).toContain('have: (string, array[number])');
    expect(oneError('p := sum({"a", "b"})')).toContain('sum: invalid argument(s)');
    expect(oneError('p := lower({"a": 1})')).toContain('have: (object[any: any])');
  });

  it('reports a comprehension operand', () => {
    expect(oneError('p := upper([x | some x in input])')).toContain('have: (array[any])');
    expect(oneError('p := trim_space({x | some x in input})')).toContain('have: (set[any])');
  });

  it("reports another built-in's result used as an operand", () => {
    expect(oneError('p := upper(count(input))')).toContain('upper: invalid argument(s)\n\thave: (number)');
  });

  it('reports a variable bound from a literal, a built-in result or a `some in` over a literal', () => {
    expect(oneError('p if {\n  x := 1\n  upper(x)\n}')).toMatch(/^t\.rego:4: /);
    expect(oneError('p if {\n  n := count(input)\n  startswith(n, "a")\n}')).toContain('have: (number, string)');
    expect(oneError('p if {\n  some x in [1, 2]\n  upper(x)\n}')).toContain('upper');
    expect(oneError('p if {\n  n = sprintf("%d", [1])\n  n + 1 > 2\n}')).toContain('plus: invalid argument(s)');
  });

  it('reports a built-in result that cannot fit its output operand', () => {
    const msg = oneError('p if count(input, "three")');
    expect(msg).toContain('count: invalid argument(s)\n\thave: (any, string)');
    expect(oneError('p if {\n  x := "a"\n  count(input, x)\n}')).toContain('count: invalid argument(s)');
  });

  it('reports a built-in result unified with a term of another type', () => {
    expect(oneError('p if count(input) = "three"')).toBe('t.rego:2: rego_type_error: match error\n\tleft  : number\n\tright : string');
    expect(oneError('p if {\n  [a, b] := split(input, ",")\n  x := upper(a)\n  x = 1\n}')).toContain('match error');
    expect(oneError('p if {\n  {"a": a} := concat("", input)\n}')).toContain('match error');
  });

  it('does not report operands of unknown type: input, data, rule values, function results', () => {
    expect(compileErrors(`
q := 1
f(x) := x
p if {
  startswith(input.x, "a")
  y := data.y
  upper(y)
  upper(q)
  upper(f(1))
  z := input.z
  z = 1
  upper(z)
}`)).toEqual([]);
  });

  it('accepts well-typed calls, unions and empty collections', () => {
    expect(compileErrors(`
p if {
  concat(",", {"a", "b"})
  concat(",", [])
  count("abc") == 3
  x := {1, 2} - {1}
  y := 3 - 1
  sum([1, 2.5]) > 0
  startswith(sprintf("%v", [x]), "s")
  strings.any_prefix_match("abc", ["a"])
  glob.match("*", null, "x")
  object.get({"a": 1}, "a", 0) == 1
  [a, b] := split("a,b", ",")
  upper(a) == "A"
  lower(b) == "b"
}`)).toEqual([]);
  });

  it('skips negated expressions as binders but still checks their calls', () => {
    expect(oneError('p if {\n  not upper(1)\n}')).toContain('upper');
    expect(compileErrors('p if {\n  not count(input, 1)\n}')).toEqual([]);
  });

  it('collects every type error, sorted by location', () => {
    const errs = compileErrors('p := upper(1)\nq := lower(2)\nr if {\n  trim_space(true)\n  upper([1])\n}');
    expect(errs.map((e) => [e.loc!.row, e.loc!.col])).toEqual([
      [2, 6],
      [3, 6],
      [5, 3],
      [6, 3],
    ]);
    expect(errs.every((e) => e.code === 'rego_type_error')).toBe(true);
  });

  it('checks queries too, without poisoning later queries', () => {
    const e = new PolicyEngine();
    e.addModule('t.rego', 'package t\np := 1');
    expect(() => e.prepare('x := upper(1)')).toThrow(/rego_type_error: upper: invalid argument/);
    expect(e.evaluate('x := upper("a")')[0]!.bindings).toEqual({ x: 'A' });
  });
});
