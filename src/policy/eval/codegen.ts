import type { CallTerm } from '../ast/types.js';
import type { Builtin } from '../builtins/types.js';
import { equal,VALUE_CLASS } from '../value.js';

import { index } from './context.js';
import type { DirectFunction, Operand, PathKey, StepPlan } from './plan.js';
import type { EvalEngine, Step } from './types.js';

/**
 * Why generated code: a closure shared by every expression of one kind sees every site's operands
 * and callees, so V8's inline caches and call targets in it are megamorphic and nothing is inlined.
 * A function generated per expression has its own feedback: property reads along `c.image` stay
 * monomorphic for input of one shape, and the built-in, the next step and the callee's body are
 * fixed call targets V8 can inline. Everything the code refers to is passed in as a parameter;
 * the text holds only generated names, variable slots and constant keys as JSON string literals.
 */

const CLASS = JSON.stringify(VALUE_CLASS);

/** canGenerate tells whether this process lets code be generated from strings. */
export function canGenerate(): boolean {
  try {
    return new Function('return 1')() === 1;
  } catch {
    return false;
  }
}

/** Entry gives the first step of a callee's body (its chain is compiled on the first call). */
export type Entry = (ev: EvalEngine, fn: DirectFunction) => Step;

const stop = (): boolean => true;

/** Gen collects the generated text of one step and the values it refers to. */
class Gen {
  private readonly names: string[] = [];
  private readonly values: unknown[] = [];
  private n = 0;
  readonly out: string[] = [];
  /** variable slots the operands read: all must be bound, checked before anything runs */
  private readonly slots = new Set<number>();
  /** checks that send the whole expression to the general evaluator, made before anything runs */
  private readonly pre: string[] = [];
  /** whether the expression calls a built-in or function (`with` mocks then need the general path) */
  calls = false;
  /** whether an operand reads a rule's value, which `with data...` replacements change */
  private overrides = false;

  /** ref makes a value available to the generated code under a fresh name. */
  ref(v: unknown): string {
    const name = `c${this.names.length}`;
    this.names.push(name);
    this.values.push(v);
    return name;
  }

  tmp(): string {
    return `t${this.n++}`;
  }

  line(s: string): void {
    this.out.push(s);
  }

  /** first adds a check made before the operands' own ones. */
  first(s: string): void {
    this.pre.push(s);
  }

  /** operand emits code that leaves an operand's value in `dst`, or breaks out of `label` when it is undefined. */
  operand(op: Operand, dst: string, label: string): void {
    switch (op.kind) {
      case 'const':
        this.line(`${dst} = ${this.ref(op.value)};`);
        return;
      case 'var':
        this.slots.add(op.slot);
        this.line(`${dst} = frame[${op.slot}];`);
        this.path(op.path, dst, label);
        return;
      case 'input':
        this.line(`${dst} = ev.ctx.input; if (${dst} === undefined) break ${label};`);
        this.path(op.path, dst, label);
        return;
      case 'rule':
        this.overrides = true;
        this.line(`${dst} = ${op.value !== undefined ? this.ref(op.value) : `ev.rules.nodeValue(${this.ref(op.node)})`}; if (${dst} === undefined) break ${label};`);
        this.path(op.path, dst, label);
        return;
      case 'array': {
        const items = this.args(op.items, label);
        this.line(`${dst} = [${items.join(', ')}];`);
        return;
      }
      case 'builtin': {
        this.calls = true;
        const args = this.args(op.args, label);
        this.call(op.builtin, op.call, op.name, args, dst);
        this.line(`if (${dst} === undefined) break ${label};`);
        return;
      }
    }
  }

  /** path emits the reads along constant and bound-variable keys. */
  private path(path: PathKey[], dst: string, label: string): void {
    for (const p of path) {
      if (p.kind === 'key' && typeof p.value === 'string' && p.value !== '__proto__') {
        // a plain object and a constant key: a property read with this site's own inline cache
        const key = JSON.stringify(p.value);
        this.line(
          `if (typeof ${dst} === 'object' && ${dst} !== null && !Array.isArray(${dst}) && ${dst}[${CLASS}] === undefined) { ${dst} = ${dst}[${key}]; if (typeof ${dst} === 'function') ${dst} = undefined; } else ${dst} = index(${dst}, ${key});`,
        );
      } else if (p.kind === 'key') this.line(`${dst} = index(${dst}, ${this.ref(p.value)});`);
      else {
        this.slots.add(p.slot);
        this.line(`${dst} = index(${dst}, frame[${p.slot}]);`);
      }
      this.line(`if (${dst} === undefined) break ${label};`);
    }
  }

