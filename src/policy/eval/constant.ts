import type { Term } from '../ast/types.js';
import type { RuleNode } from '../compile/tree.js';
import type { Value } from '../value.js';
import type { EvalEngine } from './types.js';

/** isConstant tells whether a term is a literal whose value never changes (scalars and collections of them). */
export function isConstant(t: Term): boolean {
  switch (t.type) {
    case 'scalar':
      return true;
    case 'array':
    case 'set':
      return t.items.every(isConstant);
    case 'object':
      return t.items.every(([a, b]) => isConstant(a) && isConstant(b));
    default:
      return false;
  }
}

/** constantValue evaluates a constant term once, as the general evaluator would each time. */
function constantValue(t: Term, ev: EvalEngine): Value | undefined {
  let out: Value | undefined;
  ev.evalTerm(t, [], (v) => ((out = v), true));
  return out;
}

/**
 * constantRule returns the value of a rule node whose only definition is `name := <literal>` with
 * no body (`allowed := ["a", "b"]`): the same for every evaluation, so it needs no per-query cache.
 */
export function constantRule(node: RuleNode, ev: EvalEngine): Value | undefined {
  if (node.rules.length !== 1 || node.dynamic.length || node.defaultRule || node.children.size) return undefined;
  const r = node.rules[0]!;
  if (r.kind !== 'complete' || r.elses.length || !r.value || !isConstant(r.value) || r.body.length !== 1) return undefined;
  const e = r.body[0]!;
  if (e.kind !== 'term' || e.negated || e.with.length || e.term.type !== 'scalar' || e.term.value !== true) return undefined;
  return constantValue(r.value, ev);
}

/**
 * constantTerm returns the value of a literal collection of constants (`["a/", "b/"]`), built once:
 * values are never changed in place, so every evaluation can share it. Undefined for other terms.
 */
export function constantTerm(t: Term, ev: EvalEngine): Value | undefined {
  return isConstant(t) ? constantValue(t, ev) : undefined;
}
