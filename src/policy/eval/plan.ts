import type { CallTerm, Expr, RefTerm, Rule, Term } from '../ast/types.js';
import type { Builtin } from '../builtins/types.js';
import type { RuleNode } from '../compile/tree.js';
import type { Value } from '../value.js';

import { constantRule, constantTerm } from './constant.js';
import { type IndexPlan,indexPlan } from './index-scan.js';
import type { Step } from './types.js';

/**
 * Plans are what the compiled tier decides about an expression before it generates its code: which
 * kind of step it is and how each operand is read. Everything here is worked out once per
 * expression and engine; the step then reads no AST nodes.
 */

/**
 * PathKey is one key of a ref the compiled tier reads: a constant, a variable bound at run time, a
 * variable not bound yet (`iter`), which the read iterates over: each key of the collection in
 * turn is bound to the variable and the read goes on with its element (`xs[_]`, `labels[l]`), or
 * another operand read where the key is (`limits[input.parameters.resource]`).
 */
export type PathKey = { kind: 'key'; value: Value } | { kind: 'var'; slot: number } | { kind: 'iter'; slot: number } | { kind: 'operand'; key: Operand };

/**
 * Operand is a term read without continuations: a constant, a bound variable or input (then a
 * path), a rule's value (then a path), an array of operands, a built-in call over operands (then a
 * path: `split(s, ":")[1]`), or an array or set comprehension (its body compiled as a chain of its
 * own). An operand whose path iterates has one value per key it binds.
 */
export type Operand =
  | { kind: 'const'; value: Value }
  | { kind: 'var'; slot: number; path: PathKey[] }
  | { kind: 'input'; path: PathKey[] }
  | { kind: 'rule'; node: RuleNode; value: Value | undefined; path: PathKey[] }
  | { kind: 'array'; items: Operand[] }
  | { kind: 'builtin'; builtin: Builtin; call: CallTerm; name: string; args: Operand[]; path: PathKey[] }
  | { kind: 'compr'; term: Comprehension; head: Operand; path: PathKey[]; entry?: Step };

/** Comprehension is an array or set comprehension the compiled tier evaluates. */
export type Comprehension = Extract<Term, { type: 'arraycompr' | 'setcompr' }>;

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

/** Hoisted is an operand `compile/negation.ts` moved out of a negated expression, read into its slot first. */
export interface Hoisted {
  slot: number;
  value: Operand;
}

/**
 * StepPlan is one expression of a compiled body:
 * - `scan`: `some x in xs`, x bound to each element;
 * - `indexed`: `some x in xs` followed by `x.f == v`, through a hash index of xs;
 * - `test`: a bare term, a built-in call or `not` of one, true unless undefined or false;
 * - `equal`: `a = b` where both sides are read as values;
 * - `bind`: `x := t` / `x = t` (or `t = x`), x bound to the value (compared when bound already);
 * - `iterate`: a `bind` whose value iterates, `x := xs[k]`, x bound to each element in turn;
 * - `call`: a user function call, through the rule evaluator;
 * - `direct`: a call of a function with one plain definition, entered straight into its body;
 * - `skip`: `some x` (a declaration: nothing to do);
 * - `general`: everything else, the general evaluator.
 *
 * Any operand may iterate (`startswith(s, prefixes[_])`, `tag == tags[_]`): the step then has one
 * solution per binding, as the general evaluator has. A negated `test`, `equal`, `call` or
 * `direct` may carry the operands hoisted out of it (`hoisted`, read first: one undefined makes the
 * body fail); it then stands for those hoisting expressions too (`span` expressions in all).
 */
export type StepPlan =
  | { kind: 'scan'; slot: number; domain: Operand }
  | { kind: 'indexed'; index: IndexPlan }
  | { kind: 'test'; negated: boolean; term: Operand; hoisted?: Hoisted[] }
  | { kind: 'equal'; negated: boolean; left: Operand; right: Operand; hoisted?: Hoisted[] }
  | { kind: 'bind' | 'iterate'; slot: number; value: Operand }
  | { kind: 'call'; negated: boolean; node: RuleNode; args: Operand[]; hoisted?: Hoisted[] }
  | { kind: 'direct'; negated: boolean; fn: DirectFunction; args: Operand[]; hoisted?: Hoisted[] }
  | { kind: 'skip' }
  | { kind: 'general' };

/** StepKind names the kinds of compiled steps. */
export type StepKind = StepPlan['kind'];

/** PlanContext is what planning needs of the engine: its rule tree, base data and built-ins. */
export interface PlanContext {
  /** the rule node a constant `data.pkg.rule...` prefix leads to (null when base data shares the path) */
  dataRule(t: RefTerm): { node: RuleNode; depth: number } | null;
  funcNode(path: string[]): RuleNode | undefined;
  builtin(name: string): Builtin | undefined;
}

const GENERAL: StepPlan = { kind: 'general' };

/**
 * Scope is what planning knows of the variables of one expression: those bound before it (from the
 * compiler's ordering; undefined when unknown, then every variable is taken as bound) and those
 * its own iterating keys bind, left to right. Only speed depends on it: what a step finds at run
 * time that the plan did not expect (a variable bound or not) goes to the general evaluator.
 */
