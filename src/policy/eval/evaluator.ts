import type { CallTerm, Expr, Rule, Term } from '../ast/types.js';
import { type Builtin, BuiltinError } from '../builtins/types.js';
import type { RuleNode } from '../compile/tree.js';
import { EvalCancelError, RegoError } from '../errors.js';
import {
  equal,
  formatValue,
  isObject,
  ObjectBuilder,
  objEntries,
  objGet,
  type PlainObject,
  RObject,
  RSet,
  type Value,
} from '../value.js';

import { EvalBuiltinContext, index } from './context.js';
import { dataRule,RuleEvaluator } from './rules.js';
import type { StepCompiler } from './steps.js';
import { type Ctx, type EvalEngine, type EvalOptions, type Frame, type K, type KV, type Mock,NS } from './types.js';
import { evalWith } from './with.js';

export type { Ctx, EvalOptions, Frame, K, KV, Mock, TraceEvent } from './types.js';

/** Evaluator runs compiled Rego top-down with unification and backtracking (continuation style). */
export class Evaluator implements EvalEngine {
  ctx: Ctx;
  steps = 0;
  strict: boolean;
  readonly rules: RuleEvaluator;
  readonly bctx: EvalBuiltinContext;
  private busy: Map<RuleNode, boolean> | undefined;
  /** rules being evaluated (true), for recursion only found at run time; made on first use */
  get inProgress(): Map<RuleNode, boolean> {
    return (this.busy ??= new Map());
  }
  lastValue: Value = true;
  sink: RSet | Value[] | undefined = undefined;
  private readonly scratch: Value[][] = [];
  private localMemo: Map<string, unknown> | undefined;
  /** per-evaluation memo (indexes over arrays that are not base data), made on first use */
  get local(): Map<string, unknown> {
    return (this.localMemo ??= new Map());
  }
  /** the rule whose body is being evaluated (for rego.metadata.*) */
  currentRule: Rule | undefined;

  constructor(
    readonly root: RuleNode,
    readonly data: Value,
    readonly builtins: (name: string) => Builtin | undefined,
    /** the engine's compiled tier */
    private readonly stepCompiler: StepCompiler,
    input: Value | undefined,
    public opts: EvalOptions,
    /** absolute deadline (ms since the epoch) when it is not opts.deadline: a prepared query's timeoutMs, set per evaluation */
    deadline?: number,
  ) {
    this.deadline = deadline ?? opts.deadline;
    this.base = { input, overrides: undefined, mocks: undefined, cache: new Map() };
    this.ctx = this.base;
    this.strict = !!opts.strict;
    this.stepLimit = opts.stepLimit ?? Infinity;
    this.tracer = opts.tracer;
    // tracing reports every step, which only the general evaluator does
    this.compiled = opts.tracer || opts.compiled === false ? undefined : stepCompiler;
    this.rules = new RuleEvaluator(this);
    this.bctx = new EvalBuiltinContext(this);
  }

  /** the scope of the whole evaluation (a `with` scope replaces ctx for a while) */
  private readonly base: Ctx;

  /**
   * reset readies an evaluator that has finished for another evaluation of the same prepared query
   * (the same rule tree, data, built-ins and compiled tier), so that an evaluation allocates no
   * evaluator, scope, caches or built-in context: everything one evaluation set is set again here.
   */
  reset(input: Value | undefined, opts: EvalOptions, deadline?: number): void {
    this.opts = opts;
    this.deadline = deadline ?? opts.deadline;
    const base = this.base;
    base.input = input;
    base.overrides = undefined;
    base.mocks = undefined;
    this.ctx = base;
    this.steps = 0;
    this.strict = !!opts.strict;
    this.stepLimit = opts.stepLimit ?? Infinity;
    this.tracer = opts.tracer;
    this.compiled = opts.tracer || opts.compiled === false ? undefined : this.stepCompiler;
    this.lastValue = true;
    this.sink = undefined;
    this.currentRule = undefined;
    this.start = undefined;
    this.localMemo = undefined;
    this.rules.reset();
    this.bctx.reset();
  }

