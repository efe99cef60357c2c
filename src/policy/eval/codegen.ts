import type { CallTerm, Expr, Rule, Term } from '../ast/types.js';
import type { Builtin } from '../builtins/types.js';
import type { RuleNode } from '../compile/tree.js';
import { VALUE_CLASS, equal, type Value } from '../value.js';
import { index } from './context.js';
import { indexPlan } from './index-scan.js';
import { constantRule, constantTerm } from './constant.js';
import { reader } from './quick.js';
import { NS, type EvalEngine, type Step } from './types.js';

/**
 * Why generated code: a closure shared by every expression of one kind sees every site's operands
 * and callees, so V8's inline caches and call targets in it are megamorphic and nothing is inlined.
 * A function generated per expression has its own feedback: property reads along `c.image` stay
 * monomorphic for input of one shape, and the built-in, the next step and the callee's body are
 * fixed call targets V8 can inline. Everything the code refers to is passed in as a parameter;
 * the text holds only generated names, variable slots and constant keys as JSON string literals.
 */

/** a call of a user function whose operands can be bound straight into its frame */
export interface DirectFunction {
  rule: Rule;
  slots: number[];
  nslots: number;
  /** the value when the body succeeds (a constant) */
  value: Value;
  /** the callee body's first step, compiled on the first call */
  entry: Step | undefined;
}

/**
 * directFunction tells whether a function has one definition, no default or else, distinct plain
 * variable parameters and a constant value (as `RuleEvaluator.callFunction`'s own fast path requires).
 */
export function directFunction(node: RuleNode, arity: number): DirectFunction | null {
  const only = node.rules.length === 1 && !node.defaultRule ? node.rules[0]! : undefined;
  if (!only || only.elses.length || !only.args || only.args.length !== arity) return null;
  if (only.value !== undefined && only.value.type !== 'scalar') return null;
  const slots: number[] = [];
  for (const a of only.args) {
    if (a.type !== 'var' || a.slot === undefined || slots.includes(a.slot)) return null;
    slots.push(a.slot);
  }
  return { rule: only, slots, nslots: only.nslots ?? 0, value: only.value ? only.value.value : true, entry: undefined };
}

const CLASS = JSON.stringify(VALUE_CLASS);

/** canGenerate tells whether this process lets code be generated from strings (checked once per engine). */
export function canGenerate(): boolean {
  try {
    return new Function('return 1')() === 1;
  } catch {
    return false;
  }
}

/** Gen collects the generated text and the values it refers to. */
class Gen {
  readonly names: string[] = [];
  readonly values: unknown[] = [];
  private n = 0;
  readonly out: string[] = [];
  /** variable slots the operands read: all must be bound, checked before anything runs */
  private readonly slots = new Set<number>();
  /** whether the expression calls a built-in or function (`with` mocks then need the general path) */
  calls = false;
  /** whether an operand reads a rule's value, which `with data...` replacements change */
  private overrides = false;
  /** whether an operand goes through a closure reader, which may ask for the general path midway */
  private closures = false;
  constructor(private readonly ev: EvalEngine) {}

  /** reads tells whether an operand reads a variable slot. */
  reads(slot: number): boolean {
    return this.slots.has(slot);
  }

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

  /**
   * operand emits code that leaves term t's value in `dst`: on undefined it breaks out of `label`
   * (dst then stays undefined), when the term needs the general evaluator it returns `general(...)`.
   * False when the term cannot be generated.
   */
  operand(t: Term, dst: string, label: string): boolean {
    const ev = this.ev;
    switch (t.type) {
      case 'scalar':
        this.line(`${dst} = ${this.ref(t.value)};`);
        return true;
      case 'var':
        if (t.slot !== undefined) {
          this.slots.add(t.slot);
          this.line(`${dst} = frame[${t.slot}];`);
          return true;
        }
        if (t.name === 'input') {
          this.line(`${dst} = ev.ctx.input; if (${dst} === undefined) break ${label};`);
          return true;
        }
        return false;
      case 'array':
      case 'set':
      case 'object': {
        const c = constantTerm(t, ev);
        if (c !== undefined) {
          this.line(`${dst} = ${this.ref(c)};`);
          return true;
        }
        if (t.type !== 'array') return false;
        // an array of plain terms (sprintf's operands): built fresh, undefined if an item is
        const items: string[] = [];
        for (const x of t.items) {
          const v = this.tmp();
          this.line(`let ${v};`);
          if (!this.operand(x, v, label)) return false;
          this.line(`if (${v} === undefined) break ${label};`);
          items.push(v);
        }
        this.line(`${dst} = [${items.join(', ')}];`);
        return true;
      }
      case 'ref':
        return this.refOperand(t, dst, label);
      case 'call':
        return this.callOperand(t, dst, label);
      default:
        return false;
    }
  }

