import { describe, expect, it } from 'vitest';

import { sprintf } from '../../src/policy/builtins/strings.js';
import { formatValue, PolicyEngine, RSet, toJSON, type Value } from '../../src/policy/index.js';

function value(src: string, query: string, input?: unknown): unknown {
  const e = new PolicyEngine();
  e.addModule('t.rego', src);
  const rows = e.prepare(query).eval({ input });
  return rows.length ? toJSON(rows[0]!.expressions[0]!.value as Value) : undefined;
}

describe('sets of strings', () => {
  it('deduplicate strings apart from other values and keep canonical order', () => {
    const s = new RSet(['b', 1, 'a', 'b', '1', true, null, ['a'], 'a']);
    expect(s.size).toBe(7);
    expect(s.has('a')).toBe(true);
    expect(s.has('1')).toBe(true);
    expect(s.has(1)).toBe(true);
    expect(s.has('true')).toBe(false);
    expect(formatValue(s)).toBe('{null, true, 1, "1", "a", "b", ["a"]}');
    s.add('0');
    expect(formatValue(s)).toBe('{null, true, 1, "0", "1", "a", "b", ["a"]}');
  });

  it('compare and nest sets holding strings by value', () => {
    const src = `package t
a := {"x", 1} == {1, "x"}
b := {{"x", 1}} == {{1, "x"}}
c := {"x", "y"} - {"y"}
d := count({s | some s in ["m", "n", "m"]})
e := {{"x"}, {"x"}}
f := {"x"} in {{"x"}, {"y"}}
g := {1} == {"1"}
h := count({["a,\\"b"], ["a", "b"], ["a\\",\\"b"], ["3:abc"], ["\\"3:abc"], [3, "abc"], ["", ""], [""]})
i := count({{"k": "v,\\"w"}, {"k": "v", "w": 1}, {"k": "v", "w": "1"}, {"k:": "v"}})
j := {["x", {"y": {"z"}}]} == {["x", {"y": {"z"}}]}
k := {"a": 1} in {{"a": 1}, {"a": "1"}}`;
    expect(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k'].map((r) => value(src, `data.t.${r}`))).toEqual([true, true, ['x'], 2, [['x']], true, false, 8, 4, true, true]);
  });

  it('collects deny messages as a set (one per distinct message)', () => {
    const src = `package t
deny contains msg if { some c in input; msg := sprintf("container %s: %v", [c.name, c.n]) }
deny contains "fixed" if count(input) > 1
allow if count(deny) == 0`;
    const input = [{ name: 'a', n: 1 }, { name: 'b', n: 2 }, { name: 'a', n: 1 }];
    expect(value(src, 'data.t.deny', input)).toEqual(['container a: 1', 'container b: 2', 'fixed']);
    expect(value(src, 'data.t.allow', input)).toBeUndefined();
    expect(value(src, 'data.t.allow', [])).toBe(true);
  });
});

describe('sprintf', () => {
  it('copies text between verbs and formats verbs as Go does', () => {
    expect(sprintf('no verbs at all', [])).toBe('no verbs at all');
    expect(sprintf('', [])).toBe('');
    expect(sprintf('%s', ['x'])).toBe('x');
    expect(sprintf('a %s b %d c', ['x', 42])).toBe('a x b 42 c');
    expect(sprintf('100%% sure: %v', [true])).toBe('100% sure: true');
    expect(sprintf('[%5s|%-5s|%05d|%+d|%.2f|%.1s]', ['ab', 'cd', 42, 7, 3.14159, 'xyz'])).toBe('[   ab|cd   |00042|+7|3.14|x]');
    expect(sprintf('%s and %s', ['one'])).toBe('one and %!s(MISSING)');
    expect(sprintf('%d', [1, 2])).toBe('1%!(EXTRA json.Number=2)');
    expect(sprintf('ends with %', [])).toBe('ends with %!(NOVERB)');
    expect(sprintf('%10.3f|', [2.5])).toBe('     2.500|');
  });
});
