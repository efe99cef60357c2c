import type { Expr, Module, Rule, Term, VarTerm, With } from '../ast/types.js';
import { walkNodes } from '../ast/walk.js';
import { RegoError, RegoErrors } from '../errors.js';

import { hoistNegated } from './negation.js';
import { type Analyzer,reorderBody } from './safety.js';
import { groundPrefix,RuleNode } from './tree.js';
import { type Signature,TypeChecker } from './typecheck.js';

/** BuiltinInfo is what the compiler needs to know about a built-in: its input arity and, when declared, its types. */
export interface BuiltinLookup {
  (name: string): { arity: number; sig?: Signature } | undefined;
}

/** CompiledQuery is a query body with its variable slots resolved. */
export interface CompiledQuery {
  body: Expr[];
  nslots: number;
  /** query variables reported in result bindings: name → slot (and whether `:=`/some declared it) */
  bindings: Array<[string, number, boolean]>;
}

interface Scope {
  vars: Map<string, number>;
  parent: Scope | undefined;
  /** index of the expression declaring a name with := or some (closures see only earlier ones) */
  decl?: Map<string, number>;
  /** index of the expression being resolved */
  pos?: number;
  /** the parent's position where this nested scope appears */
  parentPos?: number;
}

/** Compiler resolves names, assigns variable slots, and checks safety for a set of modules. */
export class Compiler {
  readonly root = new RuleNode([], undefined);
  private errors: RegoError[] = [];
  private nslots = 0;
  private globals = new Map<string, Term>();
  private declaredHere = new Set<string>();
  private queryDecl = new Set<string>();
  /** compiling a query rather than modules (OPA rewrites `==` to `=` in modules only) */
  private inQuery = false;

  constructor(
    private builtins: BuiltinLookup,
    private modules: Module[],
  ) {}

  /** compile builds the rule tree and rewrites every rule in place. */
  compile(): RuleNode {
    for (const m of this.modules) {
      let pn = this.root;
      for (const p of m.pkg.slice(1)) pn = pn.child(p);
    }
    for (const m of this.modules) {
      for (const r of m.rules) {
        const n = groundPrefix(r.ref);
        const fullGround = n === r.ref.length;
        const path = [...m.pkg.slice(1), ...r.ref.slice(0, n).map((t) => (t as { value: string }).value)];
        let node = this.root;
        for (const p of path) node = node.child(p);
        if (r.isDefault) {
          if (node.defaultRule) this.errors.push(new RegoError('rego_type_error', `multiple default rules data.${path.join('.')} found`, r.loc));
          node.defaultRule = r;
        } else if (fullGround && r.kind !== 'multi') node.rules.push(r);
        else node.dynamic.push({ rule: r, tail: r.ref.slice(n) });
      }
    }
    this.root.modules = this.modules;
    for (const m of this.modules) this.compileModule(m);
    this.checkRecursion();
    if (this.errors.length) throw new RegoErrors(this.errors);
    return this.root;
  }

  private compileModule(m: Module): void {
    this.globals = new Map();
    const pkgPath = m.pkg.slice(1);
    const dataRef = (path: string[], loc: Term['loc']): Term => ({
      type: 'ref',
      head: { type: 'var', name: 'data', loc },
      path: path.map((p) => ({ type: 'scalar', value: p, loc })),
      loc,
    });
    const pkgNode = this.root.lookup(pkgPath);
    if (pkgNode) for (const name of pkgNode.children.keys()) this.globals.set(name, dataRef([...pkgPath, name], m.loc));
    for (const imp of m.imports) {
      const p = imp.path as Extract<Term, { type: 'ref' }>;
      const head = (p.head as VarTerm).name;
      if (head === 'future' || head === 'rego') continue;
      const segs = p.path.map((t) => String((t as { value: unknown }).value));
      const alias = imp.alias ?? (segs.length ? segs[segs.length - 1]! : head);
      this.globals.set(alias, head === 'data' ? dataRef(segs, imp.loc) : { ...p, loc: imp.loc });
    }
    for (const r of m.rules) {
      try {
        this.compileRule(r, pkgPath);
      } catch (e) {
        if (e instanceof RegoError) this.errors.push(e);
        else throw e;
      }
    }
  }