  /** refOperand reads input.a.b, x.a[i] and data.pkg.rule.a inline; other refs go through their closure reader. */
  private refOperand(t: Extract<Term, { type: 'ref' }>, dst: string, label: string): boolean {
    const h = t.head;
    const plainPath = (from: number): boolean => t.path.slice(from).every((p) => p.type === 'scalar' || (p.type === 'var' && p.slot !== undefined));
    if (h.type === 'var' && h.slot === undefined && h.name === 'data') {
      // data.pkg.rule...: the rule's value (cached per query), unless `with` replaces part of data
      const fast = this.ev.dataFastPath(t);
      if (fast && plainPath(fast.depth)) {
        this.overrides = true;
        const c = constantRule(fast.node, this.ev);
        this.line(`${dst} = ${c !== undefined ? this.ref(c) : `ev.rules.nodeValue(${this.ref(fast.node)})`}; if (${dst} === undefined) break ${label};`);
        this.path(t.path.slice(fast.depth), dst, label);
        return true;
      }
    }
    const inline = h.type === 'var' && (h.slot !== undefined || h.name === 'input') && plainPath(0);
    if (!inline) {
      const r = reader(t, this.ev);
      if (!r) return false;
      this.closures = true;
      this.line(`${dst} = ${this.ref(r)}(ev, frame); if (${dst} === NS) return general(ev, frame, k); if (${dst} === undefined) break ${label};`);
      return true;
    }
    if (h.slot !== undefined) {
      this.slots.add(h.slot);
      this.line(`${dst} = frame[${h.slot}];`);
    } else this.line(`${dst} = ev.ctx.input; if (${dst} === undefined) break ${label};`);
    this.path(t.path, dst, label);
    return true;
  }

  /** path emits the reads along constant and bound-variable keys. */
  private path(path: Term[], dst: string, label: string): void {
    for (const p of path) {
      if (p.type === 'scalar' && typeof p.value === 'string' && p.value !== '__proto__') {
        // a plain object and a constant key: a property read with this site's own inline cache
        const key = JSON.stringify(p.value);
        this.line(
          `if (typeof ${dst} === 'object' && ${dst} !== null && !Array.isArray(${dst}) && ${dst}[${CLASS}] === undefined) { ${dst} = ${dst}[${key}]; if (typeof ${dst} === 'function') ${dst} = undefined; } else ${dst} = index(${dst}, ${key});`,
        );
      } else if (p.type === 'scalar') this.line(`${dst} = index(${dst}, ${this.ref(p.value)});`);
      else {
        const slot = (p as { slot: number }).slot;
        this.slots.add(slot);
        this.line(`${dst} = index(${dst}, frame[${slot}]);`);
      }
      this.line(`if (${dst} === undefined) break ${label};`);
    }
  }

  /** callOperand calls a built-in over plain operands (`count(deny)`, `lower(x)`); mocks need the general path. */
  private callOperand(t: CallTerm, dst: string, label: string): boolean {
    const b = builtinOf(this.ev, t);
    if (!b) return false;
    this.calls = true;
    const args = this.args(t.args, label);
    if (!args) return false;
    this.call(b, t, args, dst);
    this.line(`if (${dst} === undefined) break ${label};`);
    return true;
  }

  /** args emits the operands of a call into fresh locals (undefined breaks out of label). */
  args(ts: Term[], label: string): string[] | null {
    const out: string[] = [];
    for (const x of ts) {
      const v = this.tmp();
      this.line(`let ${v};`);
      if (!this.operand(x, v, label)) return null;
      this.line(`if (${v} === undefined) break ${label};`);
      out.push(v);
    }
    return out;
  }

  /** call emits a built-in call; its errors go through the evaluator (undefined, or fatal in strict mode). */
  call(b: Builtin, t: CallTerm, args: string[], dst: string): void {
    const a = this.tmp();
    // the operand array is filled only once every operand is read: nested calls reuse it too
    this.line(`const ${a} = ev.scratchArgs(${args.length});`);
    args.forEach((x, i) => this.line(`${a}[${i}] = ${x};`));
    this.line(`try { ${dst} = ${this.ref(b)}.fn(${a}, ev.bctx); } catch (e) { ${dst} = ev.builtinFailed(e, ${this.ref(t)}, ${this.ref((t.target as { name: string }).name)}); }`);
  }

