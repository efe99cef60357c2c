import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { PolicyEngine, type RegoError, toJSON, type Value } from '../../src/policy/index.js';

/**
 * Rule bodies run as compiled steps (eval/steps.ts, generated code per expression), on the general
 * evaluator when the compiled tier is off (`compiled: false`), and on the general evaluator when
 * tracing. All three must agree.
 */
type Mode = 'compiled' | 'general' | 'traced';
const MODES: Mode[] = ['compiled', 'general', 'traced'];

function run(mode: Mode, src: string, query: string, input?: unknown, opts: Record<string, unknown> = {}): unknown[] {
  const e = new PolicyEngine();
  e.addModule('t.rego', src);
  const o = { ...opts, ...(mode === 'general' ? { compiled: false } : {}), ...(mode === 'traced' ? { tracer: () => {} } : {}) };
  return e.prepare(query, o).eval({ input }).map((r) => toJSON(r.expressions[0]!.value as Value));
}

/** same evaluates in every mode (twice, so the compiled steps are reused) and returns the one answer. */
function same(src: string, query: string, input?: unknown, opts: Record<string, unknown> = {}): unknown[] {
  const results = MODES.map((m) => run(m, src, query, input, opts));
  for (const r of results) expect(r).toEqual(results[0]);
  const e = new PolicyEngine();
  e.addModule('t.rego', src);
  const q = e.prepare(query, opts);
  q.eval({ input });
  expect(q.eval({ input }).map((r) => toJSON(r.expressions[0]!.value as Value))).toEqual(results[0]);
  return results[0]!;
}

const ADMISSION = `package t
allowed := ["registry.example.com/", "ghcr.io/skiff/"]
deny contains msg if {
  some c in input.spec.containers
  c.securityContext.privileged
  msg := sprintf("container %s is privileged", [c.name])
}
deny contains msg if {
  some c in input.spec.containers
  not c.securityContext.runAsNonRoot
  msg := sprintf("container %s must set runAsNonRoot", [c.name])
}
deny contains msg if {
  some c in input.spec.containers
  not registry_ok(c.image)
  msg := sprintf("container %s uses %s", [c.name, c.image])
}
registry_ok(image) if {
  some prefix in allowed
  startswith(image, prefix)
}
allow if count(deny) == 0`;

const container = (name: string, image: unknown, sc: Record<string, unknown> = { runAsNonRoot: true }) => ({ name, image, securityContext: sc });