  /** args emits operands into fresh locals (undefined breaks out of label: later operands are not evaluated). */
  args(ops: Operand[], label: string): string[] {
    const out: string[] = [];
    for (const op of ops) {
      const v = this.tmp();
      this.line(`let ${v};`);
      this.operand(op, v, label);
      this.line(`if (${v} === undefined) break ${label};`);
      out.push(v);
    }
    return out;
  }

  /** call emits a built-in call; its errors go through the evaluator (undefined, or fatal in strict mode). */
  private call(b: Builtin, t: CallTerm, name: string, args: string[], dst: string): void {
    const a = this.tmp();
    // built-ins never keep their operand array: the one per arity is reused, filled only once
    // every operand is read (nested calls use it too)
    this.line(`const ${a} = ev.scratchArgs(${args.length});`);
    args.forEach((x, i) => this.line(`${a}[${i}] = ${x};`));
    this.line(`try { ${dst} = ${this.ref(b)}.fn(${a}, ev.bctx); } catch (e) { ${dst} = ev.builtinFailed(e, ${this.ref(t)}, ${this.ref(name)}); }`);
  }

  /**
   * build compiles the collected text into a step, or null when the process cannot generate code.
   * What sends an expression to the general evaluator (an unbound variable, a mock, a `with data`
   * replacement) is checked before anything runs, so no built-in is called twice.
   */
  build(next: Step, general: Step): Step | null {
    const pre = [...this.pre];
    for (const s of this.slots) pre.push(`if (frame[${s}] === undefined) return general(ev, frame, k);`);
    if (this.calls) pre.push('if (ev.ctx.mocks !== undefined) return general(ev, frame, k);');
    if (this.overrides) pre.push('if (ev.ctx.overrides !== undefined) return general(ev, frame, k);');
    const params = ['index', 'equal', 'next', 'general', ...this.names];
    const body = `return function step(ev, frame, k) {\n${[...pre, ...this.out].join('\n')}\n};`;
    try {
      const make = new Function(...params, body) as (...a: unknown[]) => Step;
      return make(index, equal, next, general, ...this.values);
    } catch {
      return null;
    }
  }
}

/**
 * generateStep generates the code of a planned expression (any kind but `general` and `indexed`,
 * which are not generated); null when code cannot be generated in this process.
 */
export function generateStep(plan: Exclude<StepPlan, { kind: 'general' | 'indexed' }>, next: Step, general: Step, entry: Entry): Step | null {
  const g = new Gen();
  switch (plan.kind) {
    case 'scan':
      scan(g, plan.slot, plan.domain);
      break;
    case 'iterate':
      iterate(g, plan.slot, plan.key, plan.domain);
      break;
    case 'bind':
      bind(g, plan.slot, plan.value);
      break;
    case 'test':
      g.line('let truth = false;');
      g.line('L: {');
      g.line('let v;');
      g.operand(plan.term, 'v', 'L');
      g.line('if (v !== false) { truth = true; ev.lastValue = v; }');
      g.line('}');
      finish(g, plan.negated);
      break;
    case 'equal':
      g.line('let truth = false;');
      g.line('L: {');
      g.line('let a, b;');
      g.operand(plan.left, 'a', 'L');
      g.operand(plan.right, 'b', 'L');
      g.line('truth = equal(a, b);');
      g.line('}');
      finish(g, plan.negated);
      break;
    case 'call':
    case 'direct':
      call(g, plan, entry);
      finish(g, plan.negated);
      break;
  }
  return g.build(next, general);
}

/** finish decides the expression from `truth` and continues with the next step. */
function finish(g: Gen, negated: boolean): void {
  g.line('ev.tick();');
  g.line(`return truth ${negated ? '===' : '!=='} false ? next(ev, frame, k) : false;`);
}

