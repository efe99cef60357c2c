import type { Term } from '../ast/types.js';
import type { RuleNode } from '../compile/tree.js';
import { ObjectBuilder, RSet, type Value } from '../value.js';

/** isConstant tells whether a term is a literal whose value never changes (scalars and collections of them). */
export function isConstant(t: Term): t is ConstantTerm {
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

/** a term isConstant accepts: a scalar, or a collection of constant terms */
type ConstantTerm = Extract<Term, { type: 'scalar' | 'array' | 'set' | 'object' }>;

/** constantValue builds the value of a constant term, as the general evaluator would each time. */
function constantValue(t: ConstantTerm): Value {
  switch (t.type) {
    case 'scalar':
      return t.value;
    case 'array':
      return (t.items as ConstantTerm[]).map(constantValue);
    case 'set':
      return new RSet((t.items as ConstantTerm[]).map(constantValue));
    case 'object': {
      const b = new ObjectBuilder();
      for (const [k, v] of t.items as Array<[ConstantTerm, ConstantTerm]>) b.set(constantValue(k), constantValue(v));
      return b.build();
    }
  }
}

/**
 * constantRule returns the value of a rule node whose only definition is `name := <literal>` with
 * no body (`allowed := ["a", "b"]`): the same for every evaluation, so it needs no per-query cache.
 */
export function constantRule(node: RuleNode): Value | undefined {
  if (node.rules.length !== 1 || node.dynamic.length || node.defaultRule || node.children.size) return undefined;
  const r = node.rules[0]!;
  if (r.kind !== 'complete' || r.elses.length || !r.value || !isConstant(r.value) || r.body.length !== 1) return undefined;
  const e = r.body[0]!;
  if (e.kind !== 'term' || e.negated || e.with.length || e.term.type !== 'scalar' || e.term.value !== true) return undefined;
  return constantValue(r.value);
}

/**
 * constantTerm returns the value of a literal collection of constants (`["a/", "b/"]`), built once:
 * values are never changed in place, so every evaluation can share it. Undefined for other terms.
 */
export function constantTerm(t: Term): Value | undefined {
  return isConstant(t) ? constantValue(t) : undefined;
}
