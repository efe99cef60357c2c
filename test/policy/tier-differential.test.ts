import { describe, expect, it } from 'vitest';

import type { Expr } from '../../src/policy/ast/types.js';
import { type Operand, planStep, type StepKind } from '../../src/policy/eval/plan.js';
import { PolicyEngine } from '../../src/policy/index.js';

import { outcome, ruleNames, stepCompiler } from './tier-helpers.js';

/**
 * The compiled tier (eval/steps.ts) and the general evaluator it falls back to must agree. Each rule
 * below is written so that one of its expressions compiles to a given kind of step (or reads an
 * operand of a given kind), and the inputs include what sends a step to the general evaluator at
 * run time: an unbound variable, a collection that is not an array, an undefined operand, a built-in
 * error, `with` mocks and data replacements. Every rule is evaluated both ways and compared.
 */
const SRC = `package t
import rego.v1

allowed := ["a/", "b/"]
limit := n if n := count(input.xs)
ok(x) if startswith(x, "a")
pos(x) if x > 0
pos(x) if x > 100
same(x, x) := true
mock_true(_) := true
mock_never(_, _) := false

# scan: some x in <array operand>
scan_input contains x if { some x in input.xs; x != 2 }
scan_const contains x if { some x in [3, 1, 2]; x > 1 }
scan_rule contains p if { some p in allowed; p != "b/" }
scan_nested contains [x, y] if { some x in input.xs; some y in input.ys; x == y }

# indexed: some x in xs; x.f == v
indexed_input contains u.name if { some u in input.users; u.role == input.want }
indexed_general contains u.name if { some u in input.users; u.role == lower(input.want) }
indexed_data contains b.user if { some b in data.bindings; b.role == input.want }

# test: bare terms, not, built-in calls (nested), arrays of operands
test_term if input.flag
test_not if not input.flag
test_input if input
test_builtin if startswith(input.s, "a")
test_not_builtin if not startswith(input.s, "a")
test_nested if count(lower(input.s)) > 2
test_array := m if m := sprintf("%v-%v", [input.s, input.xs])
test_rule if limit > 2
test_const_rule if count(allowed) == 2
test_error if to_number(input.s) > 1
test_var_path contains v if { some u in input.users; v := u.tags[input.i] }

# equal: a = b with both sides read as values
equal_input if input.s = input.t
equal_not if not input.s = input.t
equal_mixed if { x := input.xs; x[0] = input.ys[0] }

# bind: x := t, x = t (compared when bound already)
bind_new := y if { y := input.s; y != "" }
bind_bound if { y := 1; y = input.xs[0] }
iterate_unify contains y if { some y in input.xs; y = input.ys[_] }

# iterate: x := xs[k]
iterate_any contains c.name if { c := input.users[_]; c.role == "admin" }
iterate_key contains [i, v] if { v := input.xs[i]; v > 1 }
bind_bound_key contains v if { i := 1; v := input.xs[i] }

# call and direct: user functions
call_multi contains x if { some x in input.xs; pos(x) }
call_not contains x if { some x in input.xs; not pos(x) }
direct_one contains s if { some s in input.strs; ok(s) }
direct_not contains s if { some s in input.strs; not ok(s) }
call_repeated contains x if { some x in input.xs; same(x, 1) }

# general: everything the compiled tier leaves to the general evaluator
general_every if every x in input.xs { x > 0 }
general_keyed contains [k, v] if { some k, v in input.obj }
bind_compr := c if c := count([x | some x in input.xs; x > 1])
general_output contains y if { some x in input.strs; split(x, "/", y) }
general_with_input if direct_one with input.strs as ["abc"]
general_with_builtin if test_builtin with startswith as mock_never
general_with_builtin_not if test_not_builtin with startswith as mock_never
general_with_func if { some s in input.strs; ok(s) with ok as mock_true }
general_with_data contains p if { scan_rule[p] with data.t.allowed as ["c/", "d/"] }
`;

const DATA = { bindings: [{ user: 'ann', role: 'admin' }, { user: 'bob', role: 'dev' }, { user: 'cy', role: 'admin' }] };