describe('compiled rule bodies', () => {
  it('decide an admission policy the same way in every mode', () => {
    const ok = { spec: { containers: [container('a', 'ghcr.io/skiff/x'), container('b', 'registry.example.com/y')] } };
    expect(same(ADMISSION, 'data.t.allow', ok)).toEqual([true]);
    expect(same(ADMISSION, 'data.t.deny', ok)).toEqual([[]]);
    const bad = {
      spec: {
        containers: [
          container('a', 'docker.io/x', { privileged: true }),
          container('b', 42),
          { name: 'c', image: 'ghcr.io/skiff/z' },
          container('d', 'registry.example.com/w', { runAsNonRoot: false, privileged: 'yes' }),
        ],
      },
    };
    expect(same(ADMISSION, 'data.t.allow', bad)).toEqual([]);
    expect(same(ADMISSION, 'data.t.deny', bad)).toEqual([
      [
        'container a is privileged',
        'container a must set runAsNonRoot',
        'container a uses docker.io/x',
        'container b uses 42',
        'container c must set runAsNonRoot',
        'container d is privileged',
        'container d must set runAsNonRoot',
      ],
    ]);
    // containers as an object, a string, or missing: the general path or nothing
    expect(same(ADMISSION, 'data.t.deny', { spec: { containers: { x: container('x', 'docker.io/x') } } })).toEqual([['container x uses docker.io/x']]);
    expect(same(ADMISSION, 'data.t.allow', { spec: { containers: 'none' } })).toEqual([true]);
    expect(same(ADMISSION, 'data.t.allow', {})).toEqual([true]);
    expect(same(ADMISSION, 'data.t.allow')).toEqual([true]);
  });

  it('evaluate nested built-in calls, literal operands and bindings', () => {
    const src = `package t
a if lower(input.x) == "abc"
b if startswith(lower(input.x), concat("", ["a", "b"]))
c := y if { y := upper(input.x); count(y) > 1 }
d := z if { z = input.n; z == 3 }
e if { w := 2; w = 2; w == input.n - 1 }
f := [p, q] if {
  [p, q] := input.pair
}
g := m if m := sprintf("%s/%s", [input.x, input.y])
h contains x if { some x in [1, 2, 3, 4]; x > input.n }
i := n if n := count({k | some k, _ in input.obj})
j contains idx if input.pair[idx] == 2
k := x if { 3 = x }
l contains [idx, val] if { some idx; val := input.pair[idx] * 10; val > 10 }`;
    const run1 = (input: unknown) => ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l'].map((r) => same(src, `data.t.${r}`, input));
    expect(run1({ x: 'AbC', y: 'z', n: 3, pair: [1, 2], obj: { u: 1, v: 2 } })).toEqual([
      [true],
      [true],
      ['ABC'],
      [3],
      [true],
      [[1, 2]],
      ['AbC/z'],
      [[4]],
      [2],
      [[1]],
      [3],
      [[[1, 20]]],
    ]);
    // missing operands make each test undefined; a built-in error (lower of a number) too
    expect(run1({ x: 5 })).toEqual([[], [], [], [], [], [], [], [[]], [0], [[]], [3], [[]]]);
  });

  it('iterates `x := xs[_]` over arrays, and everything else through the general path', () => {
    const src = `package t
import rego.v1
images contains img if {
  c := input.spec.containers[_]
  img := c.image
}
pairs contains [i, v] if {
  some i
  v := input.xs[i]
  v2 := input.ys[i]
  v2 == v
}
same contains c if {
  c := input.xs[_]
  c = input.ys[_]
}
first := v if v := input.xs[0]`;
    const cases: Array<[unknown, unknown[]]> = [
      [{ spec: { containers: [{ image: 'a' }, { image: 'b' }, { name: 'no image' }] }, xs: [1, 2, 3], ys: [1, 5, 3] }, [['a', 'b'], [[0, 1], [2, 3]], [1, 3], [1]]],
      [{ spec: { containers: { x: { image: 'o' } } }, xs: { a: 1, b: 2 }, ys: { a: 1, b: 3 } }, [['o'], [['a', 1]], [1], []]],
      [{ spec: { containers: 'none' }, xs: 'abc', ys: [] }, [[], [], [], []]],
      [{}, [[], [], [], []]],
    ];
    for (const [input, want] of cases) expect(['images', 'pairs', 'same', 'first'].map((r) => same(src, `data.t.${r}`, input))).toEqual(want.map((w, i) => (i < 3 ? [w] : w)));
    // a set as the collection
    expect(same(`${src}\nfromset contains x if { x := {"p", "q"}[_] }`, 'data.t.fromset')).toEqual([['p', 'q']]);
  });

  it('records a failing nested built-in once, and fails the query in strict mode', () => {
    const src = 'package t\np if startswith(lower(input.x), "a")\nq if { y := upper(input.x); y }';
    for (const mode of MODES) {
      const errors: RegoError[] = [];
      expect(run(mode, src, 'data.t.p', { x: 1 }, { builtinErrors: errors })).toEqual([]);
      expect(errors.map((e) => e.message)).toEqual(['t.rego:2: eval_type_error: lower: operand 1 must be string but got number']);
      expect(() => run(mode, src, 'data.t.q', { x: 1 }, { strict: true })).toThrow(/upper: operand 1 must be string but got number/);
    }
  });

  it('honours `with` on built-ins, functions and rule values inside compiled steps', () => {
    const src = `package t
allowed := ["a/"]
ok(x) if { some p in allowed; startswith(x, p) }
n := count(input.xs)
p if ok(input.img)
q if count(input.xs) == 7 with count as seven
r if ok(input.img) with data.t.allowed as ["b/"]
s if ok(input.img) with ok as yes
t := v if v := count(input.xs) with input.xs as [1]
u if inner with count as seven
inner if count(input.xs) == 7
v if inner_ok with ok as yes
inner_ok if ok(input.img)
w := x if x := inner_n with data.t.allowed as ["b/", "c/"]
inner_n := count([p | some p in allowed; startswith(input.img, p)])
seven(_) := 7
yes(_) := true`;
    const input = { img: 'b/x', xs: [1, 2] };
    expect(['p', 'q', 'r', 's', 't', 'n', 'u', 'v', 'w'].map((r) => same(src, `data.t.${r}`, input))).toEqual([[], [true], [true], [true], [1], [2], [true], [true], [1]]);
  });

  it('calls functions directly with repeated parameters, false values and several definitions', () => {
    const src = `package t
same(x, x) := true
never(_) := false
two(x) if x == 1
two(x) if x == 2
pick(x) := "big" if x > 10
pick(x) := "small" if x <= 10
a := [i | some i in input; same(i, 1)]
b := [i | some i in input; never(i)]
c := [i | some i in input; two(i)]
d := [pick(i) | some i in input]
e := [i | some i in input; not never(i)]`;
    const input = [1, 2, 3, 11];
    expect(['a', 'b', 'c', 'd', 'e'].map((r) => same(src, `data.t.${r}`, input))).toEqual([[[1]], [[]], [[1, 2]], [['small', 'small', 'small', 'big']], [[1, 2, 3, 11]]]);
  });

  it('keeps the step limit, the deadline and cancellation inside compiled loops', () => {
    const src = 'package t\nbig(x) if x > 0\np := count([x | some x in input; big(x)])';
    const input = Array.from({ length: 5000 }, (_, i) => i + 1);
    for (const mode of MODES) {
      expect(run(mode, src, 'data.t.p', input)).toEqual([5000]);
      expect(() => run(mode, src, 'data.t.p', input, { stepLimit: 500 })).toThrow(/step limit of 500/);
      const ac = new AbortController();
      ac.abort();
      expect(() => run(mode, src, 'data.t.p', input, { signal: ac.signal })).toThrow(/cancelled/);
      expect(() => run(mode, src, 'data.t.p', input, { deadline: Date.now() - 1 })).toThrow(/deadline/);
    }
  });

  it('answers `data.pkg.rule` queries straight from the rule, as the general query path does', () => {
    const src = `package t
default d := "none"
d := "set" if input.on
f := false if true
u if input.missing
c := 1 if true
c := 2 if input.two
obj := {"k": [1, 2]} if true
fn(x) := x`;
    for (const [query, input, want] of [
      ['data.t.d', {}, ['none']],
      ['data.t.d', { on: true }, ['set']],
      ['data.t.f', {}, [false]],
      ['data.t.u', {}, []],
      ['data.t.c', {}, [1]],
      ['data.t.obj', {}, [{ k: [1, 2] }]],
      ['data.t.fn', {}, []],
      ['data.t.nothing', {}, []],
      ['data.t.c == 1', {}, [true]],
    ] as Array<[string, unknown, unknown[]]>) {
      expect(same(src, query, input)).toEqual(want);
    }
    for (const mode of MODES) expect(() => run(mode, src, 'data.t.c', { two: true })).toThrow(/eval_conflict_error/);
    // a base document at the same path wins over the rule, as in OPA
    const e = new PolicyEngine();
    e.addModule('t.rego', 'package t\np := 1 if true');
    e.setData({ t: { p: 7 } });
    expect(e.prepare('data.t.p').eval({})[0]!.expressions[0]!.value).toBe(7);
  });

  it('still explains every step when tracing', () => {
    const e = new PolicyEngine();
    e.addModule('t.rego', ADMISSION);
    const q = e.prepare('data.t.allow');
    q.eval({ input: { spec: { containers: [container('a', 'ghcr.io/skiff/x')] } } });
    const events: string[] = [];
    q.eval({ input: { spec: { containers: [container('a', 'ghcr.io/skiff/x')] } }, tracer: (ev) => events.push(`${ev.op}@${ev.loc.row}`) });
    // the registry_ok body (rows 19-20) is traced although it ran as generated code before
    expect(events).toContain('eval@20');
    expect(events).toContain('fail@5');
  });

  it('falls back to the general evaluator when the process forbids code generation', () => {
    const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url));
    const engine = fileURLToPath(new URL('../../src/policy/index.ts', import.meta.url));
    const script = `const { PolicyEngine, toJSON } = await import(${JSON.stringify(engine)});
const e = new PolicyEngine();
e.addModule('t.rego', ${JSON.stringify(ADMISSION)});
const q = e.prepare('data.t.deny');
const c = (n, i) => ({ name: n, image: i, securityContext: { runAsNonRoot: true } });
process.stdout.write(JSON.stringify(toJSON(q.eval({ input: { spec: { containers: [c('a', 'x/y'), c('b', 'ghcr.io/skiff/z')] } } })[0].expressions[0].value)));`;
    const r = spawnSync(process.execPath, ['--disallow-code-generation-from-strings', '--import', tsx, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual(['container a uses x/y']);
  });
});
