import type { Expr, Term } from '../ast/types.js';

/** NegationScope is what hoisting needs from the compiler: fresh slots, and how `==` is read. */
export interface NegationScope {
  newSlot(): number;
  /** modules read `a == b` as `a = b` (OPA rewrites it before this step); queries keep it a call */
  equalIsUnify: boolean;
}

/**
 * hoistNegated gives `not` the scope OPA gives it. OPA's compiler evaluates the operands of a call
 * (refs, nested calls, and those inside arrays, objects and sets given as operands) and the dynamic
 * parts of refs before the expression, outside the negation: `not f(x.y)` runs as
 * `t = x.y; not f(t)`. So an undefined operand makes the whole body undefined instead of making
 * the negation true. The two sides of `=` are not hoisted themselves, only what is nested in them.
 *
 * Only operands whose variables are all bound at this point move; an operand iterating over a
 * variable local to the negation stays inside it. Returns the expressions to run in place of `e`,
 * or undefined when nothing moves.
 */
export function hoistNegated(e: Expr, bound: ReadonlySet<number>, scope: NegationScope): Expr[] | undefined {
  if (!e.negated || e.kind !== 'term') return undefined;
  const pre: Expr[] = [];
  const hoist = (t: Term): Term => {
    if (!isBound(t, bound)) return t;
    const slot = scope.newSlot();
    const v: Term = { type: 'var', name: `__not${slot}__`, slot, loc: t.loc };
    pre.push({ kind: 'term', term: { type: 'call', fn: ['eq'], args: [v, t], loc: t.loc, target: { kind: 'builtin', name: 'eq' } }, negated: false, with: e.with, loc: e.loc, hoisted: true });
    return v;
  };
  // an operand: refs and calls move out whole; collections are walked
  const operand = (t: Term): Term => {
    switch (t.type) {
      case 'ref':
      case 'call':
        return hoist(t);
      case 'array':
      case 'set':
        return { ...t, items: t.items.map(operand) };
      case 'object':
        return { ...t, items: t.items.map(([k, v]) => [operand(k), operand(v)] as [Term, Term]) };
      default:
        return t;
    }
  };
  // a term that stays in the negation: only what is nested in it moves
  const inPlace = (t: Term): Term => {
    switch (t.type) {
      case 'ref':
        return { ...t, head: t.head.type === 'call' ? hoist(t.head) : t.head, path: t.path.map(operand) };
      case 'call':
        return hoist(t);
      case 'array':
      case 'set':
      case 'object':
        return operand(t);
      default:
        return t;
    }
  };
  let term = e.term;
  if (term.type === 'call') {
    const op = term.fn.length === 1 ? term.fn[0] : undefined;
    const unify = term.target?.kind === 'builtin' && (op === 'eq' || (op === 'equal' && scope.equalIsUnify));
    term = { ...term, args: term.args.map(unify ? inPlace : operand) };
  } else {
    term = inPlace(term);
  }
  if (!pre.length) return undefined;
  return [...pre, { ...e, term }];
}

/** isBound tells whether every variable a term reads, ref keys included, is bound already. */
function isBound(t: Term, bound: ReadonlySet<number>): boolean {
  switch (t.type) {
    case 'var':
      return t.slot === undefined || bound.has(t.slot);
    case 'ref':
      return isBound(t.head, bound) && t.path.every((p) => isBound(p, bound));
    case 'array':
    case 'set':
      return t.items.every((x) => isBound(x, bound));
    case 'object':
      return t.items.every(([k, v]) => isBound(k, bound) && isBound(v, bound));
    case 'call':
      return t.args.every((a) => isBound(a, bound));
    case 'arraycompr':
    case 'setcompr':
    case 'objectcompr':
      return ((t as { free?: number[] }).free ?? []).every((s) => bound.has(s));
    case 'template':
      return false;
    default:
      return true;
  }
}
