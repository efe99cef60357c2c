import type { UpstreamGuard } from '../security/index.js';

import { parseModule, parseQuery, parseTermText } from './ast/parser.js';
import type { Expr, Module } from './ast/types.js';
import { DEFAULT_BUILTIN_LIMITS } from './builtins/limits.js';
import { builtinTable } from './builtins/registry.js';
import type { Builtin } from './builtins/types.js';
import type { BuiltinLimits } from './builtins/types.js';
import { type CompiledQuery,Compiler } from './compile/compiler.js';
import { deprecatedCalls, importProblems, shadowProblems } from './compile/rego-v1.js';
import { strictProblems } from './compile/strict.js';
import { renameDuplicateTests } from './compile/test-names.js';
import type { RuleNode } from './compile/tree.js';
import type { DecisionLogger } from './decision-log.js';
import { RegoError, RegoErrors } from './errors.js';
import { type EvalOptions, Evaluator, type Frame } from './eval/evaluator.js';
import { StepCompiler } from './eval/steps.js';
import { fromJSON, type Value } from './value.js';
export { DEFAULT_BUILTIN_LIMITS } from './builtins/limits.js';
export type { BuiltinLimits, ExternalDataAnswer, ExternalDataLookup } from './builtins/types.js';
export { DecisionLogger, readDecisions, streamDecisions, maskInput, type Decision, type DecisionFilter, type DecisionLogOptions } from './decision-log.js';
export { REDACTED, redactSecrets, scrub } from './secret-redaction.js';
export { engineRunner, replayDecisions, resultOf, type QueryRunner, type ReplayChange, type ReplayOptions, type ReplayOutcome, type ReplaySummary } from './replay.js';
export { formatModule, type FmtTarget } from './ast/format.js';
export { walkNodes } from './ast/walk.js';
export { policyKindValidators, policyProblems } from './kind-validator.js';

export { RegoError, RegoErrors, EvalCancelError, caretSnippet } from './errors.js';
export { toJSON, fromJSON, stringifyJSON, formatValue, RSet, RObject, RDecimal, type Value } from './value.js';
export type { EvalOptions, TraceEvent } from './eval/evaluator.js';
export { parseModule, parseQuery, parseTermText } from './ast/parser.js';
export type { Module, Loc } from './ast/types.js';

/** ResultRow is one solution of a query: the value of each query expression and the bindings. */
export interface ResultRow {
  expressions: Array<{ value: Value; text: string }>;
  bindings: Record<string, Value>;
}

/**
 * ModuleOptions picks the Rego version of one module, as `opa` does: v1 unless stated; a v0 module
 * that says `import rego.v1` is parsed with every keyword and checked as v1.
 */
export interface ModuleOptions {
  regoVersion?: 0 | 1;
}

/** EngineOptions are fixed for the engine's lifetime. */
export interface EngineOptions {
  /**
   * Register the `test.*` built-ins (`test.sleep`): only `skiff policy test` and the conformance
   * runner set this. Elsewhere a call to one is an unknown function at compile time, as OPA reports it.
   */
  testBuiltins?: boolean;
  /**
   * Compile as `opa test` does: a test name written twice in one package becomes `NAME#01`, ...
   * so that each definition is its own test. Only `skiff policy test` sets this.
   */
  testRunner?: boolean;
  /**
   * The operator's upstream allow-list. When set, http.send may reach any target it allows (narrowed
   * further by `httpAllow` when that is given), and each address is checked after resolution and
   * after every redirect. Without it, http.send reaches only the hosts `httpAllow` lists.
   */
  upstreams?: UpstreamGuard;
  /** size caps on built-in results (defaults: DEFAULT_BUILTIN_LIMITS) */
  limits?: Partial<BuiltinLimits>;
}

/** PrepareOptions are the defaults of a prepared query; each eval may override them. */
export interface PrepareOptions extends EvalOptions {
  /** per-evaluation time budget in ms (turned into a deadline at each eval) */
  timeoutMs?: number;
  /** when set, every evaluation is recorded as one NDJSON decision */
  decisionLog?: DecisionLogger;
  /** leave `:=`-declared query variables out of bindings (OPA's test runner renames them away) */
  hideDeclaredVars?: boolean;
  /** @internal the query text, for decision logs */
  queryText?: string;
}

/**
 * PolicyEngine holds Rego modules and base data; it compiles them once and prepares queries that
 * are then evaluated many times with different inputs.
 *
 * @example
 * const engine = new PolicyEngine();
 * engine.addModule('authz.rego', 'package authz\nallow if input.user == "admin"');
 * const q = engine.prepare('data.authz.allow');
 * q.eval({ input: { user: 'admin' } }); // [{ expressions: [{ value: true, ... }], bindings: {} }]
 */
