import type { RefTerm, Rule, Term } from '../ast/types.js';
import { groundPrefix, type RuleNode } from '../compile/tree.js';
import { RegoError } from '../errors.js';
import { equal, fromJSON, isObject, ObjectBuilder, objEntries, objGet, RSet, type Value } from '../value.js';

import { isConstant } from './constant.js';
import { PartialCollector, type Slot } from './partial.js';
import type { EvalEngine, Frame, KV } from './types.js';
import { setPath } from './with.js';


/** plainParams tells whether every parameter of a function definition is a plain variable (memoised on the rule). */
function plainParams(r: Rule): boolean {
  return (r.plainParams ??= (r.args ?? []).every((p) => p.type === 'var' && p.slot !== undefined));
}

interface BodyRun {
  ev: EvalEngine;
  r: Rule;
  frame: Frame;
  body: Rule['body'];
  valueTerm: Term | undefined;
  out: Value | undefined;
  stopEarly: boolean;
  fn: boolean;
}

const stop = (): boolean => true;

/** marks a rule whose value is undefined in the per-query cache (one lookup per hit) */
const UNDEFINED: unique symbol = Symbol('undefined');

function runBodyOnce(st: BodyRun): boolean {
  return st.ev.evalBody(st.body, 0, st.frame, () => {
    if (!st.valueTerm) {
      st.out = true;
      return true;
    }
    return st.ev.evalTerm(st.valueTerm, st.frame, (v) => {
      if (st.out !== undefined && !equal(st.out, v)) throw new RegoError('eval_conflict_error', st.fn ? 'functions must not produce multiple outputs for same inputs' : 'complete rules must not produce multiple outputs', st.r.loc);
      st.out = v;
      return st.stopEarly;
    });
  });
}

/**
 * mergeDocs joins what two rule sources say about one path: sets unite, objects built from rule
 * paths merge, equal values agree; a complete rule's own value is never extended.
 */
function mergeDocs(a: Value, b: Value, loc: Rule['loc'] | undefined, leaves: WeakSet<object>): Value {
  if (equal(a, b)) return a;
  if (a instanceof RSet && b instanceof RSet) return new RSet([...a.values(), ...b.values()]);
  if (isObject(a) && isObject(b) && !leaves.has(a) && !leaves.has(b)) {
    const out = new ObjectBuilder();
    for (const [k, v] of objEntries(a)) out.set(k, v);
    for (const [k, v] of objEntries(b)) {
      const prev = out.get(k);
      out.set(k, prev === undefined ? v : mergeDocs(prev, v, loc, leaves));
    }
    return out.build();
  }
  throw new RegoError('eval_conflict_error', 'object keys must be unique', loc);
}

/** buildSlot turns a collected partial document into its value. */
function buildSlot(s: Slot): Value {
  if (s.leaf !== undefined) return s.leaf;
  if (s.set && !s.obj) return s.set;
  const b = new ObjectBuilder();
  for (const [, [key, child]] of s.obj ?? []) b.set(key, buildSlot(child));
  return b.build();
}

/**
 * dataRule finds, once per ref, the rule node a constant `data.pkg.rule...` prefix leads to when no
 * base document shares that path (null otherwise), so hot refs skip the tree walk. The answer
 * depends only on the rule tree and base data, which are fixed for the terms one compile made.
 */
export function dataRule(root: RuleNode, data: Value, t: RefTerm & { fast?: { node: RuleNode; depth: number } | null }): { node: RuleNode; depth: number } | null {
  if (t.fast !== undefined) return t.fast;
  let node = root;
  let base: Value | undefined = data;
  let found: { node: RuleNode; depth: number } | null = null;
  for (let i = 0; i < t.path.length; i++) {
    const p = t.path[i]!;
    if (p.type !== 'scalar' || typeof p.value !== 'string') break;
    const child = node.children.get(p.value);
    if (!child) break;
    base = base !== undefined && isObject(base) ? objGet(base, p.value) : undefined;
    if (base !== undefined) break;
    node = child;
    if (node.rules.length || node.dynamic.length || node.defaultRule) {
      if (!node.isFunction) found = { node, depth: i + 1 };
      break;
    }
  }
  t.fast = found;
  return found;
}

/** RuleEvaluator computes rule values (cached per query and `with` scope) and resolves `data` refs. */
export class RuleEvaluator {
  /** objects that are a complete rule's value (they must not be merged into); made on first use */
  private leafSet: WeakSet<object> | undefined;
  get leaves(): WeakSet<object> {
    return (this.leafSet ??= new WeakSet());
  }
  constructor(private ev: EvalEngine) {}

  /** a partial-document collector not in use */
  private spare: PartialCollector | undefined;