  private compileRule(r: Rule, pkgPath: string[]): void {
    this.nslots = 0;
    const argScope: Scope = { vars: new Map(), parent: undefined, decl: new Map() };
    const bound = new Set<number>();
    if (r.args) {
      // A parameter written as a template string is checked after the body binds its variables.
      r.args = r.args.map((a, i) => {
        if (a.type !== 'template') return a;
        const v: Term = { type: 'var', name: `__targ${i}`, loc: a.loc };
        r.body = [...r.body, { kind: 'term', term: { type: 'call', fn: ['eq'], args: [a, v], loc: a.loc }, negated: false, with: [], loc: a.loc }];
        return v;
      });
      r.args = r.args.map((a) => {
        this.declarePattern(a, argScope);
        return this.resolveTerm(a, argScope, []);
      });
      for (const s of argScope.vars.values()) bound.add(s);
    }
    const doBody = (body: Expr[], extraTerms: Term[]): { body: Expr[]; terms: Term[] } => {
      const scope: Scope = { vars: new Map(argScope.vars), parent: undefined, decl: new Map() };
      const nested: Array<() => void> = [];
      const newBody = this.resolveBody(body, scope, nested);
      const terms = extraTerms.map((t) => this.resolveTerm(t, scope, nested));
      for (const f of nested) f();
      const ordered = reorderBody(newBody, new Set(bound), this.analyzer());
      // head terms must be safe after the body
      const after = new Set(bound);
      if (ordered.body.length) for (const v of ordered.boundAfter) after.add(v);
      for (const t of terms) {
        const unsafe = this.analyzer().needs(t).filter((s) => !ordered.boundAfter.has(s) && !bound.has(s));
        if (unsafe.length) throw new RegoError('rego_unsafe_var_error', `var ${this.slotName(t, unsafe[0]!)} is unsafe`, t.loc);
      }
      return { body: ordered.body, terms };
    };
    const head: Term[] = [];
    const tailStart = groundPrefix(r.ref);
    for (let i = tailStart; i < r.ref.length; i++) head.push(r.ref[i]!);
    if (r.key) head.push(r.key);
    if (r.value) head.push(r.value);
    const res = doBody(r.body, head);
    r.body = res.body;
    let j = 0;
    for (let i = tailStart; i < r.ref.length; i++) r.ref[i] = res.terms[j++]!;
    if (r.key) r.key = res.terms[j++];
    if (r.value) r.value = res.terms[j++];
    for (const e of r.elses) {
      const er = doBody(e.body, e.value ? [e.value] : []);
      e.body = er.body;
      if (e.value) e.value = er.terms[0];
    }
    r.nslots = this.nslots;
    this.typeCheckRule(r);
    void pkgPath;
  }

  private signature = (name: string): Signature | undefined => this.builtins(name)?.sig;

  /** typeCheckRule reports built-in calls whose statically known operand types cannot match (rego_type_error). */
  private typeCheckRule(r: Rule): void {
    const tc = new TypeChecker(this.signature, this.errors);
    for (const a of r.args ?? []) tc.term(a);
    tc.body(r.body);
    for (let i = groundPrefix(r.ref); i < r.ref.length; i++) tc.term(r.ref[i]!);
    if (r.key) tc.term(r.key);
    if (r.value) tc.term(r.value);
    for (const e of r.elses) {
      tc.body(e.body);
      if (e.value) tc.term(e.value);
    }
  }

  private slotNames = new Map<number, string>();
  private slotName(_t: Term, slot: number): string {
    return this.slotNames.get(slot) ?? `$${slot}`;
  }

  /** compileQuery resolves a query body against the compiled modules. */
  compileQuery(body: Expr[], pkg: string[] = []): CompiledQuery {
    this.inQuery = true;
    try {
      return this.compileQueryBody(body, pkg);
    } finally {
      this.inQuery = false;
    }
  }

  private compileQueryBody(body: Expr[], pkg: string[]): CompiledQuery {
    this.nslots = 0;
    this.globals = new Map();
    void pkg;
    const scope: Scope = { vars: new Map(), parent: undefined, decl: new Map() };
    const nested: Array<() => void> = [];
    this.queryDecl = new Set();
    const newBody = this.resolveBody(body, scope, nested, this.queryDecl);
    for (const f of nested) f();
    if (this.errors.length) throw new RegoErrors(this.errors);
    const ordered = reorderBody(newBody, new Set(), this.analyzer());
    const typeErrors: RegoError[] = [];
    new TypeChecker(this.signature, typeErrors).body(ordered.body);
    if (typeErrors.length) throw new RegoErrors(typeErrors);
    const bindings: Array<[string, number, boolean]> = [];
    for (const [name, slot] of scope.vars) if (!name.startsWith('_')) bindings.push([name, slot, this.queryDecl.has(name)]);
    return { body: ordered.body, nslots: this.nslots, bindings };
  }