export class PolicyEngine {
  private sources = new Map<string, { text: string; regoVersion: 0 | 1 }>();
  private data: Value = Object.create(null) as Value;
  private compiled: { root: RuleNode; compiler: Compiler; modules: Module[]; steps: StepCompiler } | undefined;
  private readonly builtins: Map<string, Builtin>;
  /** compiled patterns shared by every evaluation of this engine */
  private readonly shared = new Map<string, unknown>();
  readonly builtinLookup: (name: string) => Builtin | undefined;
  private readonly limits: BuiltinLimits;
  private readonly upstreams: UpstreamGuard | undefined;
  private readonly testRunner: boolean;

  constructor(opts: EngineOptions = {}) {
    this.builtins = builtinTable({ testBuiltins: !!opts.testBuiltins });
    this.builtinLookup = (n) => this.builtins.get(n);
    this.limits = { ...DEFAULT_BUILTIN_LIMITS, ...opts.limits };
    this.upstreams = opts.upstreams;
    this.testRunner = !!opts.testRunner;
  }

  /** addModule parses a module now (so syntax errors surface at once) and schedules compilation. */
  addModule(file: string, text: string, opts: ModuleOptions = {}): Module {
    const regoVersion = opts.regoVersion ?? 1;
    const m = parseModule(file, text, regoVersion);
    this.sources.set(file, { text, regoVersion });
    this.compiled = undefined;
    return m;
  }

  removeModule(file: string): void {
    this.sources.delete(file);
    this.compiled = undefined;
  }

  /** setData replaces the base documents under `data` (plain JSON is used as is). */
  setData(data: unknown): void {
    this.data = fromJSON(data);
    this.compiled = undefined;
    // base data never changes until the next setData: its arrays may keep lookup indexes across evaluations
    const arrays = new WeakSet<Value[]>();
    const stack: unknown[] = [this.data];
    while (stack.length) {
      const v = stack.pop();
      if (Array.isArray(v)) {
        // only arrays of objects can be scanned by field (`x.f == v`)
        if (v.length && v[0] && typeof v[0] === 'object') arrays.add(v as Value[]);
        for (const x of v) if (x && typeof x === 'object') stack.push(x);
      } else if (v && typeof v === 'object') for (const x of Object.values(v)) if (x && typeof x === 'object') stack.push(x);
    }
    this.shared.set('dataArrays', arrays);
    this.shared.delete('ix');
  }

  /** modules lists the loaded files and their source. */
  moduleFiles(): string[] {
    return [...this.sources.keys()];
  }

  /**
   * compile checks every module together; errors are collected and thrown as RegoErrors. v1
   * modules also get the checks OPA 1.x applies to them by default, stage by stage as OPA does
   * (the first stage with errors ends compilation): duplicate imports, then `input`/`data`
   * shadowing, then the compiler proper, then calls of deprecated built-ins.
   */
  compile(): void {
    if (this.compiled) return;
    const modules = this.parseAll();
    if (this.testRunner) renameDuplicateTests(modules);
    const v1 = modules.filter((m) => m.regoVersion === 1);
    for (const stage of [importProblems, shadowProblems]) {
      const errs = v1.flatMap(stage);
      if (errs.length) throw new RegoErrors(errs);
    }
    const compiler = new Compiler(this.builtinLookup, modules);
    const root = compiler.compile();
    const deprecated = v1.flatMap(deprecatedCalls);
    if (deprecated.length) throw new RegoErrors(deprecated);
    // compiled rule bodies belong to this engine and these modules: a new set with every compile
    this.compiled = { root, compiler, modules, steps: new StepCompiler(root, this.data, this.builtinLookup) };
  }

  /** parseAll parses every module again (compilation rewrites the trees), collecting every error. */
  private parseAll(): Module[] {
    const modules: Module[] = [];
    const errors: RegoError[] = [];
    for (const [file, s] of this.sources) {
      try {
        modules.push(parseModule(file, s.text, s.regoVersion));
      } catch (e) {
        if (e instanceof RegoError) errors.push(e);
        else if (e instanceof RegoErrors) errors.push(...e.errors);
        else throw e;
      }
    }
    if (errors.length) throw new RegoErrors(errors);
    return modules;
  }

