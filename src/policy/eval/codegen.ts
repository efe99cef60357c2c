import type { CallTerm } from '../ast/types.js';
import type { Builtin } from '../builtins/types.js';
import { equal, RSet, VALUE_CLASS } from '../value.js';

import { index, iterKeys } from './context.js';
import type { DirectFunction, Hoisted, Operand, PathKey, StepPlan } from './plan.js';
import type { EvalEngine, Step } from './types.js';

/**
 * Why generated code: a closure shared by every expression of one kind sees every site's operands
 * and callees, so V8's inline caches and call targets in it are megamorphic and nothing is inlined.
 * A function generated per expression has its own feedback: property reads along `c.image` stay
 * monomorphic for input of one shape, and the built-in, the next step and the callee's body are
 * fixed call targets V8 can inline. Everything the code refers to is passed in as a parameter;
 * the text holds only generated names, variable slots and constant keys as JSON string literals.
 *
 * Every step has the same shape: checks that send the whole expression to the general evaluator
 * (made before anything runs), then the operands read inside a block `L` (an undefined one leaves
 * it), then the decision. A path key that iterates opens a loop around everything read after it:
 * an undefined operand then goes on with the next key, and each binding that decides the
 * expression true continues the body from inside the loop (or, negated, ends the search).
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

/** ComprEntry gives the first step of a comprehension's body, whose chain ends by adding the head to `ev.sink`. */
export type ComprEntry = (ev: EvalEngine, c: Extract<Operand, { kind: 'compr' }>) => Step;

/** Callees are what generated steps enter that is compiled on first use. */
export interface Callees {
  entry: Entry;
  compr: ComprEntry;
}

const stop = (): boolean => true;

/** Gen collects the generated text of one step and the values it refers to. */
class Gen {
  private readonly names: string[] = [];
  private readonly values: unknown[] = [];
  private n = 0;
  readonly out: string[] = [];
  /** variable slots the operands read: all must be bound, checked before anything runs */
  private readonly slots = new Set<number>();
  /** variable slots the operands iterate over: all must be unbound, checked before anything runs */
  private readonly iters = new Set<number>();
  /** hoisted slots whose values are in locals */
  private readonly locals = new Map<number, string>();
  /** checks that send the whole expression to the general evaluator, made before anything runs */
  private readonly pre: string[] = [];
  /** what an undefined operand does: leave block L, or go on with the innermost loop's next key */
  private fail = 'break L;';
  /** the text that closes each loop opened, innermost last */
  private readonly loops: string[] = [];
  /** whether the expression calls a built-in or function (`with` mocks then need the general path) */
  calls = false;
  /** whether an operand reads a rule's value, which `with data...` replacements change */
  private overrides = false;

  constructor(readonly callees: Callees) {}

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

  /** iterating tells whether a loop is open: the decision is then made once per binding. */
  get iterating(): boolean {
    return this.loops.length > 0;
  }

  /**
   * hoisted reads the operands moved out of a negated expression into locals, in order; an
   * undefined one makes the body fail there, as the binding expression it replaces would.
   */
  hoisted(hs: Hoisted[]): void {
    this.fail = '{ ev.tick(); return false; }';
    for (const h of hs) {
      const v = this.tmp();
      this.line(`let ${v};`);
      this.operand(h.value, v);
      this.line(`if (${v} === undefined) ${this.fail}`);
      this.locals.set(h.slot, v);
    }
    this.fail = 'break L;';
  }

