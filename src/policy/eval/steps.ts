import type { Expr } from '../ast/types.js';
import { equal, type Value } from '../value.js';
import { canGenerate, directFunction, generateStep, type DirectFunction } from './codegen.js';
import { evalIndexed, indexPlan } from './index-scan.js';
import { quickPlan, type QuickPlan, type Reader } from './quick.js';
import { NS, type EvalEngine, type Frame, type Step } from './types.js';

const done: Step = (_ev, _frame, k) => k();
const stop = (): boolean => true;

/**
 * StepCompiler compiles rule bodies into chains of steps, once per body, and keeps them for one
 * engine's compiled modules: generated code (`codegen.ts`) where the expression has a shape it
 * handles, else closures over quick plans (`quick.ts`), else the general evaluator. Walking the AST
 * on every evaluation would cost a megamorphic property read and a dispatch per expression, and
 * re-enter the body loop for every element of a `some x in` loop; the chain does that work once,
 * and each step runs only the path its expression needs. Whatever a step cannot decide at run time
 * (an operand that is not plain, `with` mocks) goes to the general evaluator for that expression,
 * which then continues with the next step.
 *
 * The chains live here, keyed on the body, never on the AST: an engine owns its compiler, and the
 * setting that changes what is compiled (`codegen`) has a cache of its own. Everything else a step
 * depends on (the deadline, strict mode, the step limit, mocks) is read from the evaluation that
 * runs it.
 */
export class StepCompiler {
  private readonly generated = new WeakMap<Expr[], Step[]>();
  private readonly closures = new WeakMap<Expr[], Step[]>();
  /** whether this process lets code be generated from strings, checked on first use */
  private generation: boolean | undefined;

  /** chain returns the steps of a body (compiled on its first evaluation); `steps[i]` runs `body[i..]`. */
  chain(ev: EvalEngine, body: Expr[]): Step[] {
    const generate = ev.opts.codegen !== false && (this.generation ??= canGenerate());
    const cache = generate ? this.generated : this.closures;
    let steps = cache.get(body);
    if (steps === undefined) {
      steps = new Array<Step>(body.length + 1);
      steps[body.length] = done;
      for (let i = body.length - 1; i >= 0; i--) steps[i] = this.compileStep(ev, body, i, steps[i + 1]!, generate);
      cache.set(body, steps);
    }
    return steps;
  }

  private compileStep(ev: EvalEngine, body: Expr[], i: number, next: Step, generate: boolean): Step {
    const general = generalStep(ev, body, i, next);
    if (generate) {
      const g = generateStep(ev, body, i, next, general, (ev2, b) => this.chain(ev2, b));
      if (g) return g;
    }
    const p = quickPlan(ev, body[i]!, body[i + 1]);
    if (!p) return general;
    switch (p.kind) {
      case 4:
        return someInStep(p, next, general);
      case 3:
        return termStep(p, next, general);
      case 0:
        return eqStep(p, next, general);
      case 1:
        return builtinStep(p, next, general);
      case 2: {
        const fast = directFunction(p.node!, p.readers.length);
        return fast ? directCallStep(p, fast, next, general, (ev2, b) => this.chain(ev2, b)) : functionStep(p, next, general);
      }
    }
  }
}

/** generalStep evaluates expression i with the general evaluator (the equality index first). */
function generalStep(ev: EvalEngine, body: Expr[], i: number, next: Step): Step {
  const e = body[i]!;
  const ip = e.kind === 'somein' && i + 1 < body.length ? indexPlan(ev, e, body[i + 1]!) : null;
  if (ip) return (ev2, frame, k) => evalIndexed(ev2, ip, body, i, frame, k);
  return (ev2, frame, k) => ev2.evalExpr(e, frame, () => next(ev2, frame, k));
}

/** `some x in <plain term>` over an array binds the slot directly for each element. */
function someInStep(p: QuickPlan, next: Step, general: Step): Step {
  const slot = p.slot;
  const read = p.readers[0]!;
  return (ev, frame, k) => {
    if (frame[slot] !== undefined) return general(ev, frame, k);
    const coll = read(ev, frame);
    if (coll === NS || (coll !== undefined && !Array.isArray(coll))) return general(ev, frame, k);
    ev.tick();
    if (coll === undefined) return false;
    try {
      for (let j = 0; j < coll.length; j++) {
        ev.tick();
        frame[slot] = coll[j]!;
        if (next(ev, frame, k)) return true;
      }
      return false;
    } finally {
      frame[slot] = undefined;
    }
  };
}

