import { describe, expect, it } from 'vitest';

import { PolicyEngine, toJSON, type Value } from '../../src/policy/index.js';

/** The evaluator's shortcuts (precompiled tests, inline `some x in`, direct function calls) must agree with the general path. */
function values(src: string, query: string, input?: unknown, opts: Record<string, unknown> = {}): unknown[] {
  const e = new PolicyEngine();
  e.addModule('t.rego', src);
  return e.prepare(query, opts).eval({ input }).map((r) => toJSON(r.expressions[0]!.value as Value));
}

describe('evaluation fast paths', () => {
  it('calls single-definition functions directly, checking repeated parameters', () => {
    const src = `package t
same(x, x) := true
ok(image) if { some p in ["a/", "b/"]; startswith(image, p) }
pair := [same(1, 1), same(1, 2)] if true
r := [i | some i in input; ok(i)]
n := count([i | some i in input; not ok(i)])`;
    expect(values(src, 'data.t.r', ['a/x', 'c/y', 'b/z'])).toEqual([['a/x', 'b/z']]);
    expect(values(src, 'data.t.n', ['a/x', 'c/y', 'b/z'])).toEqual([1]);
    expect(values(src, 'data.t.pair')).toEqual([]);
    expect(values(src, 'data.t.same(1, 1)')).toEqual([true]);
    expect(values(src, 'data.t.same(1, 2)')).toEqual([]);
  });

  it('honours `with` replacements of functions and built-ins inside quick tests', () => {
    const src = `package t
ok(x) if startswith(x, "a")
p if ok("b") with ok as mock
q if startswith("b", "a") with startswith as yes
mock(_) := true
yes(_, _) := true`;
    expect(values(src, 'data.t.p')).toEqual([true]);
    expect(values(src, 'data.t.q')).toEqual([true]);
  });

  it('iterates `some x in` over rule values, literals and input alike', () => {
    const src = `package t
regs := ["r/", "g/"]
a contains x if { some x in regs; x != "g/" }
b contains x if { some x in input.xs; x > 1 }
c contains x if { some x in {"s": 1, "t": 2}; x > 1 }`;
    expect(values(src, 'data.t.a')).toEqual([['r/']]);
    expect(values(src, 'data.t.b', { xs: [1, 2, 3] })).toEqual([[2, 3]]);
    expect(values(src, 'data.t.b', { xs: 'no' })).toEqual([[]]);
    expect(values(src, 'data.t.c')).toEqual([[2]]);
  });

  it('keeps per-evaluation options per evaluation (the prepared options are never changed)', () => {
    const e = new PolicyEngine();
    e.addModule('t.rego', 'package t\np := count([x | some x in numbers.range(1, 200000)])');
    const q = e.prepare('data.t.p', { timeoutMs: 10_000 });
    expect(q.eval({})[0]!.expressions[0]!.value).toBe(200000);
    // a fresh deadline each time: a second evaluation much later still has its full budget
    expect(q.eval({})[0]!.expressions[0]!.value).toBe(200000);
    expect(() => q.eval({ stepLimit: 1000 })).toThrow(/step limit/);
    expect(q.eval({})[0]!.expressions[0]!.value).toBe(200000);
  });

  it('reports built-in errors from quick tests in strict mode with the built-in name', () => {
    const e = new PolicyEngine();
    e.addModule('t.rego', 'package t\np if startswith(input.x, "a")');
    expect(() => e.prepare('data.t.p', { strict: true }).eval({ input: { x: 1 } })).toThrow(/startswith: operand 1 must be string but got number/);
    expect(e.prepare('data.t.p').eval({ input: { x: 1 } })).toEqual([]);
  });
});