  /**
   * release drops what the evaluation held (its input, rule values), so an idle evaluator keeps
   * nothing alive; after an evaluation that threw, rules it left marked as in progress are forgotten.
   */
  release(threw: boolean): void {
    if (threw) this.busy?.clear();
    this.base.input = undefined;
    this.base.cache.clear();
    this.ctx = this.base;
    this.localMemo = undefined;
    this.sink = undefined;
    this.lastValue = true;
    this.rules.reset();
    this.bctx.reset();
  }

  private start: number | undefined;
  /**
   * evaluation time (ms since the epoch) for time.now_ns: read on first use, then fixed for the
   * query (reading the clock costs more than many a whole evaluation that never asks for it)
   */
  get startMs(): number {
    return (this.start ??= Date.now());
  }

  /** options read on every step, copied out of opts once (reading the options object is slow) */
  stepLimit: number;
  private deadline: number | undefined;
  tracer: EvalOptions['tracer'];
  /** the compiled tier, unless this evaluation runs everything on the general evaluator */
  private compiled: StepCompiler | undefined;

  /** tick counts one step; kept this small so that V8 inlines it into every loop. */
  tick(): void {
    if (++this.steps > this.stepLimit || (this.steps & 1023) === 0) this.checkLimits();
  }

  /** checkLimits enforces the step limit on every step, the deadline and cancellation every 1024 steps. */
  private checkLimits(): void {
    const s = this.steps;
    if (s > this.stepLimit) throw new EvalCancelError(`evaluation exceeded the step limit of ${this.stepLimit}`);
    if ((s & 1023) === 0) this.checkDeadline();
  }

  /**
   * checkDeadline throws when the evaluation is past its deadline or cancelled. Steps call it every
   * 1024 steps; built-ins call it (through their context) inside their own loops, so that no single
   * call outlives the deadline by more than a few thousand iterations.
   */
  checkDeadline(): void {
    if (this.deadline !== undefined && Date.now() > this.deadline) throw new EvalCancelError('evaluation exceeded its deadline');
    if (this.opts.signal?.aborted) throw new EvalCancelError('evaluation cancelled');
  }

  /** remainingMs is the time left before the deadline (Infinity without one). */
  remainingMs(): number {
    return this.deadline === undefined ? Infinity : this.deadline - Date.now();
  }

  /**
   * evalBody evaluates body[i..]: through the compiled tier (eval/steps.ts: each body compiled once
   * per engine into steps that run pure tests, `some x in` loops and direct function calls without
   * continuations, and hand everything else to evalExpr), else expression by expression here.
   */
  evalBody(body: Expr[], i: number, frame: Frame, k: K): boolean {
    const c = this.compiled;
    if (c !== undefined) return c.chain(body)[i]!(this, frame, k);
    if (i === body.length) return k();
    return this.evalExpr(body[i]!, frame, () => this.evalBody(body, i + 1, frame, k));
  }

  /** scratchArgs returns the operand array reused by built-in calls of arity n (built-ins never keep it). */
  scratchArgs(n: number): Value[] {
    return (this.scratch[n] ??= new Array<Value>(n));
  }

  evalExpr(e: Expr, frame: Frame, k: K): boolean {
    this.tick();
    const tr = this.tracer;
    if (tr) {
      tr({ op: 'eval', loc: e.loc, text: '' });
      let ok = false;
      const r = this.evalExprTraced(e, frame, () => ((ok = true), k()));
      if (!ok) tr({ op: 'fail', loc: e.loc, text: '' });
      return r;
    }
    return this.evalExprTraced(e, frame, k);
  }

  private evalExprTraced(e: Expr, frame: Frame, k: K): boolean {
    if (e.with.length) return evalWith(this, e, frame, k);
    if (e.negated) {
      let found = false;
      this.evalExprInner(e, frame, () => (found = true));
      return found ? false : k();
    }
    return this.evalExprInner(e, frame, k);
  }

