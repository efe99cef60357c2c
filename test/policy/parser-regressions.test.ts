import { describe, expect,it } from 'vitest';

import { PolicyEngine } from '../../src/policy/index.js';

describe('parser regressions', () => {
  it('negates an expression that starts with an array literal', () => {
    const e = new PolicyEngine();
    e.addModule('n.rego', 'package n\na := 1\nb := 2\nok if not [a, b] == [2, 1]\nnot_ok if not [a, b] == [1, 2]\n');
    expect(e.prepare('data.n.ok').eval()[0]!.expressions[0]!.value).toBe(true);
    expect(e.prepare('data.n.not_ok').eval()).toEqual([]);
  });
});
