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

/** PathKey is one key of a ref the compiled tier reads: a constant or a variable bound at run time. */
export type PathKey = { kind: 'key'; value: Value } | { kind: 'var'; slot: number };

/**
 * Operand is a term read without continuations: a constant, a bound variable or input (then a
 * path), a rule's value (then a path), an array of operands, or a built-in call over operands.
 */
export type Operand =
  | { kind: 'const'; value: Value }
  | { kind: 'var'; slot: number; path: PathKey[] }
  | { kind: 'input'; path: PathKey[] }
  | { kind: 'rule'; node: RuleNode; value: Value | undefined; path: PathKey[] }
  | { kind: 'array'; items: Operand[] }
  | { kind: 'builtin'; builtin: Builtin; call: CallTerm; name: string; args: Operand[] };

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
 * StepPlan is one expression of a compiled body:
 * - `scan`: `some x in xs` over an array, x bound to each element;
 * - `indexed`: `some x in xs` followed by `x.f == v`, through a hash index of xs;
 * - `test`: a bare term, a built-in call or `not` of one, true unless undefined or false;
 * - `equal`: `a = b` where both sides are read as values;
 * - `bind`: `x := t` / `x = t`, x bound to the value (compared when bound already);
 * - `iterate`: `x := xs[k]` over an array, x bound to each element and k to its index;
 * - `call`: a user function call, through the rule evaluator;
 * - `direct`: a call of a function with one plain definition, entered straight into its body;
 * - `general`: everything else, the general evaluator.
 */
export type StepPlan =
  | { kind: 'scan'; slot: number; domain: Operand }
  | { kind: 'indexed'; index: IndexPlan }
  | { kind: 'test'; negated: boolean; term: Operand }
  | { kind: 'equal'; negated: boolean; left: Operand; right: Operand }
  | { kind: 'bind'; slot: number; value: Operand }
  | { kind: 'iterate'; slot: number; key: number; domain: Operand }
  | { kind: 'call'; negated: boolean; node: RuleNode; args: Operand[] }
  | { kind: 'direct'; negated: boolean; fn: DirectFunction; args: Operand[] }
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

/** planStep decides how expression i of a body is compiled. */
export function planStep(pc: PlanContext, body: Expr[], i: number): StepPlan {
  const e = body[i]!;
  if (e.kind === 'somein') {
    // an indexed scan (`some x in xs; x.f == v`) beats visiting every element
    const index = i + 1 < body.length ? indexPlan(e, body[i + 1]!) : null;
    if (index) return { kind: 'indexed', index };
    if (e.key || e.negated || e.with.length || e.value.type !== 'var' || e.value.slot === undefined) return GENERAL;
    const domain = operand(pc, e.domain);
    return domain ? { kind: 'scan', slot: e.value.slot, domain } : GENERAL;
  }
  if (e.kind !== 'term' || e.with.length) return GENERAL;
  const t = e.term;
  const negated = e.negated;
  if (t.type !== 'call') {
    const term = operand(pc, t);
    return term ? { kind: 'test', negated, term } : GENERAL;
  }
  const tgt = t.target;
  if (!tgt) return GENERAL;
  if (tgt.kind === 'builtin' && (tgt.name === 'eq' || tgt.name === 'assign')) {
    if (t.args.length !== 2) return GENERAL;
    const [a, b] = t.args as [Term, Term];
    if (tgt.name === 'assign' || (a.type === 'var' && a.slot !== undefined && !negated)) {
      if (negated || a.type !== 'var' || a.slot === undefined) return GENERAL;
      const last = b.type === 'ref' ? b.path[b.path.length - 1] : undefined;
      if (last?.type === 'var' && last.slot !== undefined) return iteratePlan(pc, a.slot, b as RefTerm, last.slot);
      const value = operand(pc, b);
      return value ? { kind: 'bind', slot: a.slot, value } : GENERAL;
    }
    const left = operand(pc, a);
    const right = left && operand(pc, b);
    return left && right ? { kind: 'equal', negated, left, right } : GENERAL;
  }
  if (tgt.kind === 'func') {
    const node = pc.funcNode(tgt.path);
    if (!node || node.rules[0]?.args?.length !== t.args.length) return GENERAL;
    const args = operands(pc, t.args);
    if (!args) return GENERAL;
    const fn = directFunction(node, t.args.length);
    return fn ? { kind: 'direct', negated, fn, args } : { kind: 'call', negated, node, args };
  }
  const term = operand(pc, t);
  return term ? { kind: 'test', negated, term } : GENERAL;
}