  private evalExprInner(e: Expr, frame: Frame, k: K): boolean {
    switch (e.kind) {
      case 'term':
        return this.evalTermExpr(e.term, frame, k);
      case 'some':
        return k();
      case 'somein':
        return this.evalTerm(e.domain, frame, (coll) =>
          this.iterate(coll, (key, val) => {
            if (e.key) return this.unify(e.key, key, frame, () => this.unify(e.value, val, frame, k));
            return this.unify(e.value, val, frame, k);
          }),
        );
      case 'every':
        return this.evalTerm(e.domain, frame, (coll) => {
          if (!Array.isArray(coll) && !isObject(coll) && !(coll instanceof RSet)) return false;
          let ok = true;
          this.iterate(coll, (key, val) => {
            let found = false;
            const body = (): boolean => this.evalBody(e.body, 0, frame, () => (found = true));
            if (e.key) this.unify(e.key, key, frame, () => this.unify(e.value, val, frame, body));
            else this.unify(e.value, val, frame, body);
            if (!found) ok = false;
            return !ok;
          });
          return ok ? k() : false;
        });
    }
  }

  private evalTermExpr(t: Term, frame: Frame, k: K): boolean {
    if (t.type === 'call' && t.target?.kind === 'builtin' && t.fn.length === 1) {
      if (t.fn[0] === 'eq') {
        this.lastValue = true;
        return this.unifyTerms(t.args[0]!, t.args[1]!, frame, k);
      }
      if (t.fn[0] === 'assign') {
        this.lastValue = true;
        return this.evalTerm(t.args[1]!, frame, (v) => this.unify(t.args[0]!, v, frame, k));
      }
    }
    return this.evalTerm(t, frame, (v) => {
      if (v === false) return false;
      this.lastValue = v;
      return k();
    });
  }

  /** iterate calls f for each (key, value) of a collection. */
  iterate(coll: Value, f: (k: Value, v: Value) => boolean): boolean {
    this.tick();
    if (Array.isArray(coll)) {
      for (let i = 0; i < coll.length; i++) {
        if (i && (i & 63) === 0) this.tick();
        if (f(i, coll[i]!)) return true;
      }
    } else if (coll instanceof RSet) {
      for (const v of coll.values()) {
        this.tick();
        if (f(v, v)) return true;
      }
    } else if (isObject(coll)) {
      for (const [key, v] of objEntries(coll)) {
        this.tick();
        if (f(key, v)) return true;
      }
    }
    return false;
  }

  /** ground tells whether a term can be evaluated as a value now (ref keys may still iterate). */
  evaluable(t: Term, frame: Frame): boolean {
    switch (t.type) {
      case 'scalar':
        return true;
      case 'var':
        return t.slot === undefined || frame[t.slot] !== undefined;
      case 'ref':
        return t.head.type !== 'var' || this.evaluable(t.head, frame);
      case 'array':
      case 'set':
        return t.items.every((x) => this.evaluable(x, frame));
      case 'object':
        return t.items.every(([a, b]) => this.evaluable(a, frame) && this.evaluable(b, frame));
      case 'call':
        return t.args.every((x) => this.evaluable(x, frame));
      default:
        return true;
    }
  }

  unifyTerms(a: Term, b: Term, frame: Frame, k: K): boolean {
    if (this.evaluable(a, frame)) return this.evalTerm(a, frame, (v) => this.unify(b, v, frame, k));
    if (this.evaluable(b, frame)) return this.evalTerm(b, frame, (v) => this.unify(a, v, frame, k));
    if (a.type === 'array' && b.type === 'array') {
      if (a.items.length !== b.items.length) return false;
      return this.unifyPairs(a.items.map((x, i) => [x, b.items[i]!]), frame, k);
    }
    if (a.type === 'object' && b.type === 'object') {
      if (a.items.length !== b.items.length) return false;
      const pairs: Array<[Term, Term]> = [];
      for (const [ka, va] of a.items) {
        const m = b.items.find(([kb]) => kb.type === 'scalar' && ka.type === 'scalar' && equal(kb.value, ka.value));
        if (!m) return false;
        pairs.push([va, m[1]]);
      }
      return this.unifyPairs(pairs, frame, k);
    }
    throw new RegoError('rego_unsafe_var_error', 'cannot unify two unbound terms', a.loc);
  }

