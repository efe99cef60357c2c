import { describe, expect, it } from 'vitest';

import { parseModule,PolicyEngine, RegoError, RegoErrors } from '../../src/policy/index.js';

/** messagesOf returns every error message a parse (or compile) raises, in OPA's `file:row: code: text` form. */
function messagesOf(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    if (e instanceof RegoErrors) return e.errors.map((x) => x.message);
    if (e instanceof RegoError) return [e.message];
    throw e;
  }
  return [];
}

const parse = (src: string, v: 0 | 1 = 1) => messagesOf(() => parseModule('test.rego', src, v));

function value(src: string, query: string, v: 0 | 1): unknown {
  const e = new PolicyEngine();
  e.addModule('m.rego', src, { regoVersion: v });
  const rows = e.prepare(query).eval();
  return rows.length ? rows[0]!.expressions[0]!.value : undefined;
}

describe('Rego v1 refuses v0-only syntax with OPA 1.x errors', () => {
  it('asks for `if` and `contains` on a v0 partial set rule, both at the rule', () => {
    expect(parse('package test\n\np[x] { x := 1 }\n')).toEqual([
      'test.rego:3: rego_parse_error: `if` keyword is required before rule body',
      'test.rego:3: rego_parse_error: `contains` keyword is required for partial set rules',
    ]);
  });

  it('asks for `if` before rule, function and else bodies, and before every extra body', () => {
    expect(parse('package test\n\np { true }\n')).toEqual(['test.rego:3: rego_parse_error: `if` keyword is required before rule body']);
    expect(parse('package test\n\nf(x) = y { y := x }\n')).toEqual(['test.rego:3: rego_parse_error: `if` keyword is required before function body']);
    expect(parse('package test\n\np := 1 if { input.a } else := 2 {\n  true\n}\n')).toEqual(['test.rego:3: rego_parse_error: `if` keyword is required before rule body']);
    expect(parse('package test\n\np {\n  input.a\n} {\n  input.b\n}\n')).toEqual([
      'test.rego:3: rego_parse_error: `if` keyword is required before rule body',
      'test.rego:5: rego_parse_error: `if` keyword is required before rule body',
    ]);
  });

  it('reads `p.q { ... }` and a bare `p[x]` as v0 partial sets, and so asks for `contains`', () => {
    expect(parse('package test\n\np.q { true }\n')).toEqual([
      'test.rego:3: rego_parse_error: `if` keyword is required before rule body',
      'test.rego:3: rego_parse_error: `contains` keyword is required for partial set rules',
    ]);
    expect(parse('package test\n\np["a"]\n')).toEqual(['test.rego:3: rego_parse_error: `contains` keyword is required for partial set rules']);
  });

  it('refuses rules with neither value nor body, bare names and keywords as rule names', () => {
    expect(parse('package test\n\np.q.r\n')).toEqual(['test.rego:3: rego_parse_error: rule must have value assignment and/or body declaration']);
    expect(parse('package test\n\np\n')).toEqual(['test.rego:3: rego_parse_error: var cannot be used for rule name']);
    expect(parse('package test\n\ncontains := 1\n')).toEqual(['test.rego:3: rego_parse_error: contains keyword cannot be used for rule name']);
  });

  it('accepts v1 syntax, `import future.keywords...` and `import rego.v1` as no-ops', () => {
    const ok = 'package test\n\nimport future.keywords.in\nimport rego.v1\n\np contains x if {\n  some x in [1, 2]\n}\n\nq.r if true\n\nf(x) := y if y := x + 1\n\ndefault d := false\n';
    expect(parse(ok)).toEqual([]);
    expect(value(ok, 'data.test.p', 1)).toBeDefined();
  });

  it('checks imports as OPA does', () => {
    expect(parse('package test\nimport future.keywords.xyz\n')).toEqual(['test.rego:2: rego_parse_error: unexpected keyword, must be one of [contains every if in]']);
    expect(parse('package test\nimport future.stuff\n')).toEqual(['test.rego:2: rego_parse_error: invalid import, must be `future.keywords`']);
    expect(parse('package test\nimport future.keywords as kw\n')).toEqual(['test.rego:2: rego_parse_error: `future` imports cannot be aliased']);
    expect(parse('package test\nimport rego.v2\n')).toEqual(['test.rego:2: rego_parse_error: invalid import `rego.v2`, must be `rego.v1`']);
    expect(parse('package test\nimport rego.v1 as r\n', 0)).toEqual(['test.rego:2: rego_parse_error: `rego` imports cannot be aliased']);
    expect(parse('package test\nimport other.thing\n')).toEqual(['test.rego:2: rego_parse_error: unexpected import path, must begin with one of: {data, future, input, rego}, got: other']);
  });

  it('refuses an import whose last name is a keyword of the module\'s version, unless it has an alias', () => {
    const ends = (kw: string) => [`test.rego:2: rego_parse_error: unexpected import path, must not end with a keyword, got: ${kw} (hint: import a different path or use an alias)`];
    expect(parse('package test\nimport data.lib.in\n')).toEqual(ends('in'));
    expect(parse('package test\nimport input.request["contains"]\n')).toEqual(ends('contains'));
    expect(parse('package test\nimport data.flags.default\n', 0)).toEqual(ends('default'));
    // v0 without future imports: `in`, `if`, `contains`, `every` are names
    expect(parse('package test\nimport data.lib.in\n', 0)).toEqual([]);
    expect(parse('package test\nimport data.lib.in as membership\n')).toEqual([]);
    expect(parse('package test\nimport future.keywords.in\n', 0)).toEqual([]);
  });
});