  /** operand emits code that leaves an operand's value in `dst`, or fails (see `fail`) when it is undefined. */
  operand(op: Operand, dst: string): void {
    switch (op.kind) {
      case 'const':
        this.line(`${dst} = ${this.ref(op.value)};`);
        return;
      case 'var': {
        const local = this.locals.get(op.slot);
        if (local !== undefined) this.line(`${dst} = ${local};`);
        else {
          if (!this.iters.has(op.slot)) this.slots.add(op.slot);
          this.line(`${dst} = frame[${op.slot}];`);
        }
        this.path(op.path, dst);
        return;
      }
      case 'input':
        this.line(`${dst} = ev.ctx.input; if (${dst} === undefined) ${this.fail}`);
        this.path(op.path, dst);
        return;
      case 'rule':
        this.overrides = true;
        this.line(`${dst} = ${op.value !== undefined ? this.ref(op.value) : `ev.rules.nodeValue(${this.ref(op.node)})`}; if (${dst} === undefined) ${this.fail}`);
        this.path(op.path, dst);
        return;
      case 'array': {
        const items = this.args(op.items);
        this.line(`${dst} = [${items.join(', ')}];`);
        return;
      }
      case 'builtin': {
        this.calls = true;
        const args = this.args(op.args);
        this.call(op.builtin, op.call, op.name, args, dst);
        this.line(`if (${dst} === undefined) ${this.fail}`);
        this.path(op.path, dst);
        return;
      }
      case 'compr': {
        // the body runs in this frame; its last step adds each value of the head to ev.sink
        const C = this.ref(op);
        const out = this.tmp();
        this.line(`const ${out} = ${op.term.type === 'setcompr' ? `new ${this.ref(RSet)}()` : '[]'};`);
        this.line(`{ const saved = ev.sink; ev.sink = ${out}; try { (${C}.entry ?? ${this.ref(this.callees.compr)}(ev, ${C}))(ev, frame, ${this.ref(stop)}); } finally { ev.sink = saved; } }`);
        this.line(`${dst} = ${out};`);
        this.path(op.path, dst);
        return;
      }
    }
  }

  /** path emits the reads along constant, bound-variable and iterated keys. */
  private path(path: PathKey[], dst: string): void {
    for (const p of path) {
      if (p.kind === 'iter') {
        this.loop(dst, p.slot, undefined);
        continue;
      }
      if (p.kind === 'operand') {
        const key = this.tmp();
        this.line(`let ${key};`);
        this.operand(p.key, key);
        this.line(`if (${key} === undefined) ${this.fail}`);
        this.line(`${dst} = index(${dst}, ${key});`);
      } else if (p.kind === 'key' && typeof p.value === 'string' && p.value !== '__proto__') {
        // a plain object and a constant key: a property read with this site's own inline cache
        const key = JSON.stringify(p.value);
        this.line(
          `if (typeof ${dst} === 'object' && ${dst} !== null && !Array.isArray(${dst}) && ${dst}[${CLASS}] === undefined) { ${dst} = ${dst}[${key}]; if (typeof ${dst} === 'function') ${dst} = undefined; } else ${dst} = index(${dst}, ${key});`,
        );
      } else if (p.kind === 'key') this.line(`${dst} = index(${dst}, ${this.ref(p.value)});`);
      else {
        const local = this.locals.get(p.slot);
        if (local === undefined && !this.iters.has(p.slot)) this.slots.add(p.slot);
        this.line(`${dst} = index(${dst}, ${local ?? `frame[${p.slot}]`});`);
      }
      this.line(`if (${dst} === undefined) ${this.fail}`);
    }
  }

  /**
   * loop opens a loop over the collection in `coll`, as the general evaluator walks one: an
   * array's indexes, a set's elements, an object's keys (sorted); nothing for other values. Each
   * key is bound to `keySlot` (and each element to `valueSlot`, for `some x in`), and `coll` holds
   * the element for what is read after. The slots are unbound again when the loop ends, however.
   */
  loop(coll: string, keySlot: number | undefined, valueSlot: number | undefined): void {
    const n = this.n++;
    const [c, ks, len, j, key] = [`c_${n}`, `ks_${n}`, `len_${n}`, `j_${n}`, `key_${n}`];
    if (keySlot !== undefined) {
      this.iters.add(keySlot);
      this.first(`if (frame[${keySlot}] !== undefined) return general(ev, frame, k);`);
    }
    if (valueSlot !== undefined) this.first(`if (frame[${valueSlot}] !== undefined) return general(ev, frame, k);`);
    this.line(`const ${c} = ${coll}; const ${ks} = iterKeys(${c}); const ${len} = ${ks} === null ? ${c}.length : ${ks}.length;`);
    this.line('ev.tick();');
    this.line('try {');
    this.line(`I${n}: for (let ${j} = 0; ${j} < ${len}; ${j}++) {`);
    this.line(`ev.tick(); const ${key} = ${ks} === null ? ${j} : ${ks}[${j}]; ${coll} = ${ks} === null ? ${c}[${j}] : index(${c}, ${key});`);
    if (keySlot !== undefined) this.line(`frame[${keySlot}] = ${key};`);
    if (valueSlot !== undefined) this.line(`frame[${valueSlot}] = ${coll};`);
    const unbind = [keySlot, valueSlot].filter((s) => s !== undefined).map((s) => `frame[${s}] = undefined;`);
    this.loops.push(`}\n} finally { ${unbind.join(' ')} }`);
    this.fail = `continue I${n};`;
  }