  /**
   * build compiles the collected text into a step, or null when it could not be done safely. What
   * sends an expression to the general evaluator (an unbound variable, a mock) is checked before
   * anything runs, so no built-in is called twice; a closure reader may still ask for the general
   * path midway, so it cannot be mixed with calls.
   */
  build(next: Step, general: Step): Step | null {
    if (this.calls && this.closures) return null;
    const pre: string[] = [];
    for (const s of this.slots) pre.push(`if (frame[${s}] === undefined) return general(ev, frame, k);`);
    if (this.calls) pre.push('if (ev.ctx.mocks !== undefined) return general(ev, frame, k);');
    if (this.overrides) pre.push('if (ev.ctx.overrides !== undefined) return general(ev, frame, k);');
    const params = ['NS', 'index', 'equal', 'next', 'general', ...this.names];
    const body = `return function step(ev, frame, k) {\n${[...pre, ...this.out].join('\n')}\n};`;
    try {
      const make = new Function(...params, body) as (...a: unknown[]) => Step;
      return make(NS, index, equal, next, general, ...this.values);
    } catch {
      // never expected (the text is made from names, slots and JSON literals); the closures still work
      return null;
    }
  }
}

/** builtinOf returns the built-in a call site can call directly (fixed arity, not a relation). */
function builtinOf(ev: EvalEngine, t: CallTerm): Builtin | undefined {
  const tgt = t.target;
  if (!tgt || tgt.kind !== 'builtin' || tgt.name === 'eq' || tgt.name === 'assign') return undefined;
  const b = ev.builtinOf(tgt);
  if (!b || b.relation || b.arity < 0 || t.args.length !== b.arity) return undefined;
  return b;
}

/**
 * generateStep generates the code of expression i of a body, or returns null when it is not one of
 * the shapes handled here (the caller then uses the closure steps or the general evaluator).
 */
export function generateStep(ev: EvalEngine, body: Expr[], i: number, next: Step, general: Step, bodySteps: (ev: EvalEngine, body: Expr[]) => Step[]): Step | null {
  const e = body[i]!;
  if (e.with.length) return null;
  const g = new Gen(ev);
  if (e.kind === 'somein') {
    if (e.key || e.negated || e.value.type !== 'var' || e.value.slot === undefined) return null;
    // an indexed scan (`some x in xs; x.f == v`) is better still
    if (i + 1 < body.length && indexPlan(ev, e, body[i + 1]!)) return null;
    const slot = e.value.slot;
    g.line(`if (frame[${slot}] !== undefined) return general(ev, frame, k);`);
    g.line('let coll;');
    g.line('L: {');
    if (!g.operand(e.domain, 'coll', 'L')) return null;
    g.line('}');
    g.line('if (coll !== undefined && !Array.isArray(coll)) return general(ev, frame, k);');
    g.line('ev.tick();');
    g.line('if (coll === undefined) return false;');
    g.line(`try { for (let j = 0; j < coll.length; j++) { ev.tick(); frame[${slot}] = coll[j]; if (next(ev, frame, k)) return true; } return false; } finally { frame[${slot}] = undefined; }`);
    return g.build(next, general);
  }
  if (e.kind !== 'term') return null;
  const t = e.term;
  const neg = e.negated;
  const finish = (): Step | null => {
    g.line('ev.tick();');
    g.line(`return truth ${neg ? '===' : '!=='} false ? next(ev, frame, k) : false;`);
    return g.build(next, general);
  };
  g.line('let truth = false;');
  if (t.type !== 'call') {
    g.line('let v;');
    g.line('L: {');
    if (!g.operand(t, 'v', 'L')) return null;
    g.line('if (v !== false) { truth = true; ev.lastValue = v; }');
    g.line('}');
    return finish();
  }
  const tgt = t.target;
  if (!tgt) return null;
  if (tgt.kind === 'builtin' && (tgt.name === 'eq' || tgt.name === 'assign')) {
    if (t.args.length !== 2) return null;
    const [a, b] = t.args as [Term, Term];
    if (tgt.name === 'assign' || (a.type === 'var' && a.slot !== undefined && !neg)) {
      const last = b.type === 'ref' ? b.path[b.path.length - 1] : undefined;
      if (last?.type === 'var' && last.slot !== undefined) return iterStep(g, a, b as Extract<Term, { type: 'ref' }>, last.slot, next, general, neg);
      return bindStep(g, a, b, next, general, neg);
    }
    g.line('L: {');
    g.line('let a, b;');
    if (!g.operand(a, 'a', 'L') || !g.operand(b, 'b', 'L')) return null;
    g.line('truth = equal(a, b);');
    g.line('}');
    return finish();
  }
  if (tgt.kind === 'func') {
    const node = ev.funcNode(tgt);
    if (!node || node.rules[0]?.args?.length !== t.args.length) return null;
    g.calls = true;
    g.line('L: {');
    const args = g.args(t.args, 'L');
    if (!args) return null;
    const fn = directFunction(node, t.args.length);
    if (fn) {
      const F = g.ref(fn);
      const steps = g.ref(bodySteps);
      g.line(`const callee = new Array(${fn.nslots});`);
      fn.slots.forEach((s, j) => g.line(`callee[${s}] = ${args[j]};`));
      g.line(`const prevRule = ev.currentRule; ev.currentRule = ${F}.rule;`);
      // steps never run while tracing, so the callee's steps can be entered directly
      g.line(`const found = (${F}.entry ??= ${steps}(ev, ${F}.rule.body)[0])(ev, callee, stop);`);
      g.line('ev.currentRule = prevRule;');
      g.line(`if (found && ${F}.value !== false) { truth = true; ev.lastValue = ${F}.value; }`);
    } else {
      g.line(`const r = ev.rules.callFunction(${g.ref(node)}, [${args.join(', ')}]);`);
      g.line('if (r !== undefined && r !== false) { truth = true; ev.lastValue = r; }');
    }
    g.line('}');
    g.out.unshift(`const stop = ${g.ref(stopK)};`);
    return finish();
  }
  const b = builtinOf(ev, t);
  if (!b) return null;
  g.calls = true;
  g.line('L: {');
  const args = g.args(t.args, 'L');
  if (!args) return null;
  g.line('let r;');
  g.call(b, t, args, 'r');
  g.line('if (r !== undefined && r !== false) { truth = true; ev.lastValue = r; }');
  g.line('}');
  return finish();
}