const INPUTS: unknown[] = [
  {
    xs: [1, 2, 3, 150, -1],
    ys: [2, 3, 4],
    users: [
      { name: 'ann', role: 'admin', tags: ['x', 'y'] },
      { name: 'bob', role: 'dev', tags: ['z'] },
      { name: 'cy', role: 'admin' },
    ],
    want: 'admin',
    flag: true,
    s: 'abc',
    t: 'abc',
    i: 1,
    strs: ['a/x', 'b/y', 'abc'],
    obj: { k: 1, l: 2 },
  },
  // collections that are objects, sets of strings, scalars: the general path at run time
  { xs: { a: 1, b: 2 }, ys: 'no', users: { u: { name: 'dee', role: 'ADMIN' } }, want: 'ADMIN', flag: false, s: 'A', t: 'B', i: 0, strs: { a: 'a/1' }, obj: [5, 6] },
  // undefined operands and built-in errors
  { xs: [], users: [{ name: 'eve' }], want: 7, s: 5, strs: [1, 'a'], flag: null },
  {},
];

const RULES = ruleNames(SRC);

/** operandKinds collects the kinds of every operand a plan reads. */
function operandKinds(plan: object, out: Set<string>): void {
  const visit = (x: unknown): void => {
    if (!x || typeof x !== 'object') return;
    if (Array.isArray(x)) return x.forEach(visit);
    const o = x as Operand;
    if (['const', 'var', 'input', 'rule', 'array', 'builtin'].includes(o.kind)) {
      out.add(o.kind);
      if (o.kind === 'array') o.items.forEach(visit);
      if (o.kind === 'builtin') o.args.forEach(visit);
    }
  };
  for (const [key, v] of Object.entries(plan)) if (key !== 'kind' && key !== 'fn' && key !== 'node' && key !== 'index') visit(v);
}

describe('the compiled tier and the general evaluator', () => {
  it('agree on rules written for each kind of step', () => {
    expect(RULES.length).toBeGreaterThan(40);
    for (const strict of [false, true]) {
      for (const input of INPUTS) {
        // a fresh engine per input: the first evaluation compiles the bodies
        const compiled = new PolicyEngine();
        const general = new PolicyEngine();
        for (const e of [compiled, general]) {
          e.addModule('t.rego', SRC);
          e.setData(DATA);
        }
        for (const rule of RULES) {
          const a = outcome(compiled, rule, input, { strict });
          const b = outcome(general, rule, input, { strict, compiled: false });
          expect({ rule, input, strict, ...a }).toEqual({ rule, input, strict, ...b });
        }
      }
    }
  });

  it('compile the rules above to every kind of step and operand', () => {
    const e = new PolicyEngine();
    e.addModule('t.rego', SRC);
    e.setData(DATA);
    for (const rule of RULES) e.prepare(`data.t.${rule}`).eval({ input: INPUTS[0] });
    const steps = stepCompiler(e);
    const kinds = new Set<StepKind>();
    const operands = new Set<string>();
    const byRule = new Map<string, StepKind[]>();
    for (const m of e.modules()) {
      for (const r of m.rules) {
        const body: Expr[] = r.body;
        const got = steps.kinds(body);
        if (!got) continue;
        got.forEach((k) => kinds.add(k));
        body.forEach((_, i) => operandKinds(planStep(steps, body, i), operands));
        const name = String((r.ref[0] as { value: unknown }).value);
        byRule.set(name, got);
      }
    }
    expect([...kinds].sort()).toEqual(['bind', 'call', 'direct', 'equal', 'general', 'indexed', 'iterate', 'scan', 'test']);
    expect([...operands].sort()).toEqual(['array', 'builtin', 'const', 'input', 'rule', 'var']);
    // each rule's first expression is the kind its name promises
    for (const [name, got] of byRule) {
      const kind = name.split('_')[0]!;
      if (kind === 'general') expect(got, name).toContain('general');
      else if (['scan', 'indexed', 'equal', 'bind', 'iterate'].includes(kind)) expect(got, name).toContain(kind);
      else if (kind === 'call') expect(got, name).toContain('call');
      else if (kind === 'direct') expect(got, name).toContain('direct');
    }
  });
});