  /** reset forgets what one evaluation marked (the evaluator is used again). */
  reset(): void {
    this.leafSet = undefined;
  }

  /** metadata returns rego.metadata.rule() and rego.metadata.chain() for a rule. */
  metadata(r: Rule | undefined): { rule: Value; chain: Value } {
    if (!r) return { rule: Object.create(null) as Value, chain: [] };
    const pkg = r.module.pkg.slice(1);
    const path = [...pkg, ...r.ref.slice(0, groundPrefix(r.ref)).map((t) => String((t as { value: unknown }).value))];
    const chain: Value[] = [];
    const own = r.annotations && r.annotations.scope === 'rule' ? r.annotations : undefined;
    chain.push(fromJSON(own ? { path, annotations: own } : { path }));
    const node = this.ev.root.lookup(path);
    const siblings = node ? [...node.rules, ...node.dynamic.map((d) => d.rule), ...(node.defaultRule ? [node.defaultRule] : [])] : [];
    for (const s of siblings) if (s.annotations?.scope === 'document') chain.push(fromJSON({ path, annotations: s.annotations }));
    const pm = this.ev.root.modules?.find((m) => m.annotations && m.pkg.join('.') === r.module.pkg.join('.'));
    if (pm) chain.push(fromJSON({ path: pkg, annotations: pm.annotations }));
    return { rule: fromJSON(own ?? {}), chain };
  }

  /** resolveData walks `data` along path, mixing base documents and rules. */
  resolveData(node: RuleNode, base: Value | undefined, path: Term[], i: number, frame: Frame, k: KV): boolean {
    const ev = this.ev;
    const ov = ev.ctx.overrides;
    if (ov && node.path.length) {
      const hit = ov.get(node.path.join('\u0000'));
      if (hit !== undefined) return ev.walk(hit, path, i, frame, k);
    }
    if (node.rules.length || node.dynamic.length || node.defaultRule) {
      if (node.isFunction) return false;
      // where a base document and a rule define the same path, the base document wins (as in OPA)
      let v = base !== undefined ? base : this.nodeValue(node);
      if (ov) v = this.overlay(node.path, v);
      if (v === undefined) return false;
      return ev.walk(v, path, i, frame, k);
    }
    if (i === path.length) {
      const v = this.materialize(node, base);
      return v === undefined ? false : k(v);
    }
    const p = path[i]!;
    if (p.type === 'var' && p.slot !== undefined && frame[p.slot] === undefined) {
      const slot = p.slot;
      const keys = new Set<string>(node.children.keys());
      const extra: Value[] = [];
      if (base !== undefined && isObject(base)) for (const [key] of objEntries(base)) typeof key === 'string' ? keys.add(key) : extra.push(key);
      for (const key of [...[...keys].sort(), ...extra]) {
        frame[slot] = key;
        try {
          if (this.step(node, base, key, path, i, frame, k)) return true;
        } finally {
          frame[slot] = undefined;
        }
      }
      return false;
    }
    if (!ev.evaluable(p, frame)) {
      const v = this.materialize(node, base);
      return v === undefined ? false : ev.walk(v, path, i, frame, k);
    }
    if (p.type === 'scalar') return this.step(node, base, p.value, path, i, frame, k);
    return ev.evalTerm(p, frame, (key) => this.step(node, base, key, path, i, frame, k));
  }

  /** step descends from a package node by one key, into a child node or the base document. */
  private step(node: RuleNode, base: Value | undefined, key: Value, path: Term[], i: number, frame: Frame, k: KV): boolean {
    const ev = this.ev;
    const ov = ev.ctx.overrides;
    const child = typeof key === 'string' ? node.children.get(key) : undefined;
    // base documents are JSON: a number key reaches the string key of the same text
    let bchild = base !== undefined && isObject(base) ? objGet(base, key) : undefined;
    if (bchild === undefined && typeof key === 'number' && base !== undefined && isObject(base)) bchild = objGet(base, String(key));
    if (child) return this.resolveData(child, bchild, path, i + 1, frame, k);
    if (ov && typeof key === 'string') {
      const hit = ov.get([...node.path, key].join('\u0000'));
      if (hit !== undefined) return ev.walk(hit, path, i + 1, frame, k);
      const v = this.overlay([...node.path, key], bchild);
      return v === undefined ? false : ev.walk(v, path, i + 1, frame, k);
    }
    if (bchild !== undefined) return ev.walk(bchild, path, i + 1, frame, k, true);
    return false;
  }

