import { describe, expect, it } from 'vitest';

import type { Expr, Term } from '../../src/policy/ast/types.js';
import type { StepCompiler } from '../../src/policy/eval/steps.js';
import { PolicyEngine, type RegoError, toJSON, type Value } from '../../src/policy/index.js';

/**
 * Rule bodies are compiled once and reused by every later evaluation of the engine. What a step
 * does must still follow the options of the evaluation running it, and the compiled code must
 * belong to its engine: never kept on the (shared) AST.
 */
const SRC = `package t
import rego.v1
deny contains msg if {
  some c in input.containers
  n := to_number(c.cpu)
  n > 2
  msg := sprintf("%s wants %v cpus", [c.name, n])
}
big := count(numbers.range(1, input.n))
allow if count(deny) == 0`;

const input = { containers: [{ name: 'a', cpu: '4' }, { name: 'b', cpu: 'lots' }, { name: 'c', cpu: '1' }], n: 50 };

function values(q: ReturnType<PolicyEngine['prepare']>, opts: Record<string, unknown> = {}): unknown[] {
  return q.eval({ input, ...opts }).map((r) => toJSON(r.expressions[0]!.value as Value));
}

/** bodies lists every rule body (and else body) of the engine's compiled modules. */
function bodies(e: PolicyEngine): Expr[][] {
  const out: Expr[][] = [];
  const visitTerm = (t: Term): void => {
    if (t.type === 'arraycompr' || t.type === 'setcompr' || t.type === 'objectcompr') visit(t.body);
  };
  const visit = (body: Expr[]): void => {
    out.push(body);
    for (const x of body) {
      if (x.kind === 'every') visit(x.body);
      if (x.kind === 'term' && x.term.type === 'call') x.term.args.forEach(visitTerm);
      if (x.kind === 'term') visitTerm(x.term);
    }
  };
  for (const m of e.modules()) for (const r of m.rules) [r.body, ...r.elses.map((x) => x.body)].forEach(visit);
  return out;
}

describe('compiled rule bodies and evaluation options', () => {
  it('follow the options of each evaluation, whichever compiled the body', () => {
    // each order: the first evaluation compiles the bodies, the later ones reuse them
    const orders: Array<Array<'plain' | 'strict' | 'limit' | 'deadline' | 'cancel' | 'errors'>> = [
      ['plain', 'strict', 'limit', 'deadline', 'cancel', 'errors', 'plain'],
      ['strict', 'plain', 'errors', 'strict'],
      ['limit', 'plain', 'cancel', 'plain'],
      ['deadline', 'errors', 'plain'],
    ];
    for (const order of orders) {
      const e = new PolicyEngine();
      e.addModule('t.rego', SRC);
      const deny = e.prepare('data.t.deny');
      for (const what of order) {
        switch (what) {
          case 'plain':
            // `to_number("lots")` is an error: undefined, so container b is skipped
            expect(values(deny)).toEqual([['a wants 4 cpus']]);
            break;
          case 'strict':
            expect(() => values(deny, { strict: true })).toThrow(/to_number/);
            break;
          case 'limit':
            expect(() => values(deny, { stepLimit: 5 })).toThrow(/step limit of 5/);
            break;
          case 'deadline':
            expect(() => values(deny, { deadline: Date.now() - 1000, stepLimit: 100_000 })).not.toThrow();
            // the deadline is checked every 1024 steps: a long loop meets it
            expect(() => values(e.prepare('data.t.big'), { deadline: Date.now() - 1000, input: { n: 5000, containers: [] } })).toThrow(/deadline/);
            break;
          case 'cancel': {
            const ac = new AbortController();
            ac.abort();
            expect(() => values(e.prepare('data.t.big'), { signal: ac.signal, input: { n: 5000, containers: [] } })).toThrow(/cancelled/);
            break;
          }
          case 'errors': {
            const errors: RegoError[] = [];
            expect(values(deny, { builtinErrors: errors })).toEqual([['a wants 4 cpus']]);
            expect(errors.map((x) => x.message)).toEqual([expect.stringMatching(/to_number: .*invalid syntax/)]);
            break;
          }
        }
      }
    }
  });

  it('keep built-in limits per engine when two engines compile the same source', () => {
    const small = new PolicyEngine({ limits: { maxElements: 10 } });
    const normal = new PolicyEngine();
    for (const e of [small, normal]) e.addModule('t.rego', SRC);
    const q = (e: PolicyEngine) => e.prepare('data.t.big');
    // alternate: whichever engine evaluates first must not decide for the other
    expect(values(q(small))).toEqual([]);
    expect(values(q(normal))).toEqual([50]);
    expect(values(q(small))).toEqual([]);
    expect(values(q(normal), { strict: true })).toEqual([50]);
    expect(() => values(q(small), { strict: true })).toThrow(/numbers\.range: result would have 50 elements; the limit is 10/);
  });

  it('run on the tier each evaluation asks for, whichever came first', () => {
    const e = new PolicyEngine();
    e.addModule('t.rego', SRC);
    const deny = e.prepare('data.t.deny');
    const compiler = (e as unknown as { compiled: { steps: StepCompiler } }).compiled.steps;
    const body = e.modules()[0]!.rules.find((r) => String((r.ref[0] as { value: unknown }).value) === 'deny')!.body;
    // the general evaluator first (as tracing does): nothing is compiled
    expect(values(deny, { compiled: false })).toEqual([['a wants 4 cpus']]);
    expect(values(deny, { tracer: () => {} })).toEqual([['a wants 4 cpus']]);
    expect(compiler.kinds(body)).toBeUndefined();
    // then the compiled tier: the body is compiled for it, and later general runs leave it be
    expect(values(deny)).toEqual([['a wants 4 cpus']]);
    expect(compiler.kinds(body)).toEqual(['scan', 'bind', 'test', 'bind']);
    expect(values(deny, { compiled: false })).toEqual([['a wants 4 cpus']]);
    expect(compiler.kinds(body)).toEqual(['scan', 'bind', 'test', 'bind']);
    // another engine over the same source compiles its own
    const other = new PolicyEngine();
    other.addModule('t.rego', SRC);
    expect(values(other.prepare('data.t.deny'))).toEqual([['a wants 4 cpus']]);
    const otherCompiler = (other as unknown as { compiled: { steps: StepCompiler } }).compiled.steps;
    expect(otherCompiler).not.toBe(compiler);
    expect(otherCompiler.kinds(body)).toBeUndefined();
  });

  it('keep the compiled code out of the AST', () => {
    const e = new PolicyEngine();
    e.addModule('t.rego', SRC);
    expect(values(e.prepare('data.t.allow'))).toEqual([]);
    const all = bodies(e);
    expect(all.length).toBe(3);
    for (const body of all) expect(Object.keys(body)).toEqual(body.map((_, i) => String(i)));
  });
});