  /**
   * strictProblems lists what strict mode (`opa check --strict`) rejects beyond compilation: unused
   * imports and local variables in every module, and for v0 modules the checks v1 modules always
   * get (duplicate imports, `input`/`data` shadowing, deprecated built-ins). Compiles first.
   */
  strictProblems(): RegoError[] {
    this.compile();
    const fresh = this.parseAll();
    const v0 = new Set(fresh.filter((m) => m.regoVersion === 0).map((m) => m.file));
    const compiledV0 = this.compiled!.modules.filter((m) => v0.has(m.file));
    return [...strictProblems(fresh), ...fresh.filter((m) => v0.has(m.file)).flatMap((m) => [...importProblems(m), ...shadowProblems(m)]), ...compiledV0.flatMap(deprecatedCalls)];
  }

  /** rules lists every rule path (`data.` omitted) with where it is defined; functions excluded. */
  rules(): Array<{ path: string[]; file: string; row: number }> {
    this.compile();
    const out: Array<{ path: string[]; file: string; row: number }> = [];
    const walk = (n: RuleNode): void => {
      const r = n.rules[0] ?? n.dynamic[0]?.rule ?? n.defaultRule;
      if (r && !n.isFunction) out.push({ path: n.path, file: r.loc.file, row: r.loc.row });
      for (const c of n.children.values()) walk(c);
    };
    walk(this.compiled!.root);
    return out;
  }

  /** modules returns the compiled modules (their ASTs, with locations). */
  modules(): Module[] {
    this.compile();
    return this.compiled!.modules;
  }

  /** prepare compiles the modules (once) and a query, for repeated evaluation. */
  prepare(query: string, opts: PrepareOptions = {}): PreparedQuery {
    this.compile();
    const c = this.compiled!;
    const body = parseQuery(query);
    const cq = c.compiler.compileQuery(body);
    return new PreparedQuery(c.root, this.data, this.builtinLookup, c.steps, cq, body, { shared: this.shared, queryText: query, limits: this.limits, upstreams: this.upstreams, ...opts });
  }

  /** evaluate is prepare + eval for one-off queries. */
  evaluate(query: string, opts: PrepareOptions & { input?: unknown } = {}): ResultRow[] {
    return this.prepare(query, opts).eval(opts);
  }
}

/** PreparedQuery is a compiled query bound to the engine's modules and data. */
export class PreparedQuery {
  private texts: string[];
  private order: number[];
  /** for each expression as written, its position in the compiled (reordered) body */
  private valueAt: number[];
  /** the rule node of a `data.pkg.rule` query (null: any other query), found on the first evaluation */
  private direct: RuleNode | null | undefined;
  /** query text as prepared (recorded in decision logs) */
  readonly query: string;
  constructor(
    private root: RuleNode,
    private data: Value,
    private builtins: (name: string) => Builtin | undefined,
    private steps: StepCompiler,
    private q: CompiledQuery,
    original: Expr[],
    private defaults: PrepareOptions,
  ) {
    this.query = defaults.queryText ?? '';
    this.texts = original.map((e) => `${e.loc.row}:${e.loc.col}`);
    this.order = q.body.map((e) => original.findIndex((o) => o.loc.row === e.loc.row && o.loc.col === e.loc.col));
    this.valueAt = this.texts.map((_, j) => this.order.indexOf(j));
  }

  /**
   * eval runs the query once. `input` is used as is when it is plain JSON data; pass `inputTerm`
   * for Rego-only values (sets, non-string keys). Throws RegoError on evaluation errors.
   */
  eval(opts: PrepareOptions & { input?: unknown; inputTerm?: string } = {}): ResultRow[] {
    // the common call passes only the input: use the prepared options as they are (no copy)
    let o: PrepareOptions = this.defaults;
    for (const key in opts) {
      if (key !== 'input' && key !== 'inputTerm') {
        o = { ...this.defaults, ...opts };
        break;
      }
    }
    const log = o.decisionLog;
    if (!log) return this.run(o, opts);
    const t0 = process.hrtime.bigint();
    try {
      const rows = this.run(o, opts);
      const result = rows.length === 1 && rows[0]!.expressions.length === 1 && !Object.keys(rows[0]!.bindings).length ? rows[0]!.expressions[0]!.value : rows.length ? rows.map((r) => r.bindings) : undefined;
      log.record({ query: this.query, input: opts.input, result, durationUs: Number(process.hrtime.bigint() - t0) / 1000 });
      return rows;
    } catch (e) {
      log.record({ query: this.query, input: opts.input, error: (e as Error).message, durationUs: Number(process.hrtime.bigint() - t0) / 1000 });
      throw e;
    }
  }

