import type { Rule, Term } from '../ast/types.js';
import type { RuleNode } from '../compile/tree.js';
import { RegoError } from '../errors.js';
import { equal, isObject, keyOf, RSet, type Value } from '../value.js';

import type { EvalEngine, Frame } from './types.js';

/** Slot is one level of a partial document being built: a set, a leaf value or an object of slots. */
export type Slot = { set?: RSet; leaf?: Value; obj?: Map<string, [Value, Slot]>; has: boolean };

const NO_KEYS: Value[] = [];

/**
 * PartialCollector gathers what the rules with variables in their heads (`deny contains msg if`,
 * `p[k] := v if`) produce at one node. One collector serves every rule of the node, with its
 * continuations made once: evaluating a partial set then costs a frame per rule, not a set of
 * closures per rule.
 */
export class PartialCollector {
  root: Slot = { has: false };
  /** a `contains` rule without key terms makes the document a set */
  isSet = false;
  private rule: Rule | undefined;
  private frame: Frame = [];
  private tail: Term[] = [];
  private valueTerm: Term | undefined;
  private keys: Value[] = NO_KEYS;
  private produced = false;

  constructor(
    private readonly ev: EvalEngine,
    /** keeps the objects that are a complete value (never merged into); its set is made on first use */
    private readonly values: { readonly leaves: WeakSet<object> },
  ) {}

  /** reset readies a collector whose document has been taken for another node. */
  reset(): void {
    this.root = { has: false };
    this.isSet = false;
    this.rule = undefined;
    this.frame = [];
    this.tail = [];
    this.valueTerm = undefined;
    this.keys = NO_KEYS;
    this.produced = false;
  }

  /** collect evaluates each dynamic rule of node (and its else chain when the rule produced nothing). */
  collect(node: RuleNode): void {
    const ev = this.ev;
    // indexed loops: this runs once per query, mostly before V8 optimizes it, where `for...of`
    // goes through the iterator protocol
    const dynamic = node.dynamic;
    for (let i = 0; i < dynamic.length; i++) {
      const d = dynamic[i]!;
      const r = d.rule;
      // the compiler rewrote the head ref in place; its resolved key terms are taken once
      const tail = (d.resolved ??= r.ref.slice(r.ref.length - d.tail.length));
      if (r.kind === 'multi' && !tail.length) this.isSet = true;
      const frame: Frame = new Array(r.nslots ?? 0);
      this.rule = r;
      this.frame = frame;
      this.tail = tail;
      this.valueTerm = r.kind === 'multi' ? r.key! : r.value;
      this.produced = false;
      const prevRule = ev.currentRule;
      ev.currentRule = r;
      try {
        ev.evalBody(r.body, 0, frame, this.onSolution);
      } finally {
        ev.currentRule = prevRule;
      }
      if (this.produced) continue;
      for (let j = 0; j < r.elses.length; j++) {
        const e = r.elses[j]!;
        this.valueTerm = e.value ?? { type: 'scalar', value: true, loc: e.loc };
        ev.evalBody(e.body, 0, frame, this.onSolution);
        if (this.produced) break;
      }
    }
  }

  private readonly onSolution = (): boolean => (this.tail.length ? this.ev.evalList(this.tail, this.frame, this.onKeys) : this.onKeys(NO_KEYS));

  private readonly onKeys = (keys: Value[]): boolean => {
    if (!this.valueTerm) {
      this.insert(keys, true);
      return false;
    }
    this.keys = keys;
    return this.ev.evalTerm(this.valueTerm, this.frame, this.onValue);
  };

  private readonly onValue = (v: Value): boolean => {
    this.insert(this.keys, v);
    return false;
  };

  private insert(keys: Value[], v: Value): void {
    const r = this.rule!;
    let s = this.root;
    for (let i = 0; i < keys.length; i++) {
      s.obj ??= new Map();
      const kk = keyOf(keys[i]!);
      let next = s.obj.get(kk);
      if (!next) {
        next = [keys[i]!, { has: false }];
        s.obj.set(kk, next);
      }
      if (next[1].leaf !== undefined && i < keys.length - 1) throw new RegoError('eval_conflict_error', 'object keys must be unique', r.loc);
      s = next[1];
    }
    if (r.kind === 'multi') {
      (s.set ??= new RSet()).add(v);
    } else {
      if (s.leaf !== undefined && !equal(s.leaf, v)) throw new RegoError('eval_conflict_error', 'object keys must be unique', r.loc);
      if (s.obj?.size) throw new RegoError('eval_conflict_error', 'object keys must be unique', r.loc);
      s.leaf = v;
      if (isObject(v)) this.values.leaves.add(v);
    }
    s.has = true;
    this.produced = true;
  }
}
