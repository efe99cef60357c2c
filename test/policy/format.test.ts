import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { loadSuite, runCase } from '../../src/policy/conformance.js';
import { formatModule, parseModule, PolicyEngine, toJSON } from '../../src/policy/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const suiteDir = resolve(here, '../../../shared/conformance/opa-v1');
const passingFile = resolve(here, 'conformance-passing.txt');

const messy = `package   demo
import rego.v1
# who may act
default allow   :=   false
allow if {
    input.user == "admin"   # admins
  some g in data.grants
    g == input.user
}
deny contains msg if { not input.ok; msg := sprintf("%v", [input.x + 1 * 2]) }
`;

/** A module, the data it reads, and queries whose answers (with the given inputs) must survive formatting. */
interface Sample {
  name: string;
  src: string;
  regoVersion?: 0 | 1;
  data?: unknown;
  queries: Array<{ query: string; input?: unknown }>;
}

const samples: Sample[] = [
  {
    name: 'authz with rules, functions and comprehensions',
    src: `package authz
import rego.v1

# roles granted to each user
default allow := false

allow if {
  some role in user_roles   # any role will do
  some grant in data.grants[role]
  grant.action == input.action
    grant.type == input.type
}

allow if is_admin(input.user)

is_admin(u) if u in {"root", "alice"}

user_roles contains r if { some r in data.user_roles[input.user] }

grant_count := count([g | some r in user_roles; some g in data.grants[r]])
by_role := {r: n | some r in user_roles; n := count(data.grants[r])}
actions := {g.action | some r in user_roles; some g in data.grants[r]}
`,
    data: {
      user_roles: { alice: ['admin'], bob: ['reader', 'writer'], eve: [] },
      grants: { admin: [{ action: 'delete', type: 'pod' }], reader: [{ action: 'get', type: 'pod' }, { action: 'list', type: 'pod' }], writer: [{ action: 'create', type: 'pod' }] },
    },
    queries: [
      { query: 'data.authz.allow', input: { user: 'bob', action: 'get', type: 'pod' } },
      { query: 'data.authz.allow', input: { user: 'bob', action: 'delete', type: 'pod' } },
      { query: 'data.authz.allow', input: { user: 'alice', action: 'anything', type: 'x' } },
      { query: 'data.authz', input: { user: 'bob', action: 'list', type: 'pod' } },
      { query: 'data.authz.grant_count', input: { user: 'eve' } },
    ],
  },
  {
    name: 'every, not, with, else and strings with escapes',
    src: `package checks

# every container must come from the registry
images_ok if {
	every c in input.containers {
		startswith(c.image, "registry.local/")
	}
}

label := "tab\\there \\"quoted\\" \\\\ back\\u00e9 # not a comment"

quoted := concat("\\n", ["a", "b\\u0041"])

# a rule that is only true when the mocked input says so
mocked if images_ok with input.containers as [{"image": "registry.local/x"}]

tier := "gold" if {
	input.spend > 1000
} else := "silver" if {
	input.spend > 100
} else := "bronze"

no_root if not input.user == "root"

sum_sq := x if {
	x := sum([y | some n in input.nums; y := n * n]) % 7
}

nested[k][v] := true if {
	some k, vs in input.groups
	some v in vs
}
`,
    queries: [
      { query: 'data.checks', input: { containers: [{ image: 'registry.local/a' }, { image: 'registry.local/b' }], spend: 500, user: 'bob', nums: [1, 2, 3], groups: { a: ['x', 'y'], b: [] } } },
      { query: 'data.checks', input: { containers: [{ image: 'docker.io/a' }], spend: 5000, user: 'root', nums: [] } },
      { query: 'data.checks.images_ok', input: { containers: [] } },
      { query: 'x := data.checks.label; y := data.checks.quoted' },
    ],
  },
  {
    name: 'Rego v0 module printed as v1',
    regoVersion: 0,
    src: `package k8s.required
# Gatekeeper-style v0 template
violation[{"msg": msg, "details": {"missing": missing}}] {
  provided := {label | input.review.object.metadata.labels[label]}
  required := {label | label := input.parameters.labels[_]}
  missing := required - provided
  count(missing) > 0
  msg := sprintf("you must provide labels: %v", [missing])
}
default ok = false
ok { count(violation) == 0 }
names[n] { n := input.parameters.labels[_] }
f(x) = y { y := x * 2 }
doubled = [z | z := f(input.parameters.n[_])]
`,
    queries: [
      { query: 'data.k8s.required', input: { review: { object: { metadata: { labels: { app: 'x' } } } }, parameters: { labels: ['app', 'owner'], n: [1, 2] } } },
      { query: 'data.k8s.required', input: { review: { object: { metadata: { labels: { app: 'x', owner: 'me' } } } }, parameters: { labels: ['app', 'owner'], n: [] } } },
    ],
  },
];

