import type { Term } from '../ast/types.js';
import type { RuleNode } from '../compile/tree.js';
import type { RegoError } from '../errors.js';
import type { BuiltinLimits } from '../builtins/limits.js';
import type { UpstreamGuard } from '../../security/index.js';
import type { Value } from '../value.js';

/** K is a continuation; returning true stops the search (a solution was enough). */
export type K = () => boolean;
export type KV = (v: Value) => boolean;
export type Frame = Array<Value | undefined>;

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
  /** size caps on built-in results (set by the engine) */
  limits?: BuiltinLimits;
  /** non-strict mode: built-in errors (which make their expression undefined) are also collected here */
  builtinErrors?: RegoError[];
  /**
   * @internal false keeps hot expressions on closures instead of generated code (tests use it; a
   * body is compiled once, by the first evaluation that reaches it, for every query of the engine)
   */
  codegen?: boolean;
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

