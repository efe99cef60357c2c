import type { CallTerm, Expr, Term } from '../ast/types.js';
import type { Builtin } from '../builtins/types.js';
import type { RuleNode } from '../compile/tree.js';
import { RDecimal, RObject, RSet, type Value } from '../value.js';
import { index } from './context.js';
import { NS, type EvalEngine, type Frame } from './types.js';
import { indexPlan } from './index-scan.js';
import { constantRule, constantTerm } from './constant.js';

/** Reader evaluates a plain term (constant, bound variable, ref into input or a bound value) without continuations. */
export type Reader = (ev: EvalEngine, frame: Frame) => Value | undefined | typeof NS;

/**
 * QuickPlan is what a closure step (`steps.ts`, used when code is not generated) needs to decide
 * a pure test expression, worked out once per expression: the step reads no AST nodes (whose many
 * shapes make property access slow) and evaluates operands through precompiled readers.
 */
export interface QuickPlan {
  /** 0: `a = b`, 1: built-in call, 2: user function call, 3: bare term, 4: `some x in <plain term>` */
  kind: 0 | 1 | 2 | 3 | 4;
  negated: boolean;
  readers: Reader[];
  call: CallTerm | undefined;
  builtin: Builtin | undefined;
  node: RuleNode | undefined;
  /** the built-in's name, for error messages */
  name: string;
  /** the loop variable of `some x in xs` (kind 4) */
  slot: number;
}

const readConst = (v: Value): Reader => () => v;

type Getter = (o: object) => Value | undefined;

/**
 * getter makes a reader of one constant property. Each ref site gets its own function, so V8's
 * inline cache for `o[KEY]` stays monomorphic when the input objects share a shape (as JSON
 * documents of one kind do), where a shared `o[k]` lookup would be megamorphic. The key is
 * embedded as a JSON string literal, which is always a valid, inert JavaScript expression.
 */
function getter(key: string): Getter {
  try {
    return new Function('o', `return o[${JSON.stringify(key)}];`) as Getter;
  } catch {
    // code generation from strings is disabled (--disallow-code-generation-from-strings)
    return (o) => (o as Record<string, Value>)[key];
  }
}

/** reader compiles a term that `EvalEngine.simple` can evaluate (plus literal collections); null for every other term. */
export function reader(t: Term, ev: EvalEngine): Reader | null {
  switch (t.type) {
    case 'scalar':
      return readConst(t.value);
    case 'array':
    case 'set':
    case 'object': {
      const v = constantTerm(t, ev);
      return v === undefined ? null : readConst(v);
    }
    case 'var': {
      const slot = t.slot;
      if (slot !== undefined) return (_ev, frame) => frame[slot] ?? NS;
      if (t.name === 'input') return (ev) => ev.ctx.input;
      return null;
    }
    case 'ref': {
      const h = t.head;
      if (h.type !== 'var') return null;
      const hs = h.slot;
      if (hs === undefined && h.name === 'data') {
        // data.pkg.rule: the rule's value (cached per query), unless `with` replaces part of data
        const fast = ev.dataFastPath(t);
        if (fast && fast.depth === t.path.length) {
          const node = fast.node;
          const c = constantRule(node, ev);
          if (c !== undefined) return (ev2, frame) => (ev2.ctx.overrides ? ev2.simple(t, frame) : c);
          return (ev2, frame) => (ev2.ctx.overrides ? ev2.simple(t, frame) : ev2.rules.nodeValue(node));
        }
        return (ev2, frame) => ev2.simple(t, frame);
      }
      if (hs === undefined && h.name !== 'input') return null;
      const n = t.path.length;
      const consts: Array<Value | undefined> = new Array(n);
      const slots: number[] = new Array(n);
      const getters: Array<Getter | undefined> = new Array(n);
      for (let i = 0; i < n; i++) {
        const p = t.path[i]!;
        if (p.type === 'scalar') {
          consts[i] = p.value;
          slots[i] = -1;
          if (typeof p.value === 'string' && p.value !== '__proto__') getters[i] = getter(p.value);
        } else if (p.type === 'var' && p.slot !== undefined) slots[i] = p.slot;
        else return null;
      }
      return (ev, frame) => {
        let v: Value | undefined;
        if (hs === undefined) v = ev.ctx.input;
        else {
          v = frame[hs];
          if (v === undefined) return NS;
        }
        for (let i = 0; i < n; i++) {
          if (v === undefined) return undefined;
          const s = slots[i]!;
          let key: Value | undefined;
          const g = getters[i];
          if (g !== undefined && typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof RSet) && !(v instanceof RObject) && !(v instanceof RDecimal)) {
            // a plain object and a constant key: a property read this site's inline cache speeds up
            const x = g(v);
            v = typeof x === 'function' ? undefined : x;
            continue;
          }
          if (s < 0) key = consts[i];
          else {
            key = frame[s];
            if (key === undefined) return NS;
          }
          v = index(v, key!);
        }
        return v;
      };
    }
    default:
      return null;
  }
}

/** quickPlan works out the plan of an expression, or null when it needs the general evaluator. */
export function quickPlan(ev: EvalEngine, e: Expr, next: Expr | undefined): QuickPlan | null {
  if (e.kind === 'somein' && !e.key && !e.negated && !e.with.length && e.value.type === 'var' && e.value.slot !== undefined) {
    // an indexed scan (`some x in xs; x.f == v`) is better still
    if (next && indexPlan(ev, e, next)) return null;
    const r = reader(e.domain, ev);
    return r ? { kind: 4, negated: false, readers: [r], call: undefined, builtin: undefined, node: undefined, name: '', slot: e.value.slot } : null;
  }
  if (e.kind !== 'term' || e.with.length) return null;
  const t = e.term;
  const plan = (kind: QuickPlan['kind'], terms: Term[], call?: CallTerm, builtin?: Builtin, node?: RuleNode, name = ''): QuickPlan | null => {
    const readers: Reader[] = [];
    for (const x of terms) {
      const r = reader(x, ev);
      if (!r) return null;
      readers.push(r);
    }
    return { kind, negated: e.negated, readers, call, builtin, node, name, slot: -1 };
  };
  if (t.type !== 'call') return plan(3, [t]);
  const tgt = t.target;
  if (!tgt) return null;
  if (tgt.kind === 'func') {
    const node = ev.funcNode(tgt);
    if (!node || node.rules[0]?.args?.length !== t.args.length) return null;
    return plan(2, t.args, t, undefined, node);
  }
  if (tgt.kind !== 'builtin' || tgt.name === 'assign') return null;
  if (tgt.name === 'eq') return t.args.length === 2 ? plan(0, t.args, t) : null;
  const bi = ev.builtinOf(tgt);
  if (!bi || bi.relation || bi.arity < 0 || t.args.length !== bi.arity) return null;
  return plan(1, t.args, t, bi, undefined, tgt.name);
}