  private analyzer(): Analyzer {
    return {
      arity: (t) => this.callArity(t),
      needs: (t) => needsOf(t),
      name: (s) => this.slotNames.get(s) ?? `$${s}`,
      negation: (e, bound) => hoistNegated(e, bound, { newSlot: () => this.newSlot('_'), equalIsUnify: !this.inQuery }),
    };
  }

  private callArity(t: Extract<Term, { type: 'call' }>): number | undefined {
    const tgt = t.target;
    if (!tgt) return undefined;
    if (tgt.kind === 'builtin') {
      const a = this.builtins(tgt.name)?.arity;
      return a !== undefined && a >= 0 ? a : undefined;
    }
    if (tgt.kind === 'func') {
      const n = this.root.lookup(tgt.path);
      const r = n?.rules[0];
      return r?.args?.length;
    }
    return undefined;
  }

  private newSlot(name: string): number {
    const s = this.nslots++;
    this.slotNames.set(s, name);
    return s;
  }

  /** declarePattern declares every variable in a pattern as a fresh local of scope. */
  private declarePattern(t: Term, scope: Scope): void {
    switch (t.type) {
      case 'var':
        if (t.name !== '_' && !scope.vars.has(t.name)) scope.vars.set(t.name, this.newSlot(t.name));
        break;
      case 'array':
        for (const x of t.items) this.declarePattern(x, scope);
        break;
      case 'object':
        for (const [, v] of t.items) this.declarePattern(v, scope);
        break;
      default:
        break;
    }
  }

  private forceDeclare(t: Term, scope: Scope, decl?: Set<string>, at = -1): void {
    switch (t.type) {
      case 'var':
        if (t.name !== '_') {
          scope.vars.set(t.name, this.newSlot(t.name));
          decl?.add(t.name);
          if (at >= 0) scope.decl?.set(t.name, at);
        }
        break;
      case 'array':
        for (const x of t.items) this.forceDeclare(x, scope, decl, at);
        break;
      case 'object':
        for (const [, v] of t.items) this.forceDeclare(v, scope, decl, at);
        break;
      default:
        break;
    }
  }

  private resolveBody(body: Expr[], scope: Scope, nested: Array<() => void>, decl?: Set<string>): Expr[] {
    // Declarations first, so later resolution knows which names are locals.
    body.forEach((e, at) => {
      if (e.kind === 'some') for (const v of e.vars) this.forceDeclare(v, scope, decl, at);
      else if (e.kind === 'somein') {
        if (e.key) this.forceDeclare(e.key, scope, decl, at);
        this.forceDeclare(e.value, scope, decl, at);
      } else if (e.kind === 'term' && e.term.type === 'call' && e.term.fn.length === 1 && e.term.fn[0] === 'assign') {
        const lhs = e.term.args[0]!;
        if (lhs.type !== 'var' && lhs.type !== 'array' && lhs.type !== 'object') throw new RegoError('rego_parse_error', 'cannot assign to ' + lhs.type, lhs.loc);
        this.forceDeclare(lhs, scope, decl, at);
      }
    });
    return body.map((e, at) => {
      scope.pos = at;
      return this.resolveExpr(e, scope, nested);
    });
  }

  private resolveExpr(e: Expr, scope: Scope, nested: Array<() => void>): Expr {
    const withs: With[] = e.with.map((w) => ({ target: this.resolveWithTarget(w.target), value: this.resolveWithValue(w.value, scope, nested), loc: w.loc }));
    switch (e.kind) {
      case 'term':
        return { ...e, term: this.resolveTerm(e.term, scope, nested), with: withs };
      case 'some':
        return { ...e, vars: e.vars.map((v) => this.resolveTerm(v, scope, nested) as VarTerm), with: withs };
      case 'somein':
        return {
          ...e,
          key: e.key && this.resolveTerm(e.key, scope, nested),
          value: this.resolveTerm(e.value, scope, nested),
          domain: this.resolveTerm(e.domain, scope, nested),
          with: withs,
        };
      case 'every': {
        const pos = scope.pos;
        const domain = this.resolveTerm(e.domain, scope, nested);
        const out = { ...e, domain, with: withs };
        nested.push(() => {
          const inner: Scope = { vars: new Map(), parent: scope, parentPos: pos, decl: new Map() };
          if (e.key) this.forceDeclare(e.key, inner);
          this.forceDeclare(e.value, inner);
          const nn: Array<() => void> = [];
          out.key = e.key && this.resolveTerm(e.key, inner, nn);
          out.value = this.resolveTerm(e.value, inner, nn);
          out.body = this.resolveBody(e.body, inner, nn);
          for (const f of nn) f();
        });
        return out;
      }
    }
  }