/**
 * iteratePlan plans `x := xs[k]` (`container := input.review.object.spec.containers[_]`). The key
 * variable must not be x itself nor read by the collection's own operand.
 */
function iteratePlan(pc: PlanContext, slot: number, ref: RefTerm, key: number): StepPlan {
  if (slot === key) return GENERAL;
  const prefix: Term = ref.path.length === 1 ? ref.head : { ...ref, path: ref.path.slice(0, -1) };
  const domain = operand(pc, prefix);
  if (!domain || reads(domain, key)) return GENERAL;
  return { kind: 'iterate', slot, key, domain };
}

/** reads tells whether an operand reads a variable slot. */
function reads(op: Operand, slot: number): boolean {
  const inPath = (path: PathKey[]): boolean => path.some((p) => p.kind === 'var' && p.slot === slot);
  switch (op.kind) {
    case 'const':
      return false;
    case 'var':
      return op.slot === slot || inPath(op.path);
    case 'input':
    case 'rule':
      return inPath(op.path);
    case 'array':
      return op.items.some((x) => reads(x, slot));
    case 'builtin':
      return op.args.some((x) => reads(x, slot));
  }
}

function operands(pc: PlanContext, ts: Term[]): Operand[] | null {
  const out: Operand[] = [];
  for (const t of ts) {
    const op = operand(pc, t);
    if (!op) return null;
    out.push(op);
  }
  return out;
}

/** operand plans how a term is read, or null when only the general evaluator can evaluate it. */
function operand(pc: PlanContext, t: Term): Operand | null {
  switch (t.type) {
    case 'scalar':
      return { kind: 'const', value: t.value };
    case 'var':
      if (t.slot !== undefined) return { kind: 'var', slot: t.slot, path: [] };
      return t.name === 'input' ? { kind: 'input', path: [] } : null;
    case 'array':
    case 'set':
    case 'object': {
      const value = constantTerm(t);
      if (value !== undefined) return { kind: 'const', value };
      // an array of operands (sprintf's): built fresh on each evaluation
      if (t.type !== 'array') return null;
      const items = operands(pc, t.items);
      return items ? { kind: 'array', items } : null;
    }
    case 'ref':
      return refOperand(pc, t);
    case 'call': {
      const builtin = builtinOf(pc, t);
      const args = builtin && operands(pc, t.args);
      return builtin && args ? { kind: 'builtin', builtin, call: t, name: (t.target as { name: string }).name, args } : null;
    }
    default:
      return null;
  }
}

/** refOperand plans `input.a.b`, `x.a[i]` and `data.pkg.rule.a`: constant and bound-variable keys only. */
function refOperand(pc: PlanContext, t: RefTerm): Operand | null {
  const h = t.head;
  if (h.type !== 'var') return null;
  if (h.slot === undefined && h.name === 'data') {
    // data.pkg.rule...: the rule's value (cached per query), unless `with` replaces part of data
    const found = pc.dataRule(t);
    const path = found && pathKeys(t.path.slice(found.depth));
    return found && path ? { kind: 'rule', node: found.node, value: constantRule(found.node), path } : null;
  }
  const path = pathKeys(t.path);
  if (!path) return null;
  if (h.slot !== undefined) return { kind: 'var', slot: h.slot, path };
  return h.name === 'input' ? { kind: 'input', path } : null;
}

function pathKeys(ts: Term[]): PathKey[] | null {
  const out: PathKey[] = [];
  for (const p of ts) {
    if (p.type === 'scalar') out.push({ kind: 'key', value: p.value });
    else if (p.type === 'var' && p.slot !== undefined) out.push({ kind: 'var', slot: p.slot });
    else return null;
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