  /** materialize builds the full document at a package node. */
  materialize(node: RuleNode, base: Value | undefined): Value | undefined {
    const ev = this.ev;
    const ov = ev.ctx.overrides;
    if (ov && node.path.length) {
      const hit = ov.get(node.path.join('\u0000'));
      if (hit !== undefined) return hit;
    }
    if (node.rules.length || node.dynamic.length || node.defaultRule) return node.isFunction ? undefined : this.nodeValue(node);
    const b = new ObjectBuilder();
    if (base !== undefined) {
      if (!isObject(base)) return node.children.size ? undefined : base;
      for (const [key, v] of objEntries(base)) b.set(key, v);
    }
    for (const [name, child] of node.children) {
      if (child.isFunction) continue;
      const bchild = base !== undefined && isObject(base) ? objGet(base, name) : undefined;
      const v = bchild !== undefined && (child.rules.length || child.dynamic.length) ? bchild : this.materialize(child, bchild);
      if (v !== undefined) b.set(name, v);
    }
    const out = b.build();
    return ov ? this.overlay(node.path, out) : out;
  }

  /** overlay applies `with data...` replacements that lie strictly below path to a value. */
  overlay(path: string[], v: Value | undefined): Value | undefined {
    const ov = this.ev.ctx.overrides;
    if (!ov) return v;
    const prefix = path.length ? path.join('\u0000') + '\u0000' : '';
    let out = v;
    for (const [key, x] of ov) {
      if (!key.startsWith(prefix) || key.length === prefix.length) continue;
      const rest = key.slice(prefix.length).split('\u0000');
      out = setPath(out ?? (Object.create(null) as Value), rest, x);
    }
    return out;
  }

  /** nodeValue returns the value of the rules at a node (cached for the query). */
  nodeValue(node: RuleNode): Value | undefined {
    const cache = this.ev.ctx.cache;
    const hit = cache.get(node);
    if (hit !== undefined) return hit === UNDEFINED ? undefined : (hit as Value);
    // true while the node is being evaluated (set back to false, never deleted: a map that shrinks reallocates)
    const busy = this.ev.inProgress;
    if (busy.get(node) === true) {
      const r = node.rules[0] ?? node.dynamic[0]?.rule;
      throw new RegoError('rego_recursion_error', `rule data.${node.path.join('.')} is recursive`, r?.loc);
    }
    busy.set(node, true);
    let v: Value | undefined;
    try {
      v = node.dynamic.length || (node.children.size && !node.rules.length) ? this.dynamicValue(node) : this.completeValue(node);
    } finally {
      busy.set(node, false);
    }
    cache.set(node, v === undefined ? UNDEFINED : v);
    return v;
  }