  private resolveWithTarget(t: Term): Term {
    if (t.type === 'var') {
      if (t.name === 'input' || t.name === 'data') return { type: 'ref', head: t, path: [], loc: t.loc };
      const g = this.globals.get(t.name);
      if (g) return g;
      if (this.builtins(t.name)) return { type: 'call', fn: [t.name], args: [], loc: t.loc, target: { kind: 'builtin', name: t.name } };
      throw new RegoError('rego_compile_error', `with keyword target must reference existing input, data, or a function`, t.loc);
    }
    if (t.type === 'ref' && t.head.type === 'var') {
      const head = t.head.name;
      if (head === 'input' || head === 'data') return t;
      const g = this.globals.get(head);
      if (g && g.type === 'ref') return { ...g, path: [...g.path, ...t.path] };
      const name = [head, ...t.path.map((p) => String((p as { value: unknown }).value))].join('.');
      if (this.builtins(name)) return { type: 'call', fn: name.split('.'), args: [], loc: t.loc, target: { kind: 'builtin', name } };
    }
    throw new RegoError('rego_compile_error', `with keyword target must reference existing input, data, or a function`, t.loc);
  }

  private resolveWithValue(t: Term, scope: Scope, nested: Array<() => void>): Term {
    // A bare function name as a with-value is a function replacement.
    const fnName = t.type === 'var' ? [t.name] : t.type === 'ref' && t.head.type === 'var' && t.path.every((p) => p.type === 'scalar') ? [t.head.name, ...t.path.map((p) => String((p as { value: unknown }).value))] : undefined;
    if (fnName && !this.lookupVar(fnName[0]!, scope)) {
      const target = this.resolveCallTarget(fnName, t.loc, true);
      if (target && (target.kind === 'builtin' || (target.kind === 'func' && this.root.lookup(target.path)?.isFunction))) return { type: 'call', fn: fnName, args: [], loc: t.loc, target };
    }
    return this.resolveTerm(t, scope, nested);
  }

  private lookupVar(name: string, scope: Scope | undefined): number | undefined {
    let pos: number | undefined;
    for (let s = scope; s; s = s.parent) {
      const v = s.vars.get(name);
      if (v !== undefined) {
        const d = s.decl?.get(name);
        if (pos === undefined || d === undefined || d < pos) return v;
      }
      pos = s.parentPos;
    }
    return undefined;
  }

  private resolveCallTarget(fn: string[], loc: Term['loc'], soft = false): Extract<Term, { type: 'call' }>['target'] {
    const head = fn[0]!;
    if (fn.length === 1 && ['eq', 'assign'].includes(head)) return { kind: 'builtin', name: head };
    if (head === 'data') return { kind: 'func', path: fn.slice(1) };
    const g = this.globals.get(head);
    if (g && g.type === 'ref' && g.head.type === 'var' && g.head.name === 'data') {
      return { kind: 'func', path: [...g.path.map((p) => String((p as { value: unknown }).value)), ...fn.slice(1)] };
    }
    const name = fn.join('.');
    if (this.builtins(name)) return { kind: 'builtin', name };
    if (soft) return undefined;
    throw new RegoError('rego_type_error', `undefined function ${name}`, loc);
  }

