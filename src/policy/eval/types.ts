import type { UpstreamGuard } from '../../security/index.js';
import type { CallTerm, Expr, Rule, Term } from '../ast/types.js';
import type { Builtin, BuiltinContext, BuiltinLimits, ExternalDataLookup } from '../builtins/types.js';
import type { RuleNode } from '../compile/tree.js';
import type { RegoError } from '../errors.js';
import type { RSet, Value } from '../value.js';

/** K is a continuation; returning true stops the search (a solution was enough). */
export type K = () => boolean;
export type KV = (v: Value) => boolean;
export type Frame = Array<Value | undefined>;

/** Step evaluates `body[i..]` of a compiled body: it decides expression i and hands over to the next step. */
export type Step = (ev: EvalEngine, frame: Frame, k: K) => boolean;

/** Mock replaces a function or built-in inside a `with` scope. */
export type Mock = { kind: 'value'; value: Value } | { kind: 'builtin'; name: string } | { kind: 'func'; path: string[] };

/** Ctx is what `with` can change; a new one is made for each `with` scope. */
export interface Ctx {
  input: Value | undefined;
  overrides: Map<string, Value> | undefined;
  mocks: Map<string, Mock> | undefined;
  /** rule values of this scope (a symbol marks an undefined value) */
  cache: Map<RuleNode, Value | symbol>;
}

/** EvalOptions controls one evaluation. */
export interface EvalOptions {
  strict?: boolean;
  /** absolute deadline in ms since the epoch */
  deadline?: number;
  stepLimit?: number;
  signal?: AbortSignal;
  print?: (msg: string) => void;
  tracer?: (event: TraceEvent) => void;
  httpAllow?: string[];
  /** the operator's upstream allow-list: every address http.send connects to must pass it (set by the engine) */
  upstreams?: UpstreamGuard;
  /** answers Gatekeeper's `external_data` built-in (providers fetched before the evaluation) */
  externalData?: ExternalDataLookup;
  /** size caps on built-in results (set by the engine) */
  limits?: BuiltinLimits;
  /** non-strict mode: built-in errors (which make their expression undefined) are also collected here */
  builtinErrors?: RegoError[];
  /**
   * @internal false runs every rule body on the general evaluator instead of the compiled tier
   * (tests compare the two; tracing does the same)
   */
  compiled?: boolean;
  /** memo shared by evaluations of one engine (compiled regular expressions) */
  shared?: Map<string, unknown>;
}

/** TraceEvent is one step of an explanation. */
export interface TraceEvent {
  op: 'eval' | 'fail' | 'exit' | 'note';
  loc: Term['loc'];
  text: string;
}


/** NS marks a term that needs the general (continuation) evaluator. */
export const NS: unique symbol = Symbol('not-simple');

/** RuleValues is what the compiled tier and built-ins ask of the rule evaluator (`rules.ts`). */
export interface RuleValues {
  /** nodeValue is the value of a rule node in the current `with` scope (undefined when it has none). */
  nodeValue(node: RuleNode): Value | undefined;
  /** callFunction calls a user function with evaluated operands. */
  callFunction(node: RuleNode, args: Value[]): Value | undefined;
  /** metadata is rego.metadata.rule() and rego.metadata.chain() for a rule. */
  metadata(r: Rule | undefined): { rule: Value; chain: Value };
}

/**
 * EvalEngine is the evaluator as its collaborators (rules, `with`, the compiled tier, the built-in
 * context) see it. It lives here, in the leaf module, so that they need not import `evaluator.ts`,
 * which imports them: `Evaluator` implements it.
 */
export interface EvalEngine {
  ctx: Ctx;
  lastValue: Value;
  currentRule: Rule | undefined;
  /** the collection a compiled comprehension's body is adding to */
  sink: RSet | Value[] | undefined;
  readonly strict: boolean;
  readonly root: RuleNode;
  readonly data: Value;
  readonly builtins: (name: string) => Builtin | undefined;
  readonly opts: EvalOptions;
  readonly rules: RuleValues;
  readonly bctx: BuiltinContext;
  readonly inProgress: Map<RuleNode, boolean>;
  readonly local: Map<string, unknown>;
  readonly startMs: number;
  tick(): void;
  checkDeadline(): void;
  remainingMs(): number;
  scratchArgs(n: number): Value[];
  evalBody(body: Expr[], i: number, frame: Frame, k: K): boolean;
  evalExpr(e: Expr, frame: Frame, k: K): boolean;
  evalTerm(t: Term, frame: Frame, k: KV): boolean;
  evalList(ts: Term[], frame: Frame, k: (vs: Value[]) => boolean): boolean;
  evaluable(t: Term, frame: Frame): boolean;
  unify(t: Term, v: Value, frame: Frame, k: K): boolean;
  simple(t: Term, frame: Frame): Value | undefined | typeof NS;
  walk(v: Value, path: Term[], i: number, frame: Frame, k: KV, dataDoc?: boolean): boolean;
  builtinFailed(e: unknown, t: CallTerm, name: string): undefined;
}
