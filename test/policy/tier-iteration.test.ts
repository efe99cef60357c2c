import { describe, expect, it } from 'vitest';

import { planStep, type StepKind } from '../../src/policy/eval/plan.js';
import { PolicyEngine } from '../../src/policy/index.js';

import { outcome, ruleNames, stepCompiler } from './tier-helpers.js';

/**
 * The shapes of Gatekeeper-library templates the compiled tier used to leave to the general
 * evaluator: operands that iterate (`startswith(s, prefixes[_])`, `tag == tags[_]`, `a[_] == v`,
 * `some i; a[i] == v`, `labels[l]`), refs into a built-in's result (`split(s, ":")[1]`), array
 * and set comprehensions as operands (`count({l | ...})`), keys read from other refs
 * (`limits[input.parameters.resource]`) and negations whose operands were hoisted out. Each rule is
 * evaluated on the compiled tier and on the general evaluator, strict and not, over inputs where
 * the collections are arrays, objects, sets (made by rules), scalars and absent, and where
 * built-ins fail; the answers (or errors) must be the same. A second test checks that these
 * bodies do compile (no `general` step), so the comparison is between two tiers.
 */
const SRC = `package t
import rego.v1

prefixes := ["a/", "b/"]
starts_any(s, ps) if startswith(s, ps[_])
set_of_xs := {x | some x in input.xs}

# ref into a built-in's result
tag contains t if { some c in input.images; t := split(c, ":")[1] }
tag_any contains t if { some c in input.images; t := split(c, "/")[_] }
tag_index contains [i, t] if { some c in input.images; t := split(c, "/")[i] }
tag_number if { n := to_number(input.s)[0] }

# iteration inside an equality or a call
eq_right contains t if { some t in input.tags; t == input.bad[_] }
eq_left contains t if { some t in input.tags; input.bad[_] == t }
unify_right contains t if { some t in input.tags; t = input.bad[_] }
bind_swapped contains x if { input.xs[_] = x }
some_index contains [i, v] if { some i; input.xs[i] == input.want; v := input.ys[i] }
same_index contains i if { input.xs[i] == input.ys[i] }
not_any contains t if { some t in input.tags; not t == input.bad[_] }
# the first binding that holds ends a negation: a later one that fails is never reached
not_early if not to_number(input.early[_]) > 5
not_any_unify contains t if { some t in input.tags; not t = input.bad[_] }
call_iter contains s if { some s in input.strs; startswith(s, prefixes[_]) }
call_iter_input contains s if { some s in input.strs; startswith(s, input.ps[_]) }
fn_iter contains s if { some s in input.strs; starts_any(s, input.ps) }
not_fn_iter contains s if { some s in input.strs; not starts_any(s, input.ps) }
nested_iter contains [k, v] if { input.m[k][_] = v; v > 1 }
object_keys contains l if { input.labels[l] }
object_values contains v if { v := input.labels[_] }
object_order := a if a := [k | input.zorder[k]]
set_members contains x if { set_of_xs[x]; x != 2 }
errors_iter contains n if { n := to_number(input.strs[_]) }
any_error if { to_number(input.strs[_]) > 1 }
first_solution := x if { x := input.xs[_]; x > 1 }

# keys read from other refs
key_operand if input.m[input.k]
key_operand_value := v if v := input.m[input.k][0]
not_key_operand if not input.m[input.k]

# comprehensions as operands
count_set := n if n := count({l | input.labels[l]})
count_array := n if n := count([x | x := input.xs[_]; x > 1])
missing := m if { provided := {l | input.labels[l]}; required := {l | l := input.want_labels[_]}; m := required - provided; count(m) > 0 }
array_order := a if a := [y | some x in input.xs; y := x * 2]
nested_compr := a if a := [s | some x in input.xs; s := count([y | some y in input.xs; y < x])]
not_compr if not count([x | x := input.xs[_]; x > 100]) > 0
compr_in_call if { startswith("abc", [p | p := input.ps[_]][0]) }
set_dupes := s if s := {x | some y in input.xs; x := y % 2}

# hoisted negation operands, fused into the negated step
not_call contains c if { some c in input.strs; not startswith(c, input.p) }
not_fn contains c if { some c in input.strs; not starts_any(c, prefixes) }
not_nested contains c if { some c in input.strs; not startswith(lower(c), input.p) }
not_path contains c if { some c in input.objs; not c.a.b }
not_field contains c.name if { some c in input.pods; not startswith(c.image, "a/") }
not_two contains c if { some c in input.strs; not startswith(c, input.pair[0]); not endswith(c, input.pair[1]) }
`;

