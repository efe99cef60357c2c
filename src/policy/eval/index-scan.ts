import type { Expr, Term } from '../ast/types.js';
import { isObject, keyOf, objGet, type Value } from '../value.js';

import { type EvalEngine, type Frame, type K, NS, type Step } from './types.js';

/** IndexPlan describes an indexable scan: the loop variable, the field path and the compared term. */
export interface IndexPlan {
  slot: number;
  path: string[];
  other: Term;
  domain: Term;
}

/** mentionsSlot tells whether a term reads a variable slot. */
function mentionsSlot(t: unknown, slot: number): boolean {
  if (!t || typeof t !== 'object') return false;
  if (Array.isArray(t)) return t.some((x) => mentionsSlot(x, slot));
  const o = t as Record<string, unknown>;
  if (o.type === 'var' && o.slot === slot) return true;
  if (Array.isArray(o.free) && (o.free as number[]).includes(slot)) return true;
  // the evaluation cache `fast` hangs off refs and leads back into the rule tree: skip it
  for (const [key, v] of Object.entries(o)) if (key !== 'loc' && key !== 'target' && key !== 'fast' && mentionsSlot(v, slot)) return true;
  return false;
}

/** readsUnbound tells whether a term reads a variable not bound before its expression (then `=` binds it: no comparison). */
function readsUnbound(t: Term, bound: ReadonlySet<number> | undefined): boolean {
  if (!bound) return false;
  switch (t.type) {
    case 'var':
      return t.slot !== undefined && !bound.has(t.slot);
    case 'ref':
      return readsUnbound(t.head, bound) || t.path.some((p) => readsUnbound(p, bound));
    case 'array':
    case 'set':
      return t.items.some((x) => readsUnbound(x, bound));
    case 'object':
      return t.items.some(([a, b]) => readsUnbound(a, bound) || readsUnbound(b, bound));
    case 'call':
      return t.args.some((x) => readsUnbound(x, bound));
    default:
      return false;
  }
}

/**
 * indexPlan recognises `some x in xs` followed by `x.f.g == <term without x>`: the scan can then
 * jump to the matching elements through a hash index (memoised per array), as OPA's rule index does
 * for rule heads.
 */
export function indexPlan(e: Expr, next: Expr): IndexPlan | null {
  let plan: IndexPlan | null = null;
  if (e.kind !== 'somein') return null;
  const domain = e.domain;
  const v = !e.key && !e.negated && !e.with.length ? e.value : undefined;
  if (v && v.type === 'var' && v.slot !== undefined && next.kind === 'term' && !next.negated && !next.with.length && next.term.type === 'call') {
    const c = next.term;
    const op = c.fn.length === 1 ? c.fn[0] : '';
    if ((op === 'equal' || op === 'eq') && c.target?.kind === 'builtin' && c.args.length === 2) {
      for (const [a, b] of [[c.args[0]!, c.args[1]!], [c.args[1]!, c.args[0]!]] as const) {
        if (a.type === 'ref' && a.head.type === 'var' && a.head.slot === v.slot && a.path.length && a.path.every((p) => p.type === 'scalar' && typeof p.value === 'string') && !mentionsSlot(b, v.slot) && !readsUnbound(b, next.bound)) {
          // (`t = x.f` with t not bound yet, such as an operand hoisted out of a negation, binds t: it compares nothing)
          plan = { slot: v.slot, path: a.path.map((p) => (p as { value: string }).value), other: b, domain };
          break;
        }
      }
    }
  }
  return plan;
}

/**
 * evalIndexed runs `some x in xs; x.f == v; ...` (expression e, then the step `next` for the
 * comparison) visiting only the elements whose field equals v, each continuing with `after`, the
 * step after the comparison. Whatever is not an array, or a v that needs the general evaluator,
 * takes the general path through e and `next`.
 */
export function evalIndexed(ev: EvalEngine, plan: IndexPlan, e: Expr, next: Step, after: Step, frame: Frame, k: K): boolean {
  return ev.evalTerm(plan.domain, frame, (coll) => {
    const want = Array.isArray(coll) && frame[plan.slot] === undefined && !ev.ctx.mocks ? ev.simple(plan.other, frame) : NS;
    if (want === NS || !Array.isArray(coll)) return ev.evalExpr(e, frame, () => next(ev, frame, k));
    if (want === undefined) return false;
    const hits = arrayIndex(ev, coll, plan.path).get(keyOf(want));
    if (!hits) return false;
    const slot = plan.slot;
    try {
      for (const j of hits) {
        ev.tick();
        frame[slot] = coll[j]!;
        if (after(ev, frame, k)) return true;
      }
      return false;
    } finally {
      frame[slot] = undefined;
    }
  });
}

/**
 * arrayIndex maps the canonical key of xs[_].path to element positions. Arrays of the engine's base
 * data are immutable, so their index is kept across evaluations; any other array (input, rule values)
 * may change between evaluations, so its index lives for one evaluation only.
 */
export function arrayIndex(ev: EvalEngine, xs: Value[], path: string[]): Map<string, number[]> {
  const shared = ev.bctx.shared;
  const dataArrays = shared.get('dataArrays') as WeakSet<Value[]> | undefined;
  const home = dataArrays?.has(xs) ? shared : ev.local;
  let byArray = home.get('ix') as WeakMap<Value[], Map<string, Map<string, number[]>>> | undefined;
  if (!byArray) home.set('ix', (byArray = new WeakMap()));
  let byPath = byArray.get(xs);
  if (!byPath) byArray.set(xs, (byPath = new Map()));
  const pk = path.join('\u0000');
  let ix = byPath.get(pk);
  if (!ix) {
    ix = new Map();
    for (let j = 0; j < xs.length; j++) {
      let v: Value | undefined = xs[j]!;
      for (const p of path) {
        v = v !== undefined && isObject(v) ? objGet(v, p) : undefined;
        if (v === undefined) break;
      }
      if (v === undefined) continue;
      const key = keyOf(v);
      const list = ix.get(key);
      if (list) list.push(j);
      else ix.set(key, [j]);
    }
    byPath.set(pk, ix);
  }
  return ix;
}
