import type { StepCompiler } from '../../src/policy/eval/steps.js';
import { formatValue, type PolicyEngine, type Value } from '../../src/policy/index.js';

/** What one rule gives for one input: its values, formatted and joined, or the error it raised. */
export type Outcome = { value: string } | { error: string };

/** outcome evaluates `data.t.RULE` with the engine's current tier and options, never throwing. */
export function outcome(e: PolicyEngine, rule: string, input: unknown, opts: Record<string, unknown>): Outcome {
  try {
    const rows = e.prepare(`data.t.${rule}`, opts).eval({ input });
    return { value: rows.map((r) => formatValue(r.expressions[0]!.value as Value)).join(' | ') };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** ruleNames lists the rules a `package t` source defines, each once, in order. */
export function ruleNames(src: string): string[] {
  return [...src.matchAll(/^([a-z_]+) (?:contains|if|:=)/gm)].map((m) => m[1]!).filter((r, i, a) => a.indexOf(r) === i);
}

/** stepCompiler reaches the engine's compiled tier, to ask which expressions it compiled. */
export function stepCompiler(e: PolicyEngine): StepCompiler {
  return (e as unknown as { compiled: { steps: StepCompiler } }).compiled.steps;
}