  private run(o: PrepareOptions, opts: { input?: unknown; inputTerm?: string }): ResultRow[] {
    // The per-evaluation deadline goes to the evaluator as such: copying the options to add it would
    // make a wide object per evaluation, which at many evaluations a second ends up in the old generation.
    const deadline = o.deadline ?? (o.timeoutMs !== undefined ? Date.now() + o.timeoutMs : undefined);
    const input = opts.inputTerm !== undefined ? this.inputFromTerm(opts.inputTerm, o) : (opts.input as Value | undefined);
    // one evaluator is kept between evaluations and reset (an evaluation that starts while
    // another runs, from inside a built-in, makes its own)
    let ev = this.idle;
    if (ev !== undefined) {
      this.idle = undefined;
      ev.reset(input, o, deadline);
    } else ev = new Evaluator(this.root, this.data, this.builtins, this.steps, input, o, deadline);
    let threw = true;
    try {
      if (this.direct === undefined) this.direct = this.directRule(ev);
      // `data.pkg.rule`: the rule's value is the one result (the general path gets the same). Kept
      // in methods of their own: closures in one function make every call of it allocate a context.
      const rows = this.direct ? this.runDirect(ev, this.direct) : this.runQuery(ev, o);
      threw = false;
      return rows;
    } finally {
      ev.release(threw);
      this.idle = ev;
    }
  }

  /** an evaluator not in use, kept for the next evaluation */
  private idle: Evaluator | undefined;

  private inputFromTerm(text: string, o: PrepareOptions): Value | undefined {
    const t = parseTermText(text, 'input');
    let input: Value | undefined;
    new Evaluator(this.root, this.data, this.builtins, this.steps, undefined, o).evalTerm(t, [], (v) => ((input = v), true));
    return input;
  }

  private runDirect(ev: Evaluator, node: RuleNode): ResultRow[] {
    let v: Value | undefined;
    try {
      v = ev.rules.nodeValue(node);
    } catch (e) {
      throw stackOverflow(e);
    }
    if (v === undefined) return [];
    // one shallow literal at a time: before V8 optimizes this, a nested literal is a deep copy
    const expression = { value: v, text: this.texts[0]! };
    const expressions = [expression];
    const row: ResultRow = { expressions, bindings: {} };
    return [row];
  }

  private runQuery(ev: Evaluator, o: PrepareOptions): ResultRow[] {
    const frame: Frame = new Array(this.q.nslots);
    const rows: ResultRow[] = [];
    const body = this.q.body;
    const values: Value[] = new Array(body.length);
    const step = (i: number): boolean => {
      if (i === body.length) {
        const bindings: Record<string, Value> = {};
        for (const [name, slot, declared] of this.q.bindings) if (frame[slot] !== undefined && !(declared && o.hideDeclaredVars)) bindings[name] = frame[slot]!;
        const expressions = new Array<{ value: Value; text: string }>(this.texts.length);
        for (let j = 0; j < expressions.length; j++) expressions[j] = { value: values[this.valueAt[j]!] ?? true, text: this.texts[j]! };
        rows.push({ expressions, bindings });
        return false;
      }
      const e = body[i]!;
      if (e.kind === 'term' && !e.negated && !e.with.length && e.term.type !== 'call') {
        // A bare term in a query reports its value, even false (OPA captures it the same way).
        return ev.evalTerm(e.term, frame, (v) => {
          values[i] = v;
          return step(i + 1);
        });
      }
      ev.lastValue = true;
      return ev.evalExpr(e, frame, () => {
        values[i] = e.negated || e.kind !== 'term' ? true : ev.lastValue;
        return step(i + 1);
      });
    };
    try {
      step(0);
    } catch (e) {
      throw stackOverflow(e);
    }
    return rows;
  }

  /**
   * directRule finds the rule node of a query that is just `data.pkg.rule` (no bindings), which
   * `run` then evaluates without the query machinery; null for every other query.
   */
  private directRule(ev: Evaluator): RuleNode | null {
    const body = this.q.body;
    if (body.length !== 1 || this.q.bindings.length) return null;
    const e = body[0]!;
    if (e.kind !== 'term' || e.negated || e.with.length) return null;
    const t = e.term;
    if (t.type !== 'ref' || t.head.type !== 'var' || t.head.name !== 'data' || t.head.slot !== undefined) return null;
    const fast = ev.dataFastPath(t);
    return fast && fast.depth === t.path.length ? fast.node : null;
  }
}

/** stackOverflow turns the engine running out of stack into a Rego error; other errors pass as they are. */
function stackOverflow(e: unknown): unknown {
  if (e instanceof RangeError && /call stack/i.test(e.message)) return new RegoError('eval_stack_overflow', 'evaluation exceeded the maximum nesting depth (input or recursion too deep)');
  return e;
}

