import type { Expr, RefTerm } from '../ast/types.js';
import type { Builtin } from '../builtins/types.js';
import type { RuleNode } from '../compile/tree.js';
import type { Value } from '../value.js';

import { type Callees, canGenerate, generateHead, generateStep } from './codegen.js';
import { evalIndexed } from './index-scan.js';
import { type Operand, type PlanContext, planStep, type StepKind, type StepPlan } from './plan.js';
import { dataRule } from './rules.js';
import type { Step } from './types.js';

const done: Step = (_ev, _frame, k) => k();

/**
 * StepCompiler is the compiled tier: it turns each rule body, on its first evaluation, into a chain
 * of steps, one per expression, each calling the next. An expression is planned once (`plan.ts`:
 * its kind and how each operand is read) and its step is generated code (`codegen.ts`); the
 * `indexed` scan runs through the equality index (`index-scan.ts`), and what is not compiled
 * (`general`) through the general evaluator, which then continues with the next step. Walking the
 * AST on every evaluation would cost a megamorphic property read and a dispatch per expression,
 * and re-enter the body loop for every element of a `some x in` loop; the chain does that work
 * once, and each step runs only the path its expression needs. Whatever a step cannot decide at
 * run time (an unbound operand, `with` mocks, a collection that is not an array) goes to the
 * general evaluator for that expression before anything runs.
 *
 * An engine makes one with every compile of its modules, and the chains live here, in a WeakMap
 * keyed on the body, never on the AST. What a chain depends on is fixed for the compiler: the rule
 * tree, the base data and the built-ins it is made with, and whether this process lets code be
 * generated (without, every expression but the indexed scan runs on the general evaluator). The
 * options of an evaluation (deadline, strict mode, step limit, mocks) are read from the evaluation
 * that runs a step, never compiled in; an evaluation that must not use the compiled tier (tracing,
 * `compiled: false`) never asks for a chain.
 */
export class StepCompiler implements PlanContext {
  private readonly chains = new WeakMap<Expr[], Step[]>();
  private readonly kindsOf = new WeakMap<Step[], StepKind[]>();
  /** whether this process lets code be generated from strings (`--disallow-code-generation-from-strings`) */
  readonly generates = canGenerate();
  private readonly callees: Callees = {
    entry: (_ev, fn) => (fn.entry = this.chain(fn.rule.body)[0]!),
    compr: (_ev, c) => (c.entry = this.comprehension(c)),
  };

  constructor(
    private readonly root: RuleNode,
    private readonly data: Value,
    private readonly builtins: (name: string) => Builtin | undefined,
  ) {}

  /** chain returns the steps of a body, compiled on its first use: `steps[i]` runs `body[i..]`. */
  chain(body: Expr[]): Step[] {
    let steps = this.chains.get(body);
    if (steps === undefined) {
      steps = this.build(body, done);
      this.chains.set(body, steps);
    }
    return steps;
  }

  /**
   * comprehension compiles the body of an array or set comprehension the compiled tier reads, to a
   * chain of its own that ends by adding the head's value to `ev.sink` (one per operand site,
   * held by the plan, which is this compiler's).
   */
  private comprehension(c: Extract<Operand, { kind: 'compr' }>): Step {
    const term = c.term;
    const general: Step = (ev, frame) =>
      ev.evalTerm(term.head, frame, (v) => {
        const s = ev.sink!;
        if (Array.isArray(s)) s.push(v);
        else s.add(v);
        return false;
      });
    const last = (this.generates && generateHead(c.head, general, this.callees)) || general;
    return this.build(term.body, last)[0]!;
  }

  /** build compiles a body into steps ending with `last`. */
  private build(body: Expr[], last: Step): Step[] {
    const steps = new Array<Step>(body.length + 1);
    const kinds = new Array<StepKind>(body.length);
    steps[body.length] = last;
    for (let i = body.length - 1; i >= 0; i--) {
      const plan = planStep(this, body, i);
      const e = body[i]!;
      const after = steps[i + 1]!;
      const general: Step = (ev, frame, k) => ev.evalExpr(e, frame, () => after(ev, frame, k));
      // a plan with hoisted operands stands for the expressions that hoist them as well
      const next = steps[i + (plan.span ?? 1)]!;
      const step = this.step(plan, e, next, steps[i + 2], general);
      steps[i] = step;
      kinds[i] = step === general ? 'general' : plan.kind;
    }
    this.kindsOf.set(steps, kinds);
    return steps;
  }

  /** @internal kinds lists the kind of each step of a body compiled already (tests check what runs where). */
  kinds(body: Expr[]): StepKind[] | undefined {
    const steps = this.chains.get(body);
    return steps && this.kindsOf.get(steps);
  }

  private step(plan: StepPlan, e: Expr, next: Step, after: Step | undefined, general: Step): Step {
    switch (plan.kind) {
      case 'general':
        return general;
      case 'skip':
        return (ev, frame, k) => {
          ev.tick();
          return next(ev, frame, k);
        };
      case 'indexed': {
        const index = plan.index;
        // an indexed plan always has the comparison after it: `after` is the step past that
        return (ev, frame, k) => evalIndexed(ev, index, e, next, after!, frame, k);
      }
      default:
        return (this.generates && generateStep(plan, next, general, this.callees)) || general;
    }
  }

  dataRule(t: RefTerm): { node: RuleNode; depth: number } | null {
    return dataRule(this.root, this.data, t);
  }

  funcNode(path: string[]): RuleNode | undefined {
    return this.root.lookup(path);
  }

  builtin(name: string): Builtin | undefined {
    return this.builtins(name);
  }
}
