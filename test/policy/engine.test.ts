import { describe, expect, it } from 'vitest';

import { PolicyEngine, RegoError, RegoErrors, toJSON, type Value } from '../../src/policy/index.js';

function evalOne(modules: string | string[], query: string, opts: { input?: unknown; data?: unknown; strict?: boolean; v0?: boolean } = {}): unknown[] {
  const e = new PolicyEngine();
  (Array.isArray(modules) ? modules : [modules]).forEach((m, i) => e.addModule(`m${i}.rego`, m, { regoVersion: opts.v0 ? 0 : 1 }));
  if (opts.data) e.setData(opts.data);
  return e.prepare(query, { strict: opts.strict }).eval({ input: opts.input }).map((r) => toJSON(r.bindings.x as Value));
}

function errorOf(f: () => unknown): RegoError {
  try {
    f();
  } catch (e) {
    if (e instanceof RegoErrors) return e.errors[0]!;
    if (e instanceof RegoError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

describe('PolicyEngine', () => {
  it('prepares once and evaluates many inputs', () => {
    const e = new PolicyEngine();
    e.addModule('authz.rego', 'package authz\ndefault allow := false\nallow if input.user == "admin"');
    const q = e.prepare('data.authz.allow');
    expect(q.eval({ input: { user: 'admin' } })[0]!.expressions[0]!.value).toBe(true);
    expect(q.eval({ input: { user: 'eve' } })[0]!.expressions[0]!.value).toBe(false);
  });

  it('distinguishes undefined from false', () => {
    expect(evalOne('package t\np if false', 'x = data.t.p')).toEqual([]);
    expect(evalOne('package t\ndefault p := false\np if false', 'x = data.t.p')).toEqual([false]);
  });

  it('evaluates partial sets and objects, functions, else and every', () => {
    const mod = `package t
s contains x if some x in [1, 2, 2, 3]
o[k] := v if some k, v in {"a": 1, "b": 2}
f(x) := y if y := x * 2
g(x) := "small" if x < 10
else := "big"
all_pos if every v in [1, 2, 3] { v > 0 }`;
    expect(evalOne(mod, 'x = data.t.s')).toEqual([[1, 2, 3]]);
    expect(evalOne(mod, 'x = data.t.o')).toEqual([{ a: 1, b: 2 }]);
    expect(evalOne(mod, 'x = data.t.f(21)')).toEqual([42]);
    expect(evalOne(mod, 'x = [data.t.g(1), data.t.g(100)]')).toEqual([['small', 'big']]);
    expect(evalOne(mod, 'x = data.t.all_pos')).toEqual([true]);
  });

  it('supports with on input, data and functions', () => {
    const mod = `package t
p := input.n + data.k
f(x) := x
q := f(1)`;
    expect(evalOne(mod, 'x = data.t.p with input as {"n": 1} with data.k as 41')).toEqual([42]);
    expect(evalOne(mod, 'x = data.t.q with data.t.f as 7')).toEqual([7]);
  });

  it('keeps big integers exact', () => {
    expect(evalOne('package t\np := 18446744073709551614 + 1', 'x = data.t.p')).toEqual([18446744073709551615n]);
  });

  it('parses Rego v0 modules (Gatekeeper style)', () => {
    const mod = `package k8s
violation[{"msg": msg}] {
  c := input.containers[_]
  c.privileged
  msg := sprintf("%v is privileged", [c.name])
}`;
    expect(evalOne(mod, 'x = data.k8s.violation', { v0: true, input: { containers: [{ name: 'a', privileged: true }, { name: 'b' }] } })).toEqual([[{ msg: 'a is privileged' }]]);
  });

  it('gives the same answers through the equality index as a plain scan', () => {
    const items = Array.from({ length: 200 }, (_, i) => ({ id: i % 50, team: { name: `t${i % 7}` }, n: i }));
    items.push({ id: 1.0, team: { name: 't1' }, n: 999 } as never, { n: 1000 } as never);
    const mod = `package t
indexed contains n if {
	some it in data.items
	it.id == input.id
	n := it.n
}
scanned contains n if {
	some it in data.items
	n := it.n
	it.id == input.id
}
nested contains n if {
	some it in data.items
	it.team.name = input.team
	n := it.n
}`;
    for (const id of [1, 7, 49, 50]) {
      const [a] = evalOne(mod, 'x = data.t.indexed', { data: { items }, input: { id } });
      const [b] = evalOne(mod, 'x = data.t.scanned', { data: { items }, input: { id } });
      expect(a).toEqual(b);
    }
    expect(evalOne(mod, 'x = count(data.t.nested)', { data: { items }, input: { team: 't3' } })).toEqual([29]);
  });

  it('runs a Gatekeeper v0 template with deprecated built-ins and library imports', () => {
    const tpl = `package k8srequiredlabels
import data.lib.helpers.msg_or

violation[{"msg": msg, "details": {"missing_labels": missing}}] {
  provided := {label | input.review.object.metadata.labels[label]}
  required := {label | label := input.parameters.labels[_].key}
  missing := required - provided
  count(missing) > 0
  msg := msg_or(input.parameters, sprintf("you must provide labels: %v", [missing]))
}

violation[{"msg": msg}] {
  value := input.review.object.metadata.labels[key]
  expected := input.parameters.labels[_]
  expected.key == key
  not re_match(expected.allowedRegex, value)
  msg := sprintf("Label <%v: %v> does not satisfy allowed regex: %v", [key, value, expected.allowedRegex])
}`;
    const lib = 'package lib.helpers\nmsg_or(p, d) = m { m := p.message } else = d { true }';
    const input = { review: { object: { metadata: { labels: { owner: 'x1' } } } }, parameters: { labels: [{ key: 'owner', allowedRegex: '^[a-z]+$' }, { key: 'team', allowedRegex: '.*' }] } };
    expect(evalOne([tpl, lib], 'x = data.k8srequiredlabels.violation', { v0: true, input })).toEqual([
      [{ details: { missing_labels: ['team'] }, msg: 'you must provide labels: {"team"}' }, { msg: 'Label <owner: x1> does not satisfy allowed regex: ^[a-z]+$' }],
    ]);
  });

  it('keeps null values found through refs (null is a value, not undefined)', () => {
    const mod = 'package t\na := [{"u": null}]\np := a[0].u\nq := {"u": null}.u\nr if input.v == null';
    expect(evalOne(mod, 'x = [data.t.p, data.t.q]')).toEqual([[null, null]]);
    expect(evalOne(mod, 'x = data.t.r', { input: { v: null } })).toEqual([true]);
  });

  it('does not reuse an index over input arrays that change between evaluations', () => {
    const e = new PolicyEngine();
    e.addModule('t.rego', 'package t\nhits contains n if {\n\tsome it in input.items\n\tit.k == input.k\n\tn := it.n\n}');
    const q = e.prepare('data.t.hits');
    const items = Array.from({ length: 40 }, (_, i) => ({ k: i % 4, n: i }));
    const input = { items, k: 1 };
    expect((toJSON(q.eval({ input })[0]!.expressions[0]!.value) as number[]).length).toBe(10);
    items.push({ k: 1, n: 99 });
    expect(toJSON(q.eval({ input })[0]!.expressions[0]!.value)).toContain(99);
  });

  it('matches regular expressions with RE2 semantics', () => {
    expect(evalOne('package t\np := [regex.match(`^a+b$`, "aaab"), regex.match(`(?i)x`, "X")]', 'x = data.t.p')).toEqual([[true, true]]);
  });
});

describe('errors', () => {
  it('reports parse errors with file, row and column', () => {
    const err = errorOf(() => new PolicyEngine().addModule('bad.rego', 'package t\np if {\n  x := \n}'));
    expect(err.code).toBe('rego_parse_error');
    expect(err.loc).toMatchObject({ file: 'bad.rego', row: 4 });
  });

  it('reports unsafe variables', () => {
    const err = errorOf(() => evalOne('package t\np if { x > 1 }', 'x = data.t.p'));
    expect(err.code).toBe('rego_unsafe_var_error');
    expect(err.message).toContain('var x is unsafe');
  });

  it('reports recursion', () => {
    const err = errorOf(() => evalOne('package t\np if q\nq if p', 'x = data.t.p'));
    expect(err.code).toBe('rego_recursion_error');
  });

  it('raises conflicts for complete rules', () => {
    const err = errorOf(() => evalOne('package t\np := 1\np := 2', 'x = data.t.p'));
    expect(err.code).toBe('eval_conflict_error');
  });

  it('makes built-in errors undefined, or fails in strict mode', () => {
    expect(evalOne('package t\np := 1 / 0', 'x = data.t.p')).toEqual([]);
    // the operand's type is unknown until evaluation (a literal would be a compile-time rego_type_error)
    const err = errorOf(() => evalOne('package t\np := count(input.n)', 'x = data.t.p', { strict: true, input: { n: 1 } }));
    expect(err.code).toBe('eval_type_error');
    expect(err.message).toContain('count: operand 1 must be one of {array, object, set, string} but got number');
    expect(errorOf(() => evalOne('package t\np := count(1)', 'x = data.t.p')).code).toBe('rego_type_error');
  });

  it('checks built-in arity at compile time', () => {
    const err = errorOf(() => evalOne('package t\np if count([1], 1, 2)', 'x = data.t.p'));
    expect(err.code).toBe('rego_type_error');
    expect(err.message).toContain('count: arity mismatch');
  });

  it('lists strict-mode problems of a v0 module: unused imports and deprecated built-ins', () => {
    const e = new PolicyEngine();
    e.addModule('s.rego', 'package s\nimport data.lib.unused\np { re_match("a", "a") }', { regoVersion: 0 });
    expect(e.strictProblems().map((p) => p.message)).toEqual([
      's.rego:2: rego_compile_error: import data.lib.unused unused',
      's.rego:3: rego_type_error: deprecated built-in function calls in expression: re_match',
    ]);
  });

  it('refuses deprecated built-ins in a v1 module at compile time, as OPA 1.x does', () => {
    const e = new PolicyEngine();
    e.addModule('s.rego', 'package s\np if re_match("a", "a")');
    const err = errorOf(() => e.compile());
    expect(err.message).toBe('s.rego:2: rego_type_error: deprecated built-in function calls in expression: re_match');
  });

  it('rejects calls to unknown functions at compile time', () => {
    const err = errorOf(() => evalOne('package t\np := nope(1)', 'x = data.t.p'));
    expect(err.code).toBe('rego_type_error');
  });
});
