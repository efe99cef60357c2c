import { describe, expect, it } from 'vitest';

import { EvalCancelError, PolicyEngine, RegoError } from '../../src/policy/index.js';

function engine(src: string): PolicyEngine {
  const e = new PolicyEngine();
  e.addModule('p.rego', src);
  return e;
}

describe('bad input', () => {
  it('stops a policy that runs past its deadline', () => {
    const e = engine(`package t
p := count([x | some a in numbers.range(1, 100000); some b in numbers.range(1, 100000); x := a + b])`);
    const t0 = Date.now();
    expect(() => e.prepare('data.t.p', { timeoutMs: 200 }).eval({})).toThrow(EvalCancelError);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('stops a policy at its step limit', () => {
    const e = engine('package t\np := count([x | some x in numbers.range(1, 1000000)])');
    expect(() => e.prepare('data.t.p', { stepLimit: 10_000 }).eval({})).toThrow(/step limit/);
  });

  it('honours cancellation through an AbortSignal', () => {
    const e = engine('package t\np := count([x | some a in numbers.range(1, 100000); some b in numbers.range(1, 100000); x := a])');
    const ac = new AbortController();
    ac.abort();
    expect(() => e.prepare('data.t.p', { signal: ac.signal }).eval({})).toThrow(/cancelled/);
  });

  it('handles input nested 10,000 levels deep without crashing', () => {
    let text = '1';
    for (let i = 0; i < 10_000; i++) text = `{"a":${text}}`;
    const input = JSON.parse(text) as unknown;
    const e = engine('package t\np if input.a.a.a\nq := json.marshal(input)\nr := count([x | walk(input, [_, x])])\ns := input == input');
    expect(e.prepare('data.t.p').eval({ input })[0]!.expressions[0]!.value).toBe(true);
    // Serialising or comparing the whole document either works or fails with a clear error.
    for (const query of ['data.t.q', 'data.t.s']) {
      try {
        e.prepare(query, { timeoutMs: 20_000 }).eval({ input });
      } catch (err) {
        expect(err).toBeInstanceOf(RegoError);
      }
    }
    // walk visits every node without recursion (paths grow with depth, so a shallower document keeps memory small)
    let shallower = '1';
    for (let i = 0; i < 2_000; i++) shallower = `{"a":${shallower}}`;
    expect(e.prepare('data.t.r', { timeoutMs: 20_000 }).eval({ input: JSON.parse(shallower) })[0]!.expressions[0]!.value).toBe(2_001);
  }, 60_000);

  it('evaluates against a 50 MB input without converting it', () => {
    const items = Array.from({ length: 250_000 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ["a", "b"], owner: { team: `t${i % 7}` }, pad: "x".repeat(130) }));
    const text = JSON.stringify({ items });
    expect(text.length).toBeGreaterThan(50 * 1024 * 1024);
    const input = JSON.parse(text) as unknown;
    const e = engine('package t\nn := count(input.items)\nfirst := input.items[0].name');
    const t0 = Date.now();
    expect(e.prepare('data.t.n').eval({ input })[0]!.expressions[0]!.value).toBe(250_000);
    expect(e.prepare('data.t.first').eval({ input })[0]!.expressions[0]!.value).toBe('item-0');
    expect(Date.now() - t0).toBeLessThan(5000);
  }, 60_000);

  it('rejects recursive rules at compile time', () => {
    expect(() => engine('package t\na if b\nb if c\nc if a').prepare('data.t.a')).toThrow(/recursive/);
  });
});