  private resolveTerm(t: Term, scope: Scope, nested: Array<() => void>): Term {
    switch (t.type) {
      case 'scalar':
        return t;
      case 'var': {
        if (t.name === '_') return { ...t, slot: this.newSlot('_') };
        const local = this.lookupVar(t.name, scope);
        if (local !== undefined) return { ...t, slot: local };
        if (t.name === 'input' || t.name === 'data') return { type: 'ref', head: t, path: [], loc: t.loc };
        const g = this.globals.get(t.name);
        if (g) return { ...g, loc: t.loc };
        const s = this.newSlot(t.name);
        scope.vars.set(t.name, s);
        return { ...t, slot: s };
      }
      case 'ref': {
        const head = this.resolveTerm(t.head, scope, nested);
        const path = t.path.map((p) => this.resolveTerm(p, scope, nested));
        if (head.type === 'ref') return { type: 'ref', head: head.head, path: [...head.path, ...path], loc: t.loc };
        return { type: 'ref', head, path, loc: t.loc };
      }
      case 'array':
        return { ...t, items: t.items.map((x) => this.resolveTerm(x, scope, nested)) };
      case 'set':
        return { ...t, items: t.items.map((x) => this.resolveTerm(x, scope, nested)) };
      case 'object':
        return { ...t, items: t.items.map(([k, v]) => [this.resolveTerm(k, scope, nested), this.resolveTerm(v, scope, nested)] as [Term, Term]) };
      case 'template':
        return { ...t, parts: t.parts.map((p) => (typeof p === 'string' ? p : 'kind' in p ? this.resolveExpr(p, scope, nested) : this.resolveTerm(p, scope, nested))) };
      case 'call': {
        const target = this.resolveCallTarget(t.fn, t.loc);
        // as OPA's type checker: calling a rule that takes no arguments (`p := 1`, or `p() := 1`, which
        // OPA keeps a plain rule) is an undefined function, not a call
        if (target?.kind === 'func' && !this.root.lookup(target.path)?.isFunction) {
          throw new RegoError('rego_type_error', `undefined function data.${target.path.join('.')}`, t.loc);
        }
        // operands: the declared arity, plus optionally one output operand
        const arity = target?.kind === 'builtin' ? this.builtins(target.name)?.arity : target?.kind === 'func' ? (this.root.lookup(target.path)?.rules[0] ?? this.root.lookup(target.path)?.defaultRule)?.args?.length : undefined;
        if (arity !== undefined && arity >= 0 && !['eq', 'assign'].includes(t.fn.join('.')) && (t.args.length < arity || t.args.length > arity + 1)) {
          throw new RegoError('rego_type_error', `${t.fn.join('.')}: arity mismatch: have ${t.args.length} operand(s), want ${arity}`, t.loc);
        }
        return { ...t, target, args: t.args.map((a) => this.resolveTerm(a, scope, nested)) };
      }
      case 'arraycompr':
      case 'setcompr':
      case 'objectcompr': {
        const out = { ...t } as typeof t;
        const pos = scope.pos;
        nested.push(() => {
          const inner: Scope = { vars: new Map(), parent: scope, parentPos: pos, decl: new Map() };
          const nn: Array<() => void> = [];
          const body = this.resolveBody(t.body, inner, nn);
          if (out.type === 'objectcompr' && t.type === 'objectcompr') {
            out.key = this.resolveTerm(t.key, inner, nn);
            out.value = this.resolveTerm(t.value, inner, nn);
          } else if (out.type !== 'objectcompr' && t.type !== 'objectcompr') {
            out.head = this.resolveTerm(t.head, inner, nn);
          }
          for (const f of nn) f();
          const outerBound = new Set<number>();
          for (let s: Scope | undefined = scope; s; s = s.parent) for (const v of s.vars.values()) outerBound.add(v);
          const ordered = reorderBody(body, outerBound, this.analyzer(), true);
          out.body = ordered.body;
          const heads = out.type === 'objectcompr' ? [out.key, out.value] : [out.head];
          for (const h of heads) {
            const unsafe = needsOf(h).filter((s) => !ordered.boundAfter.has(s) && !outerBound.has(s));
            if (unsafe.length) throw new RegoError('rego_unsafe_var_error', `var ${this.slotNames.get(unsafe[0]!)} is unsafe`, h.loc);
          }
          (out as { free?: number[] }).free = [...freeSlots(out, inner)];
        });
        return out;
      }
    }
  }

