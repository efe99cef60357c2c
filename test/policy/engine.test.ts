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
    const err = errorOf(() => evalOne('package t\np := count(1)', 'x = data.t.p', { strict: true }));
    expect(err.code).toBe('eval_type_error');
    expect(err.message).toContain('count: operand 1 must be one of {array, object, set, string} but got number');
  });

  it('rejects calls to unknown functions at compile time', () => {
    const err = errorOf(() => evalOne('package t\np := nope(1)', 'x = data.t.p'));
    expect(err.code).toBe('rego_type_error');
  });
});