describe('Rego v0 as OPA 0.x reads it', () => {
  const gatekeeperStyle = 'package k8s\n\nviolation[{"msg": msg}] {\n  c := input.containers[_]\n  c.privileged\n  msg := sprintf("%v is privileged", [c.name])\n}\n\nallowed { true } { false }\n\nnames.a { true }\n';

  it('keeps v0 syntax: partial sets, several bodies, two-term heads as sets', () => {
    expect(parse(gatekeeperStyle, 0)).toEqual([]);
    const input = { containers: [{ name: 'a', privileged: true }, { name: 'b' }] };
    const e = new PolicyEngine();
    e.addModule('k.rego', gatekeeperStyle, { regoVersion: 0 });
    expect(e.prepare('data.k8s.violation == {{"msg": "a is privileged"}}').eval({ input })[0]!.expressions[0]!.value).toBe(true);
    expect(value(gatekeeperStyle, 'data.k8s.allowed', 0)).toBe(true);
    // `names.a { true }` is OPA v0's partial set `names contains "a"`, not `names.a := true`
    expect(value(gatekeeperStyle, 'x := data.k8s.names; is_set(x)', 0)).toBe(true);
  });

  it('has `in`, `every`, `if` and `contains` only when imported, with OPA hints otherwise', () => {
    expect(parse('package test\n\np if { true }\n', 0)).toEqual(['test.rego:3: rego_parse_error: var cannot be used for rule name (hint: `import future.keywords.if` for `p if { ... }` rules)']);
    expect(parse('package test\n\np contains x if { x := 1 }\n', 0)).toEqual(['test.rego:3: rego_parse_error: var cannot be used for rule name (hint: `import future.keywords.contains` for `p contains x` rules)']);
    expect(parse('package test\n\np { x in xs }\n', 0)).toEqual(['test.rego:3: rego_parse_error: unexpected identifier token: expected \\n or ; or } (hint: `import future.keywords.in` for `x in xs` expressions)']);
    expect(parse('package test\n\np {\n\tsome x in [1]\n}\n', 0)).toEqual(['test.rego:4: rego_parse_error: unexpected identifier token: expected \\n or ; or } (hint: `import future.keywords.in` for `some x in xs` expressions)']);
    expect(parse('package test\n\np {\n\tevery x in [1] { x > 0 }\n}\n', 0)).toEqual(['test.rego:4: rego_parse_error: unexpected identifier token: expected \\n or ; or } (hint: `import future.keywords.every` for `every x in xs { ... }` expressions)']);
    // without the imports these words are names, as in OPA v0
    expect(value('package test\n\ncontains := 1\nif := 2\n', 'data.test.contains + data.test.if', 0)).toBe(3);
    // one import turns on one keyword; `future.keywords` all of them
    expect(parse('package test\nimport future.keywords.in\n\np { 1 in [1] }\n', 0)).toEqual([]);
    expect(parse('package test\nimport future.keywords.in\n\np if { 1 in [1] }\n', 0)).toHaveLength(1);
    expect(value('package test\nimport future.keywords\n\np contains x if { some x in [1, 2] }\nq if { every x in p { x > 0 } }\n', 'data.test.q', 0)).toBe(true);
  });

  it('reads `p[x] if` as a single-value rule when `if` is on, as OPA does', () => {
    const src = 'package test\nimport future.keywords.if\n\np[x] if { x := "a" }\n';
    expect(value(src, 'data.test.p', 0)).toEqual({ a: true });
  });

  it('checks a v0 module that imports rego.v1 as v1', () => {
    expect(parse('package test\nimport rego.v1\n\np[x] { x := 1 }\n', 0)).toEqual([
      'test.rego:4: rego_parse_error: `if` keyword is required before rule body',
      'test.rego:4: rego_parse_error: `contains` keyword is required for partial set rules',
    ]);
    const m = parseModule('test.rego', 'package test\nimport rego.v1\n\np contains x if { some x in [1] }\n', 0);
    expect(m.regoVersion).toBe(1);
    const e = new PolicyEngine();
    e.addModule('d.rego', 'package d\nimport rego.v1\n\np if re_match("a", "a")\n', { regoVersion: 0 });
    expect(messagesOf(() => e.compile())).toEqual(['d.rego:4: rego_type_error: deprecated built-in function calls in expression: re_match']);
  });
});

