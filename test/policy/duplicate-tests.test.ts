import { describe, expect, it } from 'vitest';

import { PolicyEngine } from '../../src/policy/index.js';

// `opa test` runs each definition of a repeated test name as its own test (`NAME#01`, ...), so a
// failing body cannot hide behind a passing one. The gatekeeper-library's unit tests repeat names
// (the init-container copies of the container tests), which is how this was found.
const repeated = `package dup

test_same if { 1 == 1 }

test_same if { 1 == 2 }

test_same if { 2 == 2 }

todo_test_later if { false }

todo_test_later if { false }

p.test_nested if { true }

p.test_nested if { false }
`;

function testRules(engine: PolicyEngine): string[] {
  return engine
    .rules()
    .map((r) => r.path.join('.'))
    .filter((p) => /(^|\.)(test_|todo_test_)/.test(p))
    .sort();
}

describe('duplicate test names under the test runner', () => {
  it('gives the second and later definitions the suffixes #01, #02, as opa test does', () => {
    const engine = new PolicyEngine({ testRunner: true });
    engine.addModule('dup_test.rego', repeated);
    expect(testRules(engine)).toEqual(['dup.p.test_nested', 'dup.p.test_nested#01', 'dup.test_same', 'dup.test_same#01', 'dup.test_same#02', 'dup.todo_test_later']);
    const value = (q: string): unknown => engine.evaluate(q)[0]?.expressions[0]?.value;
    expect(value('data.dup.test_same')).toBe(true);
    // the second body is false: it is undefined on its own instead of being masked by the others
    expect(engine.evaluate('data.dup["test_same#01"]')).toEqual([]);
    expect(value('data.dup["test_same#02"]')).toBe(true);
    expect(engine.evaluate('data.dup.p["test_nested#01"]')).toEqual([]);
  });

  it('leaves rule names alone outside the test runner', () => {
    const engine = new PolicyEngine();
    engine.addModule('dup_test.rego', repeated);
    expect(testRules(engine)).toEqual(['dup.p.test_nested', 'dup.test_same', 'dup.todo_test_later']);
    expect(engine.evaluate('data.dup.test_same')[0]?.expressions[0]?.value).toBe(true);
  });

  it('counts per package across files', () => {
    const engine = new PolicyEngine({ testRunner: true });
    engine.addModule('a_test.rego', 'package dup\n\ntest_x if { true }\n');
    engine.addModule('b_test.rego', 'package dup\n\ntest_x if { false }\n');
    engine.addModule('c_test.rego', 'package other\n\ntest_x if { true }\n');
    expect(testRules(engine)).toEqual(['dup.test_x', 'dup.test_x#01', 'other.test_x']);
  });
});
