import { describe, expect, it } from 'vitest';

import { EvalCancelError, PolicyEngine, type PrepareOptions,RegoError, RegoErrors, toJSON } from '../../src/policy/index.js';

/** run evaluates `data.t.r` over a module whose rule `r` is `rule`. */
function run(rule: string, input: unknown, opts: PrepareOptions = {}, engine = new PolicyEngine()): unknown {
  engine.addModule('t.rego', `package t\n${rule}\n`);
  const rows = engine.prepare('data.t.r', opts).eval({ input });
  return rows.length ? toJSON(rows[0]!.expressions[0]!.value) : undefined;
}

/** failure returns what an evaluation threw, and how long it took. */
function failure(f: () => unknown): { err: unknown; ms: number } {
  const t0 = performance.now();
  try {
    f();
  } catch (err) {
    return { err, ms: performance.now() - t0 };
  }
  throw new Error('expected the evaluation to fail');
}

const strings = (n: number, s = 'x'): string[] => Array.from({ length: n }, (_, i) => `${s}${i}`);
let deep: unknown = 1;
for (let i = 0; i < 3000; i++) deep = { a: deep, b: [1, 2, 3] };

describe('the deadline inside built-ins', () => {
  // An expired deadline with fewer than 1024 evaluation steps: only a check inside the built-in can see it.
  const expired = (): PrepareOptions => ({ deadline: Date.now() - 1 });
  const cases: Array<[string, string, unknown]> = [
    ['numbers.range', 'r := count(numbers.range(1, 900000))', {}],
    ['numbers.range_step', 'r := count(numbers.range_step(1, 1800000, 2))', {}],
    ['concat', 'r := count(concat(",", input.xs))', { xs: strings(50_000) }],
    ['strings.replace_n', 'r := strings.replace_n({"a": "b"}, input.s)', { s: 'ab'.repeat(100_000) }],
    ['indexof_n', 'r := indexof_n(input.s, "ab")', { s: 'ab'.repeat(100_000) }],
    ['indexof', 'r := indexof(input.s, "aaaaaaaaab")', { s: 'a'.repeat(200_000) }],
    ['strings.count', 'r := strings.count(input.s, "a")', { s: 'a'.repeat(200_000) }],
    ['sprintf', 'r := sprintf(input.f, input.xs)', { f: '%s'.repeat(5000), xs: strings(5000) }],
    ['strings.any_prefix_match', 'r := strings.any_prefix_match(input.xs, input.ps)', { xs: strings(300), ps: strings(300, 'y') }],
    ['strings.render_template', 'r := strings.render_template("{{range .xs}}{{.}}{{end}}", input)', { xs: strings(20_000) }],
    ['regex.find_n', 'r := count(regex.find_n("a", input.s, -1))', { s: 'a'.repeat(100_000) }],
    ['regex.replace', 'r := count(regex.replace(input.s, "a", "b"))', { s: 'a'.repeat(100_000) }],
    ['walk', 'r := count([p | walk(input.deep, [p, _])])', { deep }],
    ['json.patch', 'r := json.patch({}, [{"op": "add", "path": sprintf("/k%d", [i]), "value": i} | some i in numbers.range(1, 900)])', {}],
    ['json.filter', 'r := json.filter(input.o, ["a/a/a"])', { o: Object.fromEntries(strings(5000).map((k) => [k, 1])) }],
    ['object.union_n', 'r := count(object.union_n(input.os))', { os: strings(3000).map((k) => ({ [k]: 1, common: { x: k } })) }],
    ['object.remove', 'r := count(object.remove(input.o, ["x1"]))', { o: Object.fromEntries(strings(5000).map((k) => [k, 1])) }],
    ['array.flatten', 'r := count(array.flatten(input.xs))', { xs: strings(5000).map((s) => [s, s]) }],
    ['union', 'r := count(union({{x | some x in input.a}, {x | some x in input.b}}))', { a: strings(600), b: strings(600, 'y') }],
    ['sum', 'r := sum(input.xs)', { xs: Array.from({ length: 5000 }, (_, i) => i) }],
    ['sort', 'r := sort(input.xs)', { xs: Array.from({ length: 5000 }, (_, i) => -i) }],
    ['graph.reachable', 'r := count(graph.reachable(input.g, ["n0"]))', { g: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`n${i}`, [`n${i + 1}`]])) }],
    ['net.cidr_contains_matches', 'r := count(net.cidr_contains_matches(input.c, input.a))', { c: Array(100).fill('10.0.0.0/8'), a: Array(100).fill('10.1.2.3') }],
  ];
  for (const [name, rule, input] of cases) {
    it(`${name} gives up at the evaluation's deadline`, () => {
      const { err } = failure(() => run(rule, input, expired()));
      expect(err).toBeInstanceOf(EvalCancelError);
      expect((err as EvalCancelError).code).toBe('eval_cancel_error');
      expect((err as Error).message).toMatch(/deadline/);
    });
  }

  it('the same built-ins finish without a deadline', () => {
    expect(run('r := count(numbers.range(1, 900000))', {})).toBe(900000);
    let shallow: unknown = 1;
    for (let i = 0; i < 300; i++) shallow = { a: shallow, b: [1, 2, 3] };
    expect(run('r := count([p | walk(input.d, [p, _])])', { d: shallow })).toBe(1501);
  });

  it('comprehensions, some and every stop at the deadline', () => {
    const xs = Array.from({ length: 5000 }, (_, i) => i);
    for (const rule of [
      'r := count([x | some x in input.xs])',
      'r := count({x | some x in input.xs})',
      'r := count({k: 1 | some k in input.xs})',
      'r if { every x in input.xs { x >= 0 } }',
      'r if { some x in {y | some y in input.xs}; x < 0 }',
    ]) {
      const { err } = failure(() => run(rule, { xs }, { deadline: Date.now() - 1 }));
      expect(err, rule).toBeInstanceOf(EvalCancelError);
    }
  });

  it('cancellation (an aborted signal) stops a built-in too', () => {
    const ac = new AbortController();
    ac.abort();
    const { err } = failure(() => run('r := count(numbers.range(1, 900000))', {}, { signal: ac.signal }));
    expect((err as Error).message).toMatch(/cancelled/);
  });

  it('a tiny deadline stops a long range within a few milliseconds of it', () => {
    const { err, ms } = failure(() => run('r := count([x | some x in numbers.range(1, 999999); some y in numbers.range(1, 10); x == y])', {}, { timeoutMs: 5 }));
    expect(err).toBeInstanceOf(EvalCancelError);
    expect(ms).toBeLessThan(1000);
  });
});

