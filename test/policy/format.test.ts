import { describe, expect, it } from 'vitest';
import { formatModule, PolicyEngine } from '../../src/policy/index.js';

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

  it('formats v0 modules into v1 syntax with the same meaning', () => {
    const v0 = 'package k\nviolation[msg] {\n  input.bad\n  msg := "bad"\n}\n';
    const out = formatModule(v0, 'k.rego', 0);
    expect(out).toContain('violation contains msg if {');
    const e = new PolicyEngine();
    e.addModule('k.rego', out);
    expect(e.evaluate('data.k.violation', { input: { bad: true } })[0]!.expressions[0]!.value).toBeDefined();
  });
});