describe('compile checks OPA 1.x applies to v1 modules by default', () => {
  const compileErrors = (src: string, v: 0 | 1 = 1) => {
    const e = new PolicyEngine();
    e.addModule('c.rego', src, { regoVersion: v });
    return messagesOf(() => e.compile());
  };

  it('refuses duplicate imports, then input/data shadowing, then deprecated built-ins', () => {
    expect(compileErrors('package c\nimport data.foo\nimport data.bar as foo\n\np := foo\n')).toEqual(['c.rego:3: rego_compile_error: import must not shadow import data.foo']);
    expect(compileErrors('package c\n\ninput := 1\n\nf(data) := 1\n\np if {\n  data := 2\n  data == 2\n}\n')).toEqual([
      'c.rego:3: rego_compile_error: rules must not shadow input (use a different rule name)',
      'c.rego:5: rego_compile_error: args must not shadow data (use a different variable name)',
      'c.rego:8: rego_compile_error: variables must not shadow data (use a different variable name)',
    ]);
    expect(compileErrors('package c\n\np if any([true])\nq := cast_set([1])\n')).toEqual([
      'c.rego:3: rego_type_error: deprecated built-in function calls in expression: any',
      'c.rego:4: rego_type_error: deprecated built-in function calls in expression: cast_set',
    ]);
  });

  it('leaves a package function that happens to be named like a deprecated built-in alone', () => {
    expect(compileErrors('package c\n\nany(xs) := true if { some x in xs; x }\n\np if any([true])\n')).toEqual([]);
  });

  it('applies none of them to v0 modules (strict mode reports them)', () => {
    const src = 'package c\nimport data.foo\nimport data.bar as foo\n\np { re_match("a", foo) }\n';
    expect(compileErrors(src, 0)).toEqual([]);
    const e = new PolicyEngine();
    e.addModule('c.rego', src, { regoVersion: 0 });
    expect(e.strictProblems().map((p) => p.message)).toEqual([
      'c.rego:3: rego_compile_error: import must not shadow import data.foo',
      'c.rego:5: rego_type_error: deprecated built-in function calls in expression: re_match',
    ]);
  });
});