describe('size caps on built-in results', () => {
  const strict = { strict: true };
  const refused = (rule: string, input: unknown, re: RegExp, engine?: PolicyEngine): void => {
    const { err } = failure(() => run(rule, input, strict, engine));
    expect(err).toBeInstanceOf(RegoError);
    expect((err as RegoError).code).toBe('eval_builtin_error');
    expect((err as Error).message).toMatch(re);
  };

  it('numbers.range beyond maxElements is a builtin error, at once', () => {
    const t0 = performance.now();
    refused('r := numbers.range(1, 7200000)', {}, /numbers\.range: result would have 7200000 elements; the limit is 1000000/);
    expect(performance.now() - t0).toBeLessThan(500);
    // non-strict: the expression is undefined, the rule too
    expect(run('r := numbers.range(1, 7200000)', {})).toBeUndefined();
  });

  it('strings beyond maxStringLength are refused before they are built', () => {
    const small = () => new PolicyEngine({ limits: { maxStringLength: 1000, maxElements: 100 } });
    refused('r := concat("", input.xs)', { xs: strings(400) }, /concat: result would be \d+ characters long; the limit is 1000/, small());
    refused('r := replace(input.s, "a", "aaaa")', { s: 'a'.repeat(400) }, /replace: result would be 1600 characters/, small());
    refused('r := replace(input.s, "", "xx")', { s: 'a'.repeat(400) }, /replace: result would be/, small());
    refused('r := sprintf("%5000d", [1])', {}, /sprintf: result would be 5000 characters/, small());
    refused('r := split(input.s, ",")', { s: 'a,'.repeat(200) }, /split: result would have 101 elements; the limit is 100/, small());
    refused('r := strings.replace_n({"a": "aaaa"}, input.s)', { s: 'a'.repeat(400) }, /strings\.replace_n: result would be/, small());
    refused('r := json.marshal(input.xs)', { xs: strings(200) }, /json\.marshal: result would be/, small());
    refused('r := array.concat(input.xs, input.xs)', { xs: strings(60) }, /array\.concat: result would have 120 elements/, small());
    refused('r := strings.render_template("{{range .xs}}{{.}}{{end}}", input)', { xs: strings(400) }, /render_template: result would be/, small());
  });

  it('a huge sprintf width is refused with the default limits too', () => {
    refused('r := sprintf("%999999999d", [1])', {}, /sprintf: result would be 999999999 characters/);
  });

  it('walk over a deep document is capped (each result copies its path)', () => {
    let chain: unknown = 1;
    for (let i = 0; i < 400; i++) chain = [chain];
    refused('r := count([p | walk(input.c, [p, _])])', { c: chain }, /walk: result would have more than 800 elements/, new PolicyEngine({ limits: { maxElements: 100 } }));
  });

  it('to_number and json.unmarshal refuse numbers too long to convert quickly', () => {
    refused('r := to_number(input.s)', { s: '1'.repeat(2_000_000) }, /to_number: the number text is 2000000 characters long; the limit is 10000/);
    refused('r := json.unmarshal(input.s)', { s: `[${'9'.repeat(2_000_000)}]` }, /json\.unmarshal: a number in the document has more than 10000 digits/);
    expect(run('r := to_number("123456789012345678901234567890")', {})).toBe(123456789012345678901234567890n);
  });

  it('units.parse refuses an exponent that would take the process with it', () => {
    const t0 = performance.now();
    refused('r := units.parse("1e999999999")', {}, /units\.parse/);
    expect(performance.now() - t0).toBeLessThan(500);
  });
});