/** a bare term (or `not` term): true unless undefined or false */
function termStep(p: QuickPlan, next: Step, general: Step): Step {
  const read = p.readers[0]!;
  const negated = p.negated;
  return (ev, frame, k) => {
    const v = read(ev, frame);
    if (v === NS) return general(ev, frame, k);
    ev.tick();
    const truth = v !== undefined && v !== false;
    if (truth) ev.lastValue = v;
    return truth !== negated ? next(ev, frame, k) : false;
  };
}

/** `a = b` where both sides are plain values: an equality test */
function eqStep(p: QuickPlan, next: Step, general: Step): Step {
  const ra = p.readers[0]!;
  const rb = p.readers[1]!;
  const negated = p.negated;
  return (ev, frame, k) => {
    const a = ra(ev, frame);
    if (a === NS) return general(ev, frame, k);
    const b = rb(ev, frame);
    if (b === NS) return general(ev, frame, k);
    ev.tick();
    const truth = a !== undefined && b !== undefined && equal(a, b);
    return truth !== negated ? next(ev, frame, k) : false;
  };
}

/**
 * readArgs fills args from the readers; NS when one needs the general path, false when one is
 * undefined (later operands are then not evaluated, as in the general path), true otherwise.
 */
function readArgs(rs: Reader[], args: Value[], ev: EvalEngine, frame: Frame): boolean | typeof NS {
  for (let j = 0; j < rs.length; j++) {
    const v = rs[j]!(ev, frame);
    if (v === NS) return NS;
    if (v === undefined) return false;
    args[j] = v;
  }
  return true;
}

/** a built-in call over plain operands */
function builtinStep(p: QuickPlan, next: Step, general: Step): Step {
  const rs = p.readers;
  const b = p.builtin!;
  const call = p.call!;
  const name = p.name;
  const negated = p.negated;
  return (ev, frame, k) => {
    if (ev.ctx.mocks) return general(ev, frame, k);
    // built-ins never keep their operand array, so one per arity is reused
    const args = ev.scratchArgs(rs.length);
    const got = readArgs(rs, args, ev, frame);
    if (got === NS) return general(ev, frame, k);
    let truth = false;
    if (got) {
      const r = ev.callBuiltin(b, args, call, name);
      truth = r !== undefined && r !== false;
      if (truth) ev.lastValue = r!;
    }
    ev.tick();
    return truth !== negated ? next(ev, frame, k) : false;
  };
}

/** a user function call over plain operands, through the rule evaluator */
function functionStep(p: QuickPlan, next: Step, general: Step): Step {
  const rs = p.readers;
  const node = p.node!;
  const negated = p.negated;
  return (ev, frame, k) => {
    if (ev.ctx.mocks) return general(ev, frame, k);
    const args = new Array<Value>(rs.length);
    const got = readArgs(rs, args, ev, frame);
    if (got === NS) return general(ev, frame, k);
    let truth = false;
    if (got) {
      const r = ev.rules.callFunction(node, args);
      truth = r !== undefined && r !== false;
      if (truth) ev.lastValue = r!;
    }
    ev.tick();
    return truth !== negated ? next(ev, frame, k) : false;
  };
}

/** a call of a direct function: operands go straight into the callee's frame, no operand array */
function directCallStep(p: QuickPlan, fn: DirectFunction, next: Step, general: Step, chain: (ev: EvalEngine, body: Expr[]) => Step[]): Step {
  const rs = p.readers;
  const { rule, slots, nslots, value } = fn;
  const negated = p.negated;
  return (ev, frame, k) => {
    if (ev.ctx.mocks) return general(ev, frame, k);
    // the parameters are distinct variables (directFunction checks), each takes its operand
    const callee: Frame = new Array(nslots);
    let bound = true;
    for (let j = 0; j < rs.length; j++) {
      const v = rs[j]!(ev, frame);
      if (v === NS) return general(ev, frame, k);
      if (v === undefined) {
        bound = false;
        break;
      }
      callee[slots[j]!] = v;
    }
    let truth = false;
    if (bound) {
      const prevRule = ev.currentRule;
      ev.currentRule = rule;
      // steps never run while tracing, so the callee's steps can be entered directly
      const found = (fn.entry ??= chain(ev, rule.body)[0]!)(ev, callee, stop);
      ev.currentRule = prevRule;
      truth = found && value !== false;
      if (truth) ev.lastValue = value;
    }
    ev.tick();
    return truth !== negated ? next(ev, frame, k) : false;
  };
}