/** scan: `some x in xs` over an array binds the slot directly for each element. */
function scan(g: Gen, slot: number, domain: Operand): void {
  g.first(`if (frame[${slot}] !== undefined) return general(ev, frame, k);`);
  g.line('let coll;');
  g.line('L: {');
  g.operand(domain, 'coll', 'L');
  g.line('}');
  g.line('if (coll !== undefined && !Array.isArray(coll)) return general(ev, frame, k);');
  g.line('ev.tick();');
  g.line('if (coll === undefined) return false;');
  g.line(`try { for (let j = 0; j < coll.length; j++) { ev.tick(); frame[${slot}] = coll[j]; if (next(ev, frame, k)) return true; } return false; } finally { frame[${slot}] = undefined; }`);
}

/**
 * iterate: `x := xs[k]` over an array, each element in turn bound to x (compared, when x is
 * bound) with k set to its index. A bound k, or a collection that is not an array, takes the
 * general path.
 */
function iterate(g: Gen, slot: number, key: number, domain: Operand): void {
  g.first(`if (frame[${key}] !== undefined) return general(ev, frame, k);`);
  g.line('let coll;');
  g.line('L: {');
  g.operand(domain, 'coll', 'L');
  g.line('}');
  g.line('if (coll !== undefined && !Array.isArray(coll)) return general(ev, frame, k);');
  g.line('ev.tick();');
  g.line('if (coll === undefined) return false;');
  g.line('ev.lastValue = true;');
  g.line(`const cur = frame[${slot}];`);
  g.line('try {');
  g.line('  for (let j = 0; j < coll.length; j++) {');
  g.line(`    ev.tick(); frame[${key}] = j;`);
  g.line(`    if (cur === undefined) frame[${slot}] = coll[j]; else if (!equal(cur, coll[j])) continue;`);
  g.line('    if (next(ev, frame, k)) return true;');
  g.line('  }');
  g.line('  return false;');
  g.line(`} finally { frame[${key}] = undefined; if (cur === undefined) frame[${slot}] = undefined; }`);
}

/** bind: `x := term` / `x = term`, an unbound x takes the value for the rest of the body, a bound x is compared (as unification does). */
function bind(g: Gen, slot: number, value: Operand): void {
  g.line('let v;');
  g.line('L: {');
  g.operand(value, 'v', 'L');
  g.line('}');
  g.line('ev.tick();');
  g.line('if (v === undefined) return false;');
  g.line('ev.lastValue = true;');
  g.line(`const cur = frame[${slot}];`);
  g.line('if (cur !== undefined) return equal(cur, v) ? next(ev, frame, k) : false;');
  g.line(`frame[${slot}] = v;`);
  g.line(`try { return next(ev, frame, k); } finally { frame[${slot}] = undefined; }`);
}

/**
 * call: a user function call. A direct function's operands go straight into the callee's frame
 * and its compiled body is entered directly (steps never run while tracing); any other function
 * goes through the rule evaluator.
 */
function call(g: Gen, plan: Extract<StepPlan, { kind: 'call' | 'direct' }>, entry: Entry): void {
  g.calls = true;
  g.line('let truth = false;');
  g.line('L: {');
  const args = g.args(plan.args, 'L');
  if (plan.kind === 'direct') {
    const fn = plan.fn;
    const F = g.ref(fn);
    g.line(`const callee = new Array(${fn.nslots});`);
    fn.slots.forEach((s, j) => g.line(`callee[${s}] = ${args[j]};`));
    g.line(`const prevRule = ev.currentRule; ev.currentRule = ${F}.rule;`);
    g.line(`const found = (${F}.entry ?? ${g.ref(entry)}(ev, ${F}))(ev, callee, ${g.ref(stop)});`);
    g.line('ev.currentRule = prevRule;');
    g.line(`if (found && ${F}.value !== false) { truth = true; ev.lastValue = ${F}.value; }`);
  } else {
    g.line(`const r = ev.rules.callFunction(${g.ref(plan.node)}, [${args.join(', ')}]);`);
    g.line('if (r !== undefined && r !== false) { truth = true; ev.lastValue = r; }');
  }
  g.line('}');
}