  private completeValue(node: RuleNode): Value | undefined {
    let result: Value | undefined;
    let resultRule: Rule | undefined;
    // indexed loops: this runs once per query, mostly before V8 optimizes it, where `for...of`
    // goes through the iterator protocol
    const rules = node.rules;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      const v = !r.elses.length && (r.value === undefined || r.value.type === 'scalar') ? this.constantRuleValue(r) : this.ruleValue(r, undefined);
      if (v === undefined) continue;
      if (result !== undefined && !equal(result, v)) throw new RegoError('eval_conflict_error', 'complete rules must not produce multiple outputs', (resultRule ?? r).loc);
      result = v;
      resultRule = r;
    }
    if (result === undefined && node.defaultRule) result = this.defaultValue(node.defaultRule);
    if (isObject(result)) this.leaves.add(result);
    return result;
  }

  /**
   * constantRuleValue evaluates `p if ...` / `p := <scalar> if ...` (no else): the first solution of
   * the body decides, so the body runs straight to a stop (fewer layers to run before V8 has
   * optimized them, on a path every evaluation takes).
   */
  private constantRuleValue(r: Rule): Value | undefined {
    const ev = this.ev;
    const frame: Frame = new Array(r.nslots ?? 0);
    const prevRule = ev.currentRule;
    ev.currentRule = r;
    const found = ev.evalBody(r.body, 0, frame, stop);
    ev.currentRule = prevRule;
    return found ? (r.value ? (r.value as { value: Value }).value : true) : undefined;
  }

  private defaultValue(r: Rule): Value | undefined {
    let out: Value | undefined;
    const frame: Frame = new Array(r.nslots ?? 0);
    this.ev.evalTerm(r.value!, frame, (v) => ((out = v), true));
    return out;
  }

  /** ruleValue evaluates one rule (with its else chain); args are unified first for functions. */
  private ruleValue(r: Rule, args: Value[] | undefined): Value | undefined {
    const frame: Frame = new Array(r.nslots ?? 0);
    let v = this.runBody(r, frame, args, r.body, r.value);
    if (v !== undefined) return v;
    for (const e of r.elses) {
      v = this.runBody(r, frame, args, e.body, e.value);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /** runBody finds the value one body of a rule produces (conflicting values are an error). */
  private runBody(r: Rule, frame: Frame, args: Value[] | undefined, body: Rule['body'], valueTerm: Term | undefined): Value | undefined {
    // no finally needed: an exception ends the whole evaluation
    const prevRule = this.ev.currentRule;
    this.ev.currentRule = r;
    const v = this.runBodyIn(r, frame, args, body, valueTerm);
    this.ev.currentRule = prevRule;
    return v;
  }

  private runBodyIn(r: Rule, frame: Frame, args: Value[] | undefined, body: Rule['body'], valueTerm: Term | undefined): Value | undefined {
    const st: BodyRun = { ev: this.ev, r, frame, body, valueTerm, out: undefined, stopEarly: !valueTerm || isConstant(valueTerm), fn: !!args };
    if (!args) runBodyOnce(st);
    else if (plainParams(r)) {
      // plain variable parameters bind directly (the frame belongs to this call)
      const ps = r.args!;
      for (let i = 0; i < ps.length; i++) {
        const slot = (ps[i] as { slot: number }).slot;
        const cur = frame[slot];
        if (cur !== undefined && !equal(cur, args[i]!)) return undefined;
        frame[slot] = args[i]!;
      }
      runBodyOnce(st);
    } else this.unifyArgs(r.args!, args, 0, frame, () => runBodyOnce(st));
    return st.out;
  }

  private unifyArgs(pats: Term[], args: Value[], i: number, frame: Frame, k: () => boolean): boolean {
    if (i === pats.length) return k();
    return this.ev.unify(pats[i]!, args[i]!, frame, () => this.unifyArgs(pats, args, i + 1, frame, k));
  }

  /** callFunction evaluates a user function's definitions for the given operands. */
  callFunction(node: RuleNode, args: Value[]): Value | undefined {
    // one definition with plain parameters and a constant value: run its body directly
    const only = node.rules.length === 1 && !node.defaultRule ? node.rules[0]! : undefined;
    if (only && !only.elses.length && (only.value === undefined || only.value.type === 'scalar') && plainParams(only)) {
      const ps = only.args!;
      if (ps.length !== args.length) return undefined;
      const frame: Frame = new Array(only.nslots ?? 0);
      for (let i = 0; i < ps.length; i++) {
        const slot = (ps[i] as { slot: number }).slot;
        const cur = frame[slot];
        if (cur !== undefined && !equal(cur, args[i]!)) return undefined;
        frame[slot] = args[i]!;
      }
      const ev = this.ev;
      const prevRule = ev.currentRule;
      ev.currentRule = only;
      const found = ev.evalBody(only.body, 0, frame, stop);
      ev.currentRule = prevRule;
      return found ? (only.value ? (only.value as { value: Value }).value : true) : undefined;
    }
    let result: Value | undefined;
    for (const r of node.rules) {
      if (r.args!.length !== args.length) continue;
      const v = this.ruleValue(r, args);
      if (v === undefined) continue;
      if (result !== undefined && !equal(result, v)) throw new RegoError('eval_conflict_error', 'functions must not produce multiple outputs for same inputs', r.loc);
      result = v;
    }
    if (result === undefined && node.defaultRule) result = this.defaultValue(node.defaultRule);
    return result;
  }

  /** dynamicValue builds the object or set produced by rules with variables in their heads. */
  private dynamicValue(node: RuleNode): Value | undefined {
    // one collector is kept for the next node (a node collected while another is, makes its own)
    let c = this.spare;
    if (c !== undefined) {
      this.spare = undefined;
      c.reset();
    } else c = new PartialCollector(this.ev, this);
    c.collect(node);
    const root = c.root;
    const isSet = c.isSet;
    this.spare = c;
    let out: Value;
    if (isSet && !root.obj) out = root.set ?? new RSet();
    else out = buildSlot(root);
    if (node.children.size && isObject(out)) {
      const b = new ObjectBuilder();
      for (const [key, v] of objEntries(out)) b.set(key, v);
      for (const [name, child] of node.children) {
        if (child.isFunction) continue;
        const v = this.materialize(child, undefined);
        if (v === undefined) continue;
        const prev = b.get(name);
        b.set(name, prev === undefined ? v : mergeDocs(prev, v, node.dynamic[0]?.rule.loc, this.leaves));
      }
      out = b.build();
    }
    if (node.rules.length) {
      const v = this.completeValue(node);
      if (v !== undefined) return v;
    }
    if (!node.dynamic.length && isObject(out) && !(out instanceof RSet) && node.defaultRule && Object.keys(out).length === 0) return this.defaultValue(node.defaultRule);
    return out;
  }
}