  private unifyPairs(pairs: Array<[Term, Term]>, frame: Frame, k: K): boolean {
    if (!pairs.length) return k();
    let idx = pairs.findIndex(([x, y]) => this.evaluable(x, frame) || this.evaluable(y, frame));
    if (idx < 0) idx = 0;
    const [x, y] = pairs[idx]!;
    const rest = pairs.filter((_, i) => i !== idx);
    return this.unifyTerms(x, y, frame, () => this.unifyPairs(rest, frame, k));
  }

  /** unify matches a pattern term against a value, binding unbound variables. */
  unify(t: Term, v: Value, frame: Frame, k: K): boolean {
    switch (t.type) {
      case 'scalar':
        return equal(t.value, v) ? k() : false;
      case 'var': {
        if (t.slot === undefined) return this.evalTerm(t, frame, (x) => (equal(x, v) ? k() : false));
        const cur = frame[t.slot];
        if (cur !== undefined) return equal(cur, v) ? k() : false;
        frame[t.slot] = v;
        try {
          return k();
        } finally {
          frame[t.slot] = undefined;
        }
      }
      case 'array': {
        if (!Array.isArray(v) || v.length !== t.items.length) return false;
        return this.unifyItems(t.items, v, 0, frame, k);
      }
      case 'object': {
        if (!isObject(v)) return false;
        if (t.items.length !== (v instanceof RObject ? v.size : Object.keys(v).length)) return false;
        return this.unifyEntries(t.items, v, 0, frame, k);
      }
      default: {
        const x = this.simple(t, frame);
        if (x !== NS) return x !== undefined && equal(x, v) ? k() : false;
        return this.evalTerm(t, frame, (y) => (equal(y, v) ? k() : false));
      }
    }
  }

  private unifyItems(items: Term[], v: Value[], i: number, frame: Frame, k: K): boolean {
    if (i === items.length) return k();
    return this.unify(items[i]!, v[i]!, frame, () => this.unifyItems(items, v, i + 1, frame, k));
  }

  private unifyEntries(items: Array<[Term, Term]>, v: PlainObject | RObject, i: number, frame: Frame, k: K): boolean {
    if (i === items.length) return k();
    const [kt, vt] = items[i]!;
    return this.evalTerm(kt, frame, (key) => {
      const x = objGet(v, key);
      return x === undefined ? false : this.unify(vt, x, frame, () => this.unifyEntries(items, v, i + 1, frame, k));
    });
  }