const INPUTS: unknown[] = [
  {
    images: ['a/app:1.0', 'b/x/y:latest', 'plain'],
    tags: ['latest', 'dev', 'v1'],
    bad: ['latest', 'dev-0'],
    xs: [1, 2, 3, 2],
    ys: [1, 5, 3, 7],
    want: 2,
    strs: ['a/x', 'b/y', 'c/z', '10'],
    ps: ['a/', 'c/'],
    p: 'a',
    pair: ['a', 'z'],
    m: { a: [1, 2], b: [3], c: 'str' },
    k: 'a',
    labels: { app: 'x', team: 'y', off: false },
    zorder: { b: 1, c: 2, a: 3 },
    early: ['10', 'x'],
    want_labels: ['app', 'owner'],
    objs: [{ a: { b: true } }, { a: {} }, { a: { b: false } }],
    pods: [{ name: 'p', image: 'a/x' }, { name: 'q', image: 'b/x' }, { name: 'r' }],
    s: '12',
  },
  // objects where arrays were, scalars where collections were
  {
    images: { x: 'a:1', y: 'b:2' },
    tags: { x: 'latest' },
    bad: { one: 'latest' },
    xs: { a: 2, b: 3 },
    ys: { a: 2, b: 4 },
    want: 3,
    strs: { x: 'a/1', y: 'zz' },
    ps: 'a/',
    p: 7,
    pair: 'az',
    m: [[2, 3], [1]],
    k: 0,
    labels: ['app', 'team'],
    zorder: [3, 1],
    want_labels: 'app',
    objs: { one: { a: { b: 1 } } },
    s: 'x',
  },
  // undefined operands, empty collections, values that make built-ins fail
  { images: [7, null], tags: [], bad: 'latest', xs: [], strs: [1, 'a/', 'x1'], ps: [3, 'a'], p: null, pair: [1, 2], m: {}, k: 'missing', labels: {}, objs: [1, 'x'], s: 3 },
  {},
];

const RULES = ruleNames(SRC);