describe('glob.match runs in linear time with OPA semantics', () => {
  const glob = (pattern: string, delims: unknown, s: string) => run('r := glob.match(input.p, input.d, input.s)', { p: pattern, d: delims, s });

  it('a hostile pattern on a 150-character path answers at once', () => {
    const t0 = performance.now();
    expect(glob('*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b', ['/'], 'a'.repeat(150))).toBe(false);
    expect(glob('{*a,*a*a,*a*a*a}*{*a,*a*a}**b', null, 'a'.repeat(150))).toBe(false);
    expect(glob('/**/**/**/**/**/**/**/**/**/**/x', ['/'], '/' + 'a/'.repeat(75))).toBe(false);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('keeps delimiters, **, classes, alternatives and escapes', () => {
    expect(glob('*.github.com', [], 'api.github.com')).toBe(true);
    expect(glob('*.github.com', [], 'api.cdn.github.com')).toBe(false);
    expect(glob('**.github.com', [], 'api.cdn.github.com')).toBe(true);
    expect(glob('*.github.com', null, 'api.cdn.github.com')).toBe(true);
    expect(glob('/api/*/users', ['/'], '/api/v1/users')).toBe(true);
    expect(glob('/api/*/users', ['/'], '/api/v1/x/users')).toBe(false);
    expect(glob('/api/?1', ['/'], '/api/v1')).toBe(true);
    expect(glob('/api/?', ['/'], '/api//')).toBe(false);
    expect(glob('[a-c]at', [], 'bat')).toBe(true);
    expect(glob('[!a-c]at', [], 'bat')).toBe(false);
    expect(glob('[!a-c]at', [], 'rat')).toBe(true);
    expect(glob('{cat,dog}.{png,jpg}', [], 'dog.jpg')).toBe(true);
    expect(glob('{cat,{dog,bird}}', [], 'bird')).toBe(true);
    expect(glob('a\\*b', [], 'a*b')).toBe(true);
    expect(glob('a\\*b', [], 'axb')).toBe(false);
    expect(glob('a+b(c)|$^', [], 'a+b(c)|$^')).toBe(true);
    // the first ']' closes a class: `[[:alpha:]]` is the class `[:alph` followed by a literal ']'
    expect(glob('[[:alpha:]]', [], ':]')).toBe(true);
    expect(glob('[[:alpha:]]', [], 'x]')).toBe(false);
    expect(glob('😀?', [], '😀😀')).toBe(true);
    expect(run('r := glob.match("[a", [], "a")', {}, {})).toBeUndefined();
  });
});

describe('regex built-ins have RE2 semantics', () => {
  it('a catastrophic pattern answers at once', () => {
    const t0 = performance.now();
    expect(run('r := regex.match("^(a+)+$", input.s)', { s: 'a'.repeat(100_000) + '!' })).toBe(false);
    expect(run('r := regex.match("(x+x+)+y", input.s)', { s: 'x'.repeat(5000) })).toBe(false);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('backreferences and lookaround are errors, as in Go', () => {
    expect(run('r := regex.is_valid("(a)\\\\1")', {})).toBe(false);
    expect(run('r := regex.is_valid("a(?=b)")', {})).toBe(false);
    expect(run('r := regex.is_valid("a(?:b)+")', {})).toBe(true);
    const { err } = failure(() => run('r := regex.match("(a)\\\\1", "aa")', {}, { strict: true }));
    expect((err as Error).message).toMatch(/error parsing regexp/);
  });

  it('json.match_schema patterns use RE2 as well', () => {
    const t0 = performance.now();
    const r = run('r := json.match_schema(input.doc, {"type": "string", "pattern": "^(a+)+$"})', { doc: JSON.stringify('a'.repeat(5000) + '!') }) as [boolean, unknown[]];
    expect(r[0]).toBe(false);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe('test.* built-ins exist only under policy test', () => {
  const sleepy = 'package t\nr if {\n\ttest.sleep("2s")\n}\n';

  it('are unknown functions at compile time by default, as OPA reports unknown built-ins', () => {
    const e = new PolicyEngine();
    e.addModule('t.rego', sleepy);
    const { err, ms } = failure(() => e.compile());
    expect(err).toBeInstanceOf(RegoErrors);
    expect((err as RegoErrors).errors[0]!.code).toBe('rego_type_error');
    expect((err as Error).message).toMatch(/t\.rego:3: rego_type_error: undefined function test\.sleep/);
    expect(ms).toBeLessThan(500);
  });

  it('exist with testBuiltins, and even there honour the deadline', () => {
    const e = new PolicyEngine({ testBuiltins: true });
    e.addModule('t.rego', sleepy);
    const { err, ms } = failure(() => e.prepare('data.t.r', { timeoutMs: 50 }).eval({}));
    expect(err).toBeInstanceOf(EvalCancelError);
    expect(ms).toBeLessThan(1000);
    const quick = new PolicyEngine({ testBuiltins: true });
    quick.addModule('t.rego', 'package t\nr if test.sleep("5ms")\n');
    expect(quick.prepare('data.t.r').eval({})[0]!.expressions[0]!.value).toBe(true);
  });
});