  evalList(ts: Term[], frame: Frame, k: (vs: Value[]) => boolean): boolean {
    const out: Value[] = new Array(ts.length);
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i]!;
      if (t.type === 'var' && t.slot !== undefined && frame[t.slot] === undefined) return this.evalListDeferred(ts, frame, k);
    }
    return this.evalListStep(ts, 0, out, frame, k);
  }

  private evalListStep(ts: Term[], i: number, out: Value[], frame: Frame, k: (vs: Value[]) => boolean): boolean {
    // plain operands (constants, bound variables) need no continuation
    for (; i < ts.length; i++) {
      const v = this.simple(ts[i]!, frame);
      if (v === NS) break;
      if (v === undefined) return false;
      out[i] = v;
    }
    if (i === ts.length) return k(out.slice());
    const j = i;
    return this.evalTerm(ts[j]!, frame, (v) => {
      out[j] = v;
      return this.evalListStep(ts, j + 1, out, frame, k);
    });
  }

  /** evalListDeferred evaluates operands that bind variables (refs) before plain variables that need them. */
  private evalListDeferred(ts: Term[], frame: Frame, k: (vs: Value[]) => boolean): boolean {
    const out: Value[] = new Array(ts.length);
    const step = (pending: number[]): boolean => {
      if (!pending.length) return k(out.slice());
      let j = pending.findIndex((i) => this.evaluable(ts[i]!, frame));
      if (j < 0) j = 0;
      const i = pending[j]!;
      const rest = pending.filter((_, x) => x !== j);
      return this.evalTerm(ts[i]!, frame, (v) => {
        out[i] = v;
        return step(rest);
      });
    };
    return step(ts.map((_, i) => i));
  }

  /**
   * simple evaluates, without continuations, the terms that dominate hot policies: constants,
   * bound variables, and refs into input or bound values with constant or bound keys.
   */
  simple(t: Term, frame: Frame): Value | undefined | typeof NS {
    switch (t.type) {
      case 'scalar':
        return t.value;
      case 'var':
        if (t.slot !== undefined) {
          const b = frame[t.slot];
          return b === undefined ? NS : b;
        }
        return t.name === 'input' ? this.ctx.input : NS;
      case 'ref': {
        const h = t.head;
        if (h.type !== 'var') return NS;
        let v: Value | undefined;
        let start = 0;
        if (h.slot !== undefined) {
          v = frame[h.slot];
          if (v === undefined) return NS;
        } else if (h.name === 'input') v = this.ctx.input;
        else if (h.name === 'data' && !this.ctx.overrides) {
          // data.pkg.rule...: the rule's (cached) value, as evalRef's fast path computes it
          const fast = this.dataFastPath(t);
          if (!fast) return NS;
          v = this.rules.nodeValue(fast.node);
          start = fast.depth;
        } else return NS;
        const path = t.path;
        for (let i = start; i < path.length; i++) {
          if (v === undefined) return undefined;
          const p = path[i]!;
          let key: Value | undefined;
          if (p.type === 'scalar') key = p.value;
          else if (p.type === 'var' && p.slot !== undefined) {
            key = frame[p.slot];
            if (key === undefined) return NS;
          } else return NS;
          v = index(v, key);
        }
        return v;
      }
      default:
        return NS;
    }
  }

  evalTerm(t: Term, frame: Frame, k: KV): boolean {
    switch (t.type) {
      case 'scalar':
        return k(t.value);
      case 'var': {
        if (t.slot === undefined) {
          if (t.name === 'input') return this.ctx.input === undefined ? false : k(this.ctx.input);
          if (t.name === 'data') return this.rules.resolveData(this.root, this.data, [], 0, frame, k);
          throw new RegoError('rego_unsafe_var_error', `var ${t.name} is unsafe`, t.loc);
        }
        const v = frame[t.slot];
        if (v === undefined) throw new RegoError('rego_unsafe_var_error', `var ${t.name} is unsafe`, t.loc);
        return k(v);
      }
      case 'ref': {
        const v = this.simple(t, frame);
        if (v === NS) return this.evalRef(t, frame, k);
        return v === undefined ? false : k(v);
      }
      case 'array':
        return this.evalList(t.items, frame, k);
      case 'set':
        return this.evalList(t.items, frame, (vs) => k(new RSet(vs)));
      case 'object': {
        const flat: Term[] = [];
        for (const [a, b] of t.items) flat.push(a, b);
        return this.evalList(flat, frame, (vs) => {
          const b = new ObjectBuilder();
          for (let i = 0; i < vs.length; i += 2) b.set(vs[i]!, vs[i + 1]!);
          return k(b.build());
        });
      }
      case 'arraycompr': {
        const out: Value[] = [];
        this.evalBody(t.body, 0, frame, () => this.evalTerm(t.head, frame, (v) => (out.push(v), false)));
        return k(out);
      }
      case 'setcompr': {
        const out = new RSet();
        this.evalBody(t.body, 0, frame, () => this.evalTerm(t.head, frame, (v) => (out.add(v), false)));
        return k(out);
      }
      case 'objectcompr': {
        const out = new ObjectBuilder();
        this.evalBody(t.body, 0, frame, () =>
          this.evalTerm(t.key, frame, (key) =>
            this.evalTerm(t.value, frame, (v) => {
              const prev = out.get(key);
              if (prev !== undefined && !equal(prev, v)) throw new RegoError('eval_conflict_error', 'object keys must be unique', t.loc);
              out.set(key, v);
              return false;
            }),
          ),
        );
        return k(out.build());
      }
      case 'call':
        return this.evalCall(t, frame, k);
      case 'template': {
        let s = '';
        for (const p of t.parts) {
          if (typeof p === 'string') {
            s += p;
            continue;
          }
          let got: Value | undefined;
          if ('kind' in p) this.evalExpr(p, frame, () => ((got = this.lastValue), true));
          else this.evalTerm(p, frame, (v) => ((got = v), true));
          s += got === undefined ? '<undefined>' : typeof got === 'string' ? got : formatValue(got);
        }
        return k(s);
      }
    }
  }

  evalRef(t: Extract<Term, { type: 'ref' }>, frame: Frame, k: KV): boolean {
    const h = t.head;
    if (h.type === 'var' && h.slot === undefined) {
      if (h.name === 'data') {
        if (!this.ctx.overrides) {
          const fast = this.dataFastPath(t);
          if (fast) {
            const v = this.rules.nodeValue(fast.node);
            return v === undefined ? false : this.walk(v, t.path, fast.depth, frame, k);
          }
        }
        return this.rules.resolveData(this.root, this.data, t.path, 0, frame, k);
      }
      if (h.name === 'input') {
        const inp = this.ctx.input;
        return inp === undefined ? false : this.walk(inp, t.path, 0, frame, k);
      }
    }
    return this.evalTerm(h, frame, (v) => this.walk(v, t.path, 0, frame, k));
  }

  /** dataFastPath is the rule node a constant `data.pkg.rule...` prefix leads to (see `dataRule`). */
  dataFastPath(t: Extract<Term, { type: 'ref' }>): { node: RuleNode; depth: number } | null {
    return dataRule(this.root, this.data, t);
  }

  /** walk indexes into a value along a ref path, iterating over unbound keys. */
  walk(v: Value, path: Term[], i: number, frame: Frame, k: KV, dataDoc = false): boolean {
    if (i === path.length) return k(v);
    const p = path[i]!;
    if (p.type === 'scalar') {
      // base documents are JSON: there a number key reaches the string key of the same text
      let c = index(v, p.value);
      if (c === undefined && dataDoc && typeof p.value === 'number' && isObject(v)) c = objGet(v, String(p.value));
      return c === undefined ? false : this.walk(c, path, i + 1, frame, k, dataDoc);
    }
    if (p.type === 'var' && p.slot !== undefined) {
      const b = frame[p.slot];
      if (b !== undefined) {
        const c = index(v, b);
        return c === undefined ? false : this.walk(c, path, i + 1, frame, k);
      }
      const slot = p.slot;
      try {
        if (Array.isArray(v)) {
          for (let j = 0; j < v.length; j++) {
            this.tick();
            frame[slot] = j;
            if (this.walk(v[j]!, path, i + 1, frame, k)) return true;
          }
          return false;
        }
        if (v instanceof RSet) {
          for (const x of v.values()) {
            this.tick();
            frame[slot] = x;
            if (this.walk(x, path, i + 1, frame, k)) return true;
          }
          return false;
        }
        if (isObject(v)) {
          for (const [key, c] of objEntries(v)) {
            this.tick();
            frame[slot] = key;
            if (this.walk(c, path, i + 1, frame, k)) return true;
          }
        }
        return false;
      } finally {
        frame[slot] = undefined;
      }
    }
    if (!this.evaluable(p, frame)) return this.iterate(v, (key, c) => this.unify(p, key, frame, () => this.walk(c, path, i + 1, frame, k)));
    return this.evalTerm(p, frame, (key) => {
      const c = index(v, key);
      return c === undefined ? false : this.walk(c, path, i + 1, frame, k);
    });
  }

  evalCall(t: CallTerm, frame: Frame, k: KV): boolean {
    const tgt = t.target!;
    let mock: Mock | undefined;
    const mockKey = this.ctx.mocks ? (tgt.kind === 'builtin' ? tgt.name : tgt.kind === 'func' ? 'data.' + tgt.path.join('.') : '') : '';
    if (this.ctx.mocks) mock = this.ctx.mocks.get(mockKey);
    const arity = this.arityOf(tgt);
    const fixed = arity !== undefined && arity >= 0 && t.args.length > arity;
    const inputs = fixed ? t.args.slice(0, arity) : t.args;
    const out = fixed ? t.args[arity] : undefined;
    if (!mock) {
      // fast path: operands that evaluate without continuations
      const n = inputs.length;
      // built-ins never keep or re-enter with their operand array, so it can be reused; functions get their own
      const args: Value[] = tgt.kind === 'builtin' && !out ? (this.scratch[n] ??= new Array(n)) : new Array(n);
      let i = 0;
      for (; i < n; i++) {
        const v = this.simple(inputs[i]!, frame);
        if (v === NS) break;
        if (v === undefined) return false;
        args[i] = v;
      }
      if (i === n && !(tgt.kind === 'builtin' && this.builtinOf(tgt)?.relation)) {
        const r = this.invoke(tgt, args, t);
        if (r === undefined) return false;
        return out ? this.unify(out, r, frame, () => k(true)) : k(r);
      }
    }
    return this.evalList(inputs, frame, (args) => {
      const r = mock && mock.kind !== 'value' ? this.withoutMock(mockKey, () => this.invoke(mock, args, t)) : this.invoke(mock ?? tgt, args, t);
      if (r === undefined) return false;
      if (!mock && tgt.kind === 'builtin' && this.builtinOf(tgt)?.relation) {
        for (const x of r as Value[]) {
          this.tick();
          if (out ? this.unify(out, x, frame, () => k(true)) : k(x)) return true;
        }
        return false;
      }
      if (out) return this.unify(out, r, frame, () => k(true));
      return k(r);
    });
  }

  arityOf(tgt: NonNullable<CallTerm['target']>): number | undefined {
    if (tgt.kind === 'builtin') return this.builtinOf(tgt)?.arity;
    if (tgt.kind === 'func') return this.funcNode(tgt)?.rules[0]?.args?.length;
    return undefined;
  }

  /** funcNode finds a user function's node once per call site (the rule tree is fixed after compilation). */
  funcNode(tgt: { kind: 'func'; path: string[]; n?: RuleNode | null }): RuleNode | undefined {
    if (tgt.n === undefined) tgt.n = this.root.lookup(tgt.path) ?? null;
    return tgt.n ?? undefined;
  }

  /** builtinOf resolves a built-in once per call site (the table never changes after construction). */
  builtinOf(tgt: { kind: 'builtin'; name: string; b?: Builtin | null }): Builtin | undefined {
    if (tgt.b === undefined) tgt.b = this.builtins(tgt.name) ?? null;
    return tgt.b ?? undefined;
  }

  /** withoutMock runs fn with one mock lifted, so a replacement can call what it replaces. */
  withoutMock<T>(key: string, fn: () => T): T {
    const saved = this.ctx;
    // A replacement runs with no mocks at all: it neither calls itself nor another mock.
    void key;
    this.ctx = { ...saved, mocks: undefined, cache: new Map() };
    try {
      return fn();
    } finally {
      this.ctx = saved;
    }
  }

  /** invoke calls a built-in or user function with evaluated operands. */
  invoke(tgt: Mock | NonNullable<CallTerm['target']>, args: Value[], t: CallTerm): Value | undefined {
    if (tgt.kind === 'value') return tgt.value;
    if (tgt.kind === 'func') {
      const node = this.funcNode(tgt);
      if (!node) return undefined;
      return this.rules.callFunction(node, args);
    }
    if (tgt.kind === 'dynamic') return undefined;
    const b = this.builtinOf(tgt);
    if (!b) throw new RegoError('rego_type_error', `undefined function ${tgt.name}`, t.loc);
    return this.callBuiltin(b, args, t, tgt.name);
  }

  /** callBuiltin runs a built-in; its errors make the call undefined, or fail the query in strict mode. */
  callBuiltin(b: Builtin, args: Value[], t: CallTerm, name: string): Value | undefined {
    try {
      return b.fn(args, this.bctx);
    } catch (e) {
      return this.builtinFailed(e, t, name);
    }
  }

  /** builtinFailed handles what a built-in threw: undefined (error recorded), or fatal in strict mode. */
  builtinFailed(e: unknown, t: CallTerm, name: string): undefined {
    if (e instanceof BuiltinError) {
      if (this.strict) throw new RegoError(e.code, e.message, t.loc);
      this.opts.builtinErrors?.push(new RegoError(e.code, e.message, t.loc));
      return undefined;
    }
    if (e instanceof RegoError) throw e;
    if (e instanceof RangeError && /call stack/.test(e.message)) throw e;
    if (this.strict) throw new RegoError('eval_builtin_error', `${name}: ${(e as Error).message}`, t.loc);
    return undefined;
  }

}