  /** close closes every loop opened, innermost first. */
  close(): void {
    while (this.loops.length) this.line(this.loops.pop()!);
    this.fail = 'break L;';
  }

  /** args emits operands into fresh locals (an undefined one fails: later operands are not evaluated). */
  args(ops: Operand[]): string[] {
    const out: string[] = [];
    for (const op of ops) {
      const v = this.tmp();
      this.line(`let ${v};`);
      this.operand(op, v);
      this.line(`if (${v} === undefined) ${this.fail}`);
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
   * What sends an expression to the general evaluator (a variable bound or not as planned, a mock,
   * a `with data` replacement) is checked before anything runs, so no built-in is called twice.
   */
  build(next: Step, general: Step): Step | null {
    const pre = [...this.pre];
    for (const s of this.slots) pre.push(`if (frame[${s}] === undefined) return general(ev, frame, k);`);
    if (this.calls) pre.push('if (ev.ctx.mocks !== undefined) return general(ev, frame, k);');
    if (this.overrides) pre.push('if (ev.ctx.overrides !== undefined) return general(ev, frame, k);');
    const params = ['index', 'iterKeys', 'equal', 'next', 'general', ...this.names];
    const body = `return function step(ev, frame, k) {\n${[...pre, ...this.out].join('\n')}\n};`;
    try {
      const make = new Function(...params, body) as (...a: unknown[]) => Step;
      return make(index, iterKeys, equal, next, general, ...this.values);
    } catch {
      return null;
    }
  }
}

/** Generated is a plan the code generator handles (all but `general`, `indexed` and `skip`). */
export type Generated = Exclude<StepPlan, { kind: 'general' | 'indexed' | 'skip' }>;

/**
 * generateStep generates the code of a planned expression; null when code cannot be generated in
 * this process.
 */
export function generateStep(plan: Generated, next: Step, general: Step, callees: Callees): Step | null {
  const g = new Gen(callees);
  switch (plan.kind) {
    case 'scan':
      g.line('L: {');
      g.line('let coll;');
      g.operand(plan.domain, 'coll');
      g.loop('coll', undefined, plan.slot);
      g.line('if (next(ev, frame, k)) return true;');
      g.close();
      g.line('}');
      g.line('ev.tick();');
      g.line('return false;');
      break;
    case 'bind':
    case 'iterate':
      bind(g, plan.slot, plan.value);
      break;
    case 'test':
      g.line('let truth = false;');
      g.line('L: {');
      if (plan.hoisted) g.hoisted(plan.hoisted);
      g.line('let v;');
      g.operand(plan.term, 'v');
      decide(g, plan.negated, 'v !== false', 'v');
      break;
    case 'equal':
      g.line('let truth = false;');
      g.line('L: {');
      if (plan.hoisted) g.hoisted(plan.hoisted);
      g.line('let a, b;');
      g.operand(plan.left, 'a');
      g.operand(plan.right, 'b');
      decide(g, plan.negated, 'equal(a, b)', undefined);
      break;
    case 'call':
    case 'direct':
      g.line('let truth = false;');
      g.line('L: {');
      if (plan.hoisted) g.hoisted(plan.hoisted);
      call(g, plan);
      break;
  }
  return g.build(next, general);
}

/**
 * generateHead generates the last step of a comprehension's body: it adds the head's value to the
 * collection being built (`ev.sink`) and asks for the next solution.
 */
export function generateHead(head: Operand, general: Step, callees: Callees): Step | null {
  const g = new Gen(callees);
  g.line('L: {');
  g.line('let v;');
  g.operand(head, 'v');
  g.line('const s = ev.sink; if (Array.isArray(s)) s.push(v); else s.add(v);');
  g.line('}');
  g.line('return false;');
  return g.build(stop, general);
}

/**
 * decide ends an expression whose truth is `cond` (its value `value`, kept as the expression's
 * value when true) and continues with the next step: once, or, when the operands iterate, once
 * per binding that makes it true (negated: true when no binding does).
 */
function decide(g: Gen, negated: boolean, cond: string, value: string | undefined): void {
  const keep = value !== undefined ? ` ev.lastValue = ${value};` : '';
  if (!g.iterating) {
    g.line(`if (${cond}) { truth = true;${keep} }`);
    g.line('}');
    g.line('ev.tick();');
    g.line(`return truth ${negated ? '===' : '!=='} false ? next(ev, frame, k) : false;`);
  } else if (negated) {
    g.line(`if (${cond}) { truth = true; break L; }`);
    g.close();
    g.line('}');
    g.line('ev.tick();');
    g.line('return truth ? false : next(ev, frame, k);');
  } else {
    g.line(`if (${cond}) {${keep} if (next(ev, frame, k)) return true; }`);
    g.close();
    g.line('}');
    g.line('ev.tick();');
    g.line('return false;');
  }
}

/**
 * bind: `x := term` / `x = term`, an unbound x takes the value for the rest of the body, a bound x
 * is compared (as unification does); once per binding when the term iterates (`x := xs[_]`).
 */
function bind(g: Gen, slot: number, value: Operand): void {
  g.line('let v;');
  g.line('L: {');
  g.operand(value, 'v');
  if (!g.iterating) {
    g.line('}');
    g.line('ev.tick();');
    g.line('if (v === undefined) return false;');
    g.line('ev.lastValue = true;');
    g.line(`const cur = frame[${slot}];`);
    g.line('if (cur !== undefined) return equal(cur, v) ? next(ev, frame, k) : false;');
    g.line(`frame[${slot}] = v;`);
    g.line(`try { return next(ev, frame, k); } finally { frame[${slot}] = undefined; }`);
    return;
  }
  g.line(`const cur = frame[${slot}];`);
  g.line('if (cur !== undefined) { if (equal(cur, v) && next(ev, frame, k)) return true; }');
  g.line(`else { ev.lastValue = true; frame[${slot}] = v; let found; try { found = next(ev, frame, k); } finally { frame[${slot}] = undefined; } if (found) return true; }`);
  g.close();
  g.line('}');
  g.line('ev.tick();');
  g.line('return false;');
}

/**
 * call: a user function call. A direct function's operands go straight into the callee's frame
 * and its compiled body is entered directly (steps never run while tracing); any other function
 * goes through the rule evaluator.
 */
function call(g: Gen, plan: Extract<StepPlan, { kind: 'call' | 'direct' }>): void {
  g.calls = true;
  const args = g.args(plan.args);
  if (plan.kind === 'direct') {
    const fn = plan.fn;
    const F = g.ref(fn);
    g.line(`const callee = new Array(${fn.nslots});`);
    fn.slots.forEach((s, j) => g.line(`callee[${s}] = ${args[j]};`));
    g.line(`const prevRule = ev.currentRule; ev.currentRule = ${F}.rule;`);
    g.line(`const found = (${F}.entry ?? ${g.ref(g.callees.entry)}(ev, ${F}))(ev, callee, ${g.ref(stop)});`);
    g.line('ev.currentRule = prevRule;');
    decide(g, plan.negated, `found && ${F}.value !== false`, `${F}.value`);
  } else {
    g.line(`const r = ev.rules.callFunction(${g.ref(plan.node)}, [${args.join(', ')}]);`);
    decide(g, plan.negated, 'r !== undefined && r !== false', 'r');
  }
}