interface Scope {
  bound: ReadonlySet<number> | undefined;
  local: Set<number>;
  /** hoisted slots the step reads from locals instead of the frame */
  hoisted?: ReadonlySet<number>;
}

const isBound = (sc: Scope, slot: number): boolean => !sc.bound || sc.bound.has(slot) || sc.local.has(slot) || !!sc.hoisted?.has(slot);

/** planStep decides how expression i of a body is compiled; a plan with hoisted operands stands for `span` expressions. */
export function planStep(pc: PlanContext, body: Expr[], i: number): StepPlan & { span?: number } {
  const e = body[i]!;
  if (e.hoisted) return fusedPlan(pc, body, i) ?? planExpr(pc, body, i, scopeOf(e));
  return planExpr(pc, body, i, scopeOf(e));
}

function scopeOf(e: Expr, hoisted?: ReadonlySet<number>): Scope {
  return { bound: e.bound, local: new Set(), hoisted };
}

/**
 * fusedPlan plans the hoisting expressions starting at i together with the negated expression
 * they were hoisted from: one step reads the hoisted operands into locals, then decides the
 * negation, instead of one step per hoisted operand binding a frame slot.
 */
function fusedPlan(pc: PlanContext, body: Expr[], i: number): (StepPlan & { span: number }) | null {
  const hoisted: Hoisted[] = [];
  let j = i;
  for (; j < body.length && body[j]!.hoisted; j++) {
    const h = body[j]!;
    if (h.kind !== 'term' || h.with.length || h.term.type !== 'call' || h.term.args.length !== 2) return null;
    const [v, t] = h.term.args as [Term, Term];
    if (v.type !== 'var' || v.slot === undefined) return null;
    const sc = scopeOf(h);
    const value = operand(pc, t, sc);
    if (!value || sc.local.size) return null;
    hoisted.push({ slot: v.slot, value });
  }
  const e = body[j];
  if (!e || !e.negated) return null;
  const plan = planExpr(pc, body, j, scopeOf(e, new Set(hoisted.map((h) => h.slot))));
  if (plan.kind !== 'test' && plan.kind !== 'equal' && plan.kind !== 'call' && plan.kind !== 'direct') return null;
  return { ...plan, hoisted, span: j - i + 1 };
}

function planExpr(pc: PlanContext, body: Expr[], i: number, sc: Scope): StepPlan {
  const e = body[i]!;
  if (e.kind === 'somein') {
    // an indexed scan (`some x in xs; x.f == v`) beats visiting every element
    const index = i + 1 < body.length ? indexPlan(e, body[i + 1]!) : null;
    if (index) return { kind: 'indexed', index };
    if (e.key || e.negated || e.with.length || e.value.type !== 'var' || e.value.slot === undefined) return GENERAL;
    const domain = operand(pc, e.domain, sc);
    return domain ? { kind: 'scan', slot: e.value.slot, domain } : GENERAL;
  }
  if (e.kind === 'some' && !e.negated && !e.with.length) return { kind: 'skip' };
  if (e.kind !== 'term' || e.with.length) return GENERAL;
  const t = e.term;
  const negated = e.negated;
  if (t.type !== 'call') {
    const term = operand(pc, t, sc);
    return term ? { kind: 'test', negated, term } : GENERAL;
  }
  const tgt = t.target;
  if (!tgt) return GENERAL;
  if (tgt.kind === 'builtin' && (tgt.name === 'eq' || tgt.name === 'assign')) {
    if (t.args.length !== 2) return GENERAL;
    const [a, b] = t.args as [Term, Term];
    if (tgt.name === 'assign' || (a.type === 'var' && a.slot !== undefined && !negated)) {
      if (negated || a.type !== 'var' || a.slot === undefined) return GENERAL;
      return bindPlan(pc, a.slot, b, sc);
    }
    // `t = x` with x not bound yet binds x as `x = t` does (the general evaluator reads t first either way)
    if (b.type === 'var' && b.slot !== undefined && !negated && !isBound(sc, b.slot)) return bindPlan(pc, b.slot, a, sc);
    const left = operand(pc, a, sc);
    const right = left && operand(pc, b, sc);
    return left && right ? { kind: 'equal', negated, left, right } : GENERAL;
  }
  if (tgt.kind === 'func') {
    const node = pc.funcNode(tgt.path);
    if (!node || node.rules[0]?.args?.length !== t.args.length) return GENERAL;
    const args = operands(pc, t.args, sc);
    if (!args) return GENERAL;
    const fn = directFunction(node, t.args.length);
    return fn ? { kind: 'direct', negated, fn, args } : { kind: 'call', negated, node, args };
  }
  const term = operand(pc, t, sc);
  return term ? { kind: 'test', negated, term } : GENERAL;
}

/** bindPlan plans `x := t`: `iterate` when reading t iterates (`container := input.review.object.spec.containers[_]`). */
function bindPlan(pc: PlanContext, slot: number, t: Term, sc: Scope): StepPlan {
  const value = operand(pc, t, sc);
  if (!value) return GENERAL;
  return { kind: iterates(value) ? 'iterate' : 'bind', slot, value };
}