describe('iterating operands, refs into results, comprehensions and hoisted negations', () => {
  it('give the same answers and errors on the compiled tier as on the general evaluator', () => {
    expect(RULES.length).toBeGreaterThan(40);
    for (const strict of [false, true]) {
      for (const input of INPUTS) {
        const compiled = new PolicyEngine();
        const general = new PolicyEngine();
        for (const e of [compiled, general]) e.addModule('t.rego', SRC);
        for (const rule of RULES) {
          const a = outcome(compiled, rule, input, { strict });
          const b = outcome(general, rule, input, { strict, compiled: false });
          expect({ rule, input, strict, ...a }).toEqual({ rule, input, strict, ...b });
          // and again, on the chains compiled by the first evaluation
          expect(outcome(compiled, rule, input, { strict })).toEqual(a);
        }
      }
    }
  });

  it('give the answers OPA gives', () => {
    const e = new PolicyEngine();
    e.addModule('t.rego', SRC);
    const v = (rule: string, input = INPUTS[0]) => outcome(e, rule, input, {});
    expect(v('tag')).toEqual({ value: '{"1.0", "latest"}' });
    expect(v('tag_index')).toEqual({ value: '{[0, "a"], [0, "b"], [0, "plain"], [1, "app:1.0"], [1, "x"], [2, "y:latest"]}' });
    expect(v('eq_right')).toEqual({ value: '{"latest"}' });
    expect(v('not_any')).toEqual({ value: '{"dev", "v1"}' });
    expect(v('some_index')).toEqual({ value: '{[1, 5], [3, 7]}' });
    expect(v('same_index')).toEqual({ value: '{0, 2}' });
    expect(v('call_iter')).toEqual({ value: '{"a/x", "b/y"}' });
    expect(v('not_fn_iter')).toEqual({ value: '{"10", "b/y"}' });
    expect(v('nested_iter')).toEqual({ value: '{["a", 2], ["b", 3]}' });
    expect(v('object_keys')).toEqual({ value: '{"app", "team"}' });
    expect(v('set_members')).toEqual({ value: '{1, 3}' });
    expect(v('first_solution')).toEqual({ error: expect.stringMatching(/complete rules must not produce multiple outputs/) });
    expect(v('key_operand_value')).toEqual({ value: '1' });
    // a label whose value is false does not count: the body's bare term is false for it
    expect(v('count_set')).toEqual({ value: '2' });
    expect(v('errors_iter')).toEqual({ value: '{10}' });
    expect(v('missing')).toEqual({ value: '{"owner"}' });
    expect(v('array_order')).toEqual({ value: '[2, 4, 6, 4]' });
    expect(v('nested_compr')).toEqual({ value: '[0, 1, 3, 1]' });
    expect(v('not_field')).toEqual({ value: '{"q"}' });
    expect(v('not_path')).toEqual({ value: '{{"a": {}}, {"a": {"b": false}}}' });
    // an undefined operand hoisted out of a negation makes the body undefined, not the negation true
    expect(v('not_call', { strs: ['x'] })).toEqual({ value: 'set()' });
    expect(v('not_two', { strs: ['x', 'ab'], pair: ['a'] })).toEqual({ value: 'set()' });
    expect(v('not_two', { strs: ['x', 'ab', 'bz'], pair: ['a', 'z'] })).toEqual({ value: '{"x"}' });
  });

  it('compile every one of these bodies without a general step', () => {
    const e = new PolicyEngine();
    e.addModule('t.rego', SRC);
    for (const rule of RULES) outcome(e, rule, INPUTS[0], {});
    const steps = stepCompiler(e);
    const general: string[] = [];
    const kinds = new Set<StepKind>();
    for (const r of e.modules()[0]!.rules) {
      const got = steps.kinds(r.body);
      expect(got, String((r.ref[0] as { value: unknown }).value)).toBeDefined();
      got!.forEach((k) => kinds.add(k));
      if (got!.includes('general')) general.push(String((r.ref[0] as { value: unknown }).value));
    }
    expect(general).toEqual([]);
    // an operand hoisted out of a negation binds a fresh variable: no equality to index on
    const field = e.modules()[0]!.rules.find((r) => (r.ref[0] as { value: unknown }).value === 'not_field')!;
    expect(steps.kinds(field.body)![0]).toBe('scan');
    expect([...kinds].sort()).toEqual(['bind', 'direct', 'equal', 'iterate', 'scan', 'skip', 'test']);
  });

  it('read operands hoisted out of a negation in the negated step itself', () => {
    const e = new PolicyEngine();
    e.addModule('t.rego', SRC);
    for (const rule of RULES) outcome(e, rule, INPUTS[0], {});
    const steps = stepCompiler(e);
    const fused = new Map<string, Array<{ kind: string; hoisted: number; span: number }>>();
    for (const r of e.modules()[0]!.rules) {
      const name = String((r.ref[0] as { value: unknown }).value);
      if (!name.startsWith('not_')) continue;
      const body = r.body;
      for (let i = 0; i < body.length; i++) {
        if (!body[i]!.hoisted) continue;
        const plan = planStep(steps, body, i) as { kind: string; hoisted?: unknown[]; span?: number };
        (fused.get(name) ?? fused.set(name, []).get(name)!).push({ kind: plan.kind, hoisted: plan.hoisted?.length ?? 0, span: plan.span ?? 1 });
        i += (plan.span ?? 1) - 1;
      }
    }
    // (`not c.a.b` hoists nothing: its keys are constants)
    expect(Object.fromEntries(fused)).toEqual({
      not_call: [{ kind: 'test', hoisted: 1, span: 2 }],
      not_field: [{ kind: 'test', hoisted: 1, span: 2 }],
      not_compr: [{ kind: 'test', hoisted: 1, span: 2 }],
      not_fn: [{ kind: 'direct', hoisted: 1, span: 2 }],
      not_fn_iter: [{ kind: 'direct', hoisted: 1, span: 2 }],
      not_key_operand: [{ kind: 'test', hoisted: 1, span: 2 }],
      not_nested: [{ kind: 'test', hoisted: 2, span: 3 }],
      not_two: [{ kind: 'test', hoisted: 1, span: 2 }, { kind: 'test', hoisted: 1, span: 2 }],
    });
  });
});
