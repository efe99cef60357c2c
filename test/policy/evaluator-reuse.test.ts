import { describe, expect, it } from 'vitest';

import { PolicyEngine, type RegoError, toJSON, type Value } from '../../src/policy/index.js';

/**
 * A prepared query keeps its evaluator between evaluations and resets it. Nothing one evaluation
 * set may reach the next: options, input, rule values, time, a failure half way.
 */
const SRC = `package t
import rego.v1

n := to_number(input.s)
p := 1 if input.a
p := 2 if input.b
now := time.now_ns()
deny contains msg if { some c in input.cs; not startswith(c, "ok"); msg := sprintf("bad %v", [c]) }
`;

function engine(): PolicyEngine {
  const e = new PolicyEngine();
  e.addModule('t.rego', SRC);
  return e;
}

const value = (rows: Array<{ expressions: Array<{ value: unknown }> }>) => rows.map((r) => toJSON(r.expressions[0]!.value as Value));

describe('a prepared query used again', () => {
  it('takes each evaluation’s options, not the last one’s', () => {
    const q = engine().prepare('data.t.n');
    expect(() => q.eval({ input: { s: 'x' }, strict: true })).toThrow(/to_number/);
    expect(value(q.eval({ input: { s: 'x' } }))).toEqual([]);
    const errors: RegoError[] = [];
    expect(value(q.eval({ input: { s: 'x' }, builtinErrors: errors }))).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(value(q.eval({ input: { s: '7' }, stepLimit: 1000 }))).toEqual([7]);
    expect(() => engine().prepare('data.t.deny').eval({ input: { cs: Array.from({ length: 50 }, (_, i) => `c${i}`) }, stepLimit: 20 })).toThrow(/step limit/);
  });

  it('answers from its own input and rule values after one that threw', () => {
    const q = engine().prepare('data.t.p');
    expect(() => q.eval({ input: { a: true, b: true } })).toThrow(/complete rules must not produce multiple outputs/);
    expect(value(q.eval({ input: { b: true } }))).toEqual([2]);
    expect(value(q.eval({ input: { a: true } }))).toEqual([1]);
    const deny = engine().prepare('data.t.deny');
    expect(() => deny.eval({ input: { cs: ['x'] }, stepLimit: 3 })).toThrow(/step limit/);
    expect(value(deny.eval({ input: { cs: ['x', 'ok'] } }))).toEqual([['bad x']]);
    expect(value(deny.eval({ input: { cs: ['ok'] } }))).toEqual([[]]);
  });

  it('reads the clock again for each evaluation', async () => {
    const q = engine().prepare('data.t.now');
    const [a] = value(q.eval({ input: {} })) as [number];
    await new Promise((r) => setTimeout(r, 5));
    const [b] = value(q.eval({ input: {} })) as [number];
    expect(b).toBeGreaterThan(a);
  });

  it('keeps nothing of the last input while idle', () => {
    const q = engine().prepare('data.t.deny');
    const input = { cs: ['x'] };
    q.eval({ input });
    const idle = (q as unknown as { idle: { ctx: { input: unknown; cache: Map<unknown, unknown> } } }).idle;
    expect(idle.ctx.input).toBeUndefined();
    expect(idle.ctx.cache.size).toBe(0);
  });
});