const stopK = (): boolean => true;

/**
 * bindStep generates `x := term` and `x = term`: an unbound x takes the value for the rest of the
 * body, a bound x is compared (as unification does).
 */
function bindStep(g: Gen, a: Term, b: Term, next: Step, general: Step, neg: boolean): Step | null {
  if (neg || a.type !== 'var' || a.slot === undefined) return null;
  const slot = a.slot;
  g.line('let v;');
  g.line('L: {');
  if (!g.operand(b, 'v', 'L')) return null;
  g.line('}');
  g.line('ev.tick();');
  g.line('if (v === undefined) return false;');
  g.line('ev.lastValue = true;');
  g.line(`const cur = frame[${slot}];`);
  // a bound variable is compared, as unification does
  g.line('if (cur !== undefined) return equal(cur, v) ? next(ev, frame, k) : false;');
  g.line(`frame[${slot}] = v;`);
  g.line(`try { return next(ev, frame, k); } finally { frame[${slot}] = undefined; }`);
  return g.build(next, general);
}

/**
 * iterStep generates `x := xs[_]` (`container := input.review.object.spec.containers[_]`): over
 * an array, each element in turn is bound to x (compared, when x is bound) with the key variable
 * set to its index. A key variable bound already, or a collection that is not an array, takes the
 * general path.
 */
function iterStep(g: Gen, a: Term, ref: Extract<Term, { type: 'ref' }>, keySlot: number, next: Step, general: Step, neg: boolean): Step | null {
  if (neg || a.type !== 'var' || a.slot === undefined || a.slot === keySlot) return null;
  const slot = a.slot;
  const prefix: Term = ref.path.length === 1 ? ref.head : { ...ref, path: ref.path.slice(0, -1) };
  g.line('let coll;');
  g.line('L: {');
  if (!g.operand(prefix, 'coll', 'L')) return null;
  g.line('}');
  if (g.reads(keySlot)) return null;
  g.out.unshift(`if (frame[${keySlot}] !== undefined) return general(ev, frame, k);`);
  g.line('if (coll !== undefined && !Array.isArray(coll)) return general(ev, frame, k);');
  g.line('ev.tick();');
  g.line('if (coll === undefined) return false;');
  g.line('ev.lastValue = true;');
  g.line(`const cur = frame[${slot}];`);
  g.line('try {');
  g.line('  for (let j = 0; j < coll.length; j++) {');
  g.line(`    ev.tick(); frame[${keySlot}] = j;`);
  g.line(`    if (cur === undefined) frame[${slot}] = coll[j]; else if (!equal(cur, coll[j])) continue;`);
  g.line('    if (next(ev, frame, k)) return true;');
  g.line('  }');
  g.line('  return false;');
  g.line(`} finally { frame[${keySlot}] = undefined; if (cur === undefined) frame[${slot}] = undefined; }`);
  return g.build(next, general);
}
