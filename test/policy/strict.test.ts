import { describe, expect, it } from 'vitest';

import { PolicyEngine } from '../../src/policy/index.js';

function problems(src: string): string[] {
  const e = new PolicyEngine();
  e.addModule('t.rego', src);
  return e.strictProblems().map((p) => p.message);
}

describe('strict mode: unused local variables', () => {
  it('reports assigned and declared variables that nothing uses', () => {
    expect(
      problems(`package t
p if {
  x := 1
  some y
  z := 2
  z > 1
  [a, _b] := [1, 2]
  a == 1
}
r contains w if {
  some w in [1]
  u := [k | some k in [1]; k2 := k]
}`),
    ).toEqual([
      't.rego:3: rego_compile_error: assigned var x unused',
      't.rego:4: rego_compile_error: declared var y unused',
      't.rego:12: rego_compile_error: assigned var u unused',
      't.rego:12: rego_compile_error: assigned var k2 unused',
    ]);
  });

  it('counts uses in heads, else values, templates and nested bodies', () => {
    expect(
      problems(`package t
q := v if { v := 3 }
f(x) := y if { y := x } else := z if { z := 1 }
s := "ok" if {
  name := "x"
  msg := $"hello {name}"
  msg != ""
}
t if {
  n := 2
  every i in [1] { i < n }
}
m[k] := 1 if { k := "a" }`),
    ).toEqual([]);
  });
});