/** iterates tells whether reading an operand iterates (a path key not bound before it). */
export function iterates(op: Operand): boolean {
  const inPath = (path: PathKey[]): boolean => path.some((p) => p.kind === 'iter' || (p.kind === 'operand' && iterates(p.key)));
  switch (op.kind) {
    case 'const':
      return false;
    case 'var':
    case 'input':
    case 'rule':
    case 'compr':
      return inPath(op.path);
    case 'array':
      return op.items.some(iterates);
    case 'builtin':
      return op.args.some(iterates) || inPath(op.path);
  }
}

function operands(pc: PlanContext, ts: Term[], sc: Scope): Operand[] | null {
  const out: Operand[] = [];
  for (const t of ts) {
    const op = operand(pc, t, sc);
    if (!op) return null;
    out.push(op);
  }
  return out;
}

/** operand plans how a term is read, or null when only the general evaluator can evaluate it. */
function operand(pc: PlanContext, t: Term, sc: Scope): Operand | null {
  switch (t.type) {
    case 'scalar':
      return { kind: 'const', value: t.value };
    case 'var':
      if (t.slot !== undefined) return isBound(sc, t.slot) ? { kind: 'var', slot: t.slot, path: [] } : null;
      return t.name === 'input' ? { kind: 'input', path: [] } : null;
    case 'array':
    case 'set':
    case 'object': {
      const value = constantTerm(t);
      if (value !== undefined) return { kind: 'const', value };
      // an array of operands (sprintf's): built fresh on each evaluation
      if (t.type !== 'array') return null;
      const items = operands(pc, t.items, sc);
      return items ? { kind: 'array', items } : null;
    }
    case 'ref':
      return refOperand(pc, t, sc);
    case 'call': {
      const builtin = builtinOf(pc, t);
      const args = builtin && operands(pc, t.args, sc);
      return builtin && args ? { kind: 'builtin', builtin, call: t, name: (t.target as { name: string }).name, args, path: [] } : null;
    }
    case 'arraycompr':
    case 'setcompr': {
      // the head is read once the body has bound its variables (checked again at run time)
      const head = operand(pc, t.head, { bound: undefined, local: new Set() });
      // entry: the body's first step, compiled on first use
      return head && !iterates(head) ? { kind: 'compr', term: t, head, path: [], entry: undefined } : null;
    }
    default:
      return null;
  }
}

/** refOperand plans `input.a.b`, `x.a[i]`, `data.pkg.rule.a` and `f(x)[i]`: constant and variable keys only. */
function refOperand(pc: PlanContext, t: RefTerm, sc: Scope): Operand | null {
  const h = t.head;
  if (h.type === 'call' || h.type === 'arraycompr' || h.type === 'setcompr') {
    // a ref into a built-in's result or a comprehension's value
    const value = operand(pc, h, sc);
    if (value?.kind !== 'builtin' && value?.kind !== 'compr') return null;
    const path = pathKeys(pc, t.path, sc);
    return path ? { ...value, path } : null;
  }
  if (h.type !== 'var') return null;
  if (h.slot === undefined && h.name === 'data') {
    // data.pkg.rule...: the rule's value (cached per query), unless `with` replaces part of data
    const found = pc.dataRule(t);
    const path = found && pathKeys(pc, t.path.slice(found.depth), sc);
    return found && path ? { kind: 'rule', node: found.node, value: constantRule(found.node), path } : null;
  }
  if (h.slot !== undefined && !isBound(sc, h.slot)) return null;
  const path = pathKeys(pc, t.path, sc);
  if (!path) return null;
  if (h.slot !== undefined) return { kind: 'var', slot: h.slot, path };
  return h.name === 'input' ? { kind: 'input', path } : null;
}

/** pathKeys plans the keys of a ref: a variable not bound before the read iterates, and is bound for the keys after it. */
function pathKeys(pc: PlanContext, ts: Term[], sc: Scope): PathKey[] | null {
  const out: PathKey[] = [];
  for (const p of ts) {
    if (p.type === 'scalar') out.push({ kind: 'key', value: p.value });
    else if (p.type === 'var' && p.slot !== undefined) {
      if (isBound(sc, p.slot)) out.push({ kind: 'var', slot: p.slot });
      else {
        out.push({ kind: 'iter', slot: p.slot });
        sc.local.add(p.slot);
      }
    } else {
      const key = p.type === 'ref' || p.type === 'call' ? operand(pc, p, sc) : null;
      if (!key || iterates(key)) return null;
      out.push({ kind: 'operand', key });
    }
  }
  return out;
}

/** builtinOf returns the built-in a call site can call directly (fixed arity, not a relation). */
function builtinOf(pc: PlanContext, t: CallTerm): Builtin | undefined {
  const tgt = t.target;
  if (!tgt || tgt.kind !== 'builtin' || tgt.name === 'eq' || tgt.name === 'assign') return undefined;
  const b = pc.builtin(tgt.name);
  if (!b || b.relation || b.arity < 0 || t.args.length !== b.arity) return undefined;
  return b;
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