/**
 * AST as JSON without source positions, the only thing formatting may change; v1 style also writes
 * every head value with `:=`, so a v1 comparison leaves out which operator the source used.
 */
function shape(src: string, regoVersion: 0 | 1, keepOperator = false): string {
  return JSON.stringify(parseModule('m.rego', src, regoVersion), (k, v: unknown) => (k === 'loc' || k === 'comments' || k === 'module' || (k === 'assign' && !keepOperator) ? undefined : typeof v === 'bigint' ? `${v}n` : v));
}

function answers(src: string, s: Sample, regoVersion: 0 | 1): unknown[] {
  const e = new PolicyEngine();
  e.addModule('m.rego', src, { regoVersion });
  if (s.data !== undefined) e.setData(s.data);
  return s.queries.map((q) => e.evaluate(q.query, { input: q.input }).map((r) => ({ expressions: r.expressions.map((x) => toJSON(x.value)), bindings: toJSON(r.bindings as never) })));
}

describe('policy fmt', () => {
  it('prints canonical v1 style, keeps comments, and is idempotent', () => {
    const out = formatModule(messy);
    expect(out).toContain('package demo\n');
    expect(out).toContain('default allow := false');
    expect(out).toContain('\tinput.user == "admin"');
    expect(out).toContain('# who may act');
    expect(out).toContain('deny contains msg if {\n\tnot input.ok\n\tmsg := sprintf("%v", [input.x + 1 * 2])\n}');
    expect(formatModule(out)).toBe(out);
  });

  describe.each(samples)('$name', (s) => {
    const v = s.regoVersion ?? 1;
    // a v0 module is printed as v1 with `import rego.v1` (opa fmt --v0-v1)
    const out = formatModule(s.src, 'm.rego', v, v === 0 ? 'v0v1' : 'same');

    it('prints a v1 module that parses and is a fixed point', () => {
      expect(() => parseModule('m.rego', out, 1)).not.toThrow();
      expect(formatModule(out)).toBe(out);
      // every comment of the source is kept
      for (const c of s.src.match(/^\s*#.*$/gm) ?? []) expect(out).toContain(c.trim());
    });

    it('keeps the same rules, bodies and terms', () => {
      // v1 modules parse to the same tree; a v0 module's tree keeps its v0 markers, so compare answers only
      if (v === 1) expect(shape(out, 1)).toBe(shape(s.src, 1));
      const rules = parseModule('m.rego', s.src, v).rules.length;
      expect(parseModule('m.rego', out, 1).rules).toHaveLength(rules);
    });

    it('gives the same answers to the same queries', () => {
      const before = answers(s.src, s, v);
      // the queries must exercise the module: an answer that is always empty proves nothing
      for (const a of before) expect(a).not.toEqual([]);
      expect(answers(out, s, 1)).toEqual(before);
    });
  });

  it('pins a few answers so that an engine change cannot make both sides agree on nothing', () => {
    const [authz, checks, v0] = samples as [Sample, Sample, Sample];
    const a = answers(formatModule(authz.src), authz, 1) as Array<Array<{ expressions: unknown[] }>>;
    expect(a.map((r) => r[0]?.expressions[0])).toEqual([true, false, true, { allow: true, actions: ['create', 'get', 'list'], by_role: { reader: 2, writer: 1 }, grant_count: 3, user_roles: ['reader', 'writer'] }, 0]);
    const c = answers(formatModule(checks.src), checks, 1) as Array<Array<{ expressions: unknown[]; bindings: Record<string, unknown> }>>;
    expect(c[0]![0]!.expressions[0]).toMatchObject({ images_ok: true, mocked: true, tier: 'silver', no_root: true, sum_sq: 0, nested: { a: { x: true, y: true } } });
    expect(c[1]![0]!.expressions[0]).toMatchObject({ mocked: true, tier: 'gold' });
    expect(c[1]![0]!.expressions[0]).not.toHaveProperty('images_ok');
    expect(c[3]![0]!.bindings).toEqual({ x: 'tab\there "quoted" \\ backé # not a comment', y: 'a\nbA' });
    const k = answers(formatModule(v0.src, 'm.rego', 0, 'v0v1'), v0, 1) as Array<Array<{ expressions: unknown[] }>>;
    expect(k[0]![0]!.expressions[0]).toMatchObject({ ok: false, names: ['app', 'owner'], doubled: [2, 4], violation: [{ msg: 'you must provide labels: {"owner"}', details: { missing: ['owner'] } }] });
    expect(k[1]![0]!.expressions[0]).toMatchObject({ ok: true, violation: [] });
  });
});

describe('policy fmt --v0 (opa fmt --v0-compatible)', () => {
  const v0 = samples.find((s) => s.regoVersion === 0)!;
  const out = formatModule(v0.src, 'm.rego', 0);

  it('prints v0 syntax that parses as v0 to the same tree, keeping `=` where it was written', () => {
    expect(out).toContain('violation[{"msg": msg, "details": {"missing": missing}}] {\n\tprovided := ');
    expect(out).toContain('default ok = false\n');
    expect(out).toContain('names[n] {\n');
    expect(out).toContain('f(x) = y {\n');
    expect(out).not.toMatch(/\b(if|contains)\b/);
    expect(shape(out, 0, true)).toBe(shape(v0.src, 0, true));
    expect(formatModule(out, 'm.rego', 0)).toBe(out);
    expect(answers(out, v0, 0)).toEqual(answers(v0.src, v0, 0));
  });

  it('uses `if` and `contains` only where the module imports them, and keeps a partial set a set', () => {
    const src = 'package p\nimport future.keywords.if\ns[x] { x := input[_] }\nq = 1 if { input }\nr { true }\n';
    const f = formatModule(src, 'm.rego', 0);
    // without `contains`, `s[x] if { ... }` would be the single-value rule `s[x] := true`
    expect(f).toContain('s[x] {\n');
    expect(f).toContain('q = 1 if {\n');
    expect(f).toContain('r if true\n');
    expect(shape(f, 0, true)).toBe(shape(src, 0, true));
    const all = formatModule('package p\nimport future.keywords\ns[x] { x := 1 }\nr { true }\n', 'm.rego', 0);
    expect(all).toContain('s contains x if {\n');
    expect(all).toContain('r if true\n');
    // without imports a rule with a literal true body keeps a block, and an else keeps its `=`
    const bare = formatModule('package p\nr { true }\nf(x) = 1 { x > 1 } else = 2 { true }\n', 'm.rego', 0);
    expect(bare).toBe('package p\n\nr { true }\n\nf(x) = 1 {\n\tx > 1\n} else = 2\n');
    expect(shape(bare, 0, true)).toBe(shape('package p\nr { true }\nf(x) = 1 { x > 1 } else = 2 { true }\n', 0, true));
  });

  it('--v0-v1 puts import rego.v1 in place of future.keywords imports, and the output parses the same in both versions', () => {
    const src = 'package p\nimport future.keywords.in\nimport data.lib.x\nok { 1 in input }\n';
    const f = formatModule(src, 'm.rego', 0, 'v0v1');
    expect(f).toBe('package p\n\nimport rego.v1\nimport data.lib.x\n\nok if {\n\t1 in input\n}\n');
    expect(shape(f, 0).replace(/"regoVersion":\d/, '')).toBe(shape(f, 1).replace(/"regoVersion":\d/, ''));
  });
});

// Every case of OPA's conformance suite that the engine passes must still pass with its modules
// formatted: the suite's own expected results (and expected errors) are the meaning to keep.
describe.skipIf(!existsSync(suiteDir))('policy fmt on the OPA conformance suite', () => {
  it('formats every module to a parsing fixed point with the same tree and the same results', () => {
    const passing = new Set(readFileSync(passingFile, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
    const cases = loadSuite(suiteDir).filter((c) => passing.has(c.id) && c.modules?.length);
    expect(cases.length).toBeGreaterThan(1900);
    const problems: string[] = [];
    for (const c of cases) {
      let formatted: string[];
      try {
        formatted = c.modules!.map((m, i) => formatModule(m, `test-${i}.rego`));
      } catch (e) {
        problems.push(`${c.id}: format failed: ${(e as Error).message}`);
        continue;
      }
      formatted.forEach((f, i) => {
        if (formatModule(f) !== f) problems.push(`${c.id}: module ${i} is not a fixed point`);
        else if (shape(f, 1) !== shape(c.modules![i]!, 1)) problems.push(`${c.id}: module ${i} parses to a different tree`);
      });
      const r = runCase({ ...c, modules: formatted });
      if (r.status !== 'pass') problems.push(`${c.id}: ${r.reason}`);
    }
    expect(problems.slice(0, 20)).toEqual([]);
  }, 120_000);
});