  /** checkRecursion reports rules that depend on themselves. */
  private checkRecursion(): void {
    const deps = new Map<RuleNode, Set<RuleNode>>();
    const visitTerm = (t: unknown, out: Set<RuleNode>): void => {
      if (!t || typeof t !== 'object') return;
      if (Array.isArray(t)) {
        for (const x of t) visitTerm(x, out);
        return;
      }
      const o = t as Record<string, unknown>;
      if (o.type === 'ref' && (o.head as VarTerm)?.type === 'var' && (o.head as VarTerm).name === 'data') {
        const segs: string[] = [];
        for (const p of o.path as Term[]) {
          if (p.type === 'scalar' && typeof p.value === 'string') segs.push(p.value);
          else break;
        }
        let n: RuleNode | undefined = this.root;
        for (const s of segs) {
          if (!n) break;
          if (n.rules.length || n.dynamic.length) break;
          n = n.children.get(s);
        }
        if (n && n !== this.root) out.add(n);
      }
      if (o.type === 'call' && (o.target as { kind?: string })?.kind === 'func') {
        const n = this.root.lookup((o.target as { path: string[] }).path);
        if (n) out.add(n);
      }
      for (const k of Object.keys(o)) if (k !== 'module' && k !== 'loc') visitTerm(o[k], out);
    };
    const all: RuleNode[] = [];
    const walk = (n: RuleNode): void => {
      if (n.rules.length || n.dynamic.length) all.push(n);
      for (const c of n.children.values()) walk(c);
    };
    walk(this.root);
    for (const n of all) {
      const out = new Set<RuleNode>();
      for (const r of [...n.rules, ...n.dynamic.map((d) => d.rule)]) visitTerm([r.body, r.value, r.key, r.elses, r.ref], out);
      deps.set(n, out);
    }
    const state = new Map<RuleNode, number>();
    const dfs = (n: RuleNode, stack: RuleNode[]): void => {
      state.set(n, 1);
      for (const d of deps.get(n) ?? []) {
        // a reference to an ancestor package covers n
        const targets = deps.has(d) ? [d] : all.filter((x) => isUnder(x, d));
        for (const m of targets) {
          if (state.get(m) === 1) {
            const cyc = [...stack.slice(stack.indexOf(m)), m].map((x) => 'data.' + x.path.join('.'));
            const r = m.rules[0] ?? m.dynamic[0]!.rule;
            this.errors.push(new RegoError('rego_recursion_error', `rule ${cyc[0]} is recursive: ${cyc.join(' -> ')}`, r.loc));
            continue;
          }
          if (!state.has(m)) dfs(m, [...stack, m]);
        }
      }
      state.set(n, 2);
    };
    for (const n of all) if (!state.has(n)) dfs(n, [n]);
  }
}

function isUnder(n: RuleNode, anc: RuleNode): boolean {
  for (let x: RuleNode | undefined = n; x; x = x.parent) if (x === anc) return true;
  return false;
}

/** needsOf lists variable slots that must be bound before a term can be evaluated as a value. */
export function needsOf(t: Term, out: number[] = []): number[] {
  switch (t.type) {
    case 'var':
      if (t.slot !== undefined) out.push(t.slot);
      break;
    case 'ref':
      needsOf(t.head, out);
      for (const p of t.path) if (p.type !== 'var') needsOf(p, out);
      break;
    case 'array':
    case 'set':
      for (const x of t.items) needsOf(x, out);
      break;
    case 'object':
      for (const [k, v] of t.items) {
        needsOf(k, out);
        needsOf(v, out);
      }
      break;
    case 'call':
      for (const a of t.args) needsOf(a, out);
      break;
    case 'template':
      for (const p of t.parts) if (typeof p !== 'string') 'kind' in p ? exprNeeds(p, out) : needsOf(p, out);
      break;
    case 'arraycompr':
    case 'setcompr':
    case 'objectcompr':
      for (const s of (t as { free?: number[] }).free ?? []) out.push(s);
      break;
    default:
      break;
  }
  return out;
}

/** exprNeeds lists the variables an expression embedded in a template reads. */
function exprNeeds(e: Expr, out: number[]): void {
  if (e.kind === 'term') needsOf(e.term, out);
  for (const w of e.with) needsOf(w.value, out);
}

const FREE_SLOT_SKIP = new Set(['loc', 'target']);

/** freeSlots finds slots used inside a comprehension that belong to enclosing scopes. */
function freeSlots(t: unknown, inner: Scope): Set<number> {
  const own = new Set(inner.vars.values());
  const out = new Set<number>();
  const outer = new Set<number>();
  for (let s = inner.parent; s; s = s.parent) for (const v of s.vars.values()) outer.add(v);
  walkNodes(t, FREE_SLOT_SKIP, (o) => {
    if (o.type === 'var' && typeof o.slot === 'number' && !own.has(o.slot) && outer.has(o.slot)) out.add(o.slot);
  });
  return out;
}
