import type { UpstreamGuard } from '../../security/index.js';
import type { Signature } from '../compile/typecheck.js';
import { typeName, type Value } from '../value.js';

/**
 * BuiltinLimits cap what one built-in call may build, so that no call can exhaust memory or spend
 * long in a single native operation the deadline cannot interrupt (a join, a pad, a split). A call
 * over a limit is an `eval_builtin_error` naming the built-in and the limit (the expression is then
 * undefined, or the query fails in strict mode).
 */
export interface BuiltinLimits {
  /** most elements one call may produce: array or set elements, object entries, `walk` results */
  maxElements: number;
  /** longest string (UTF-16 code units) one call may produce */
  maxStringLength: number;
}

/** BuiltinContext is what a built-in may use from the running evaluation. */
export interface BuiltinContext {
  /** evaluation start, nanoseconds since the epoch (time.now_ns is stable within a query) */
  nowNs: bigint;
  print(msg: string): void;
  /** per-query memo for built-ins that must return the same value within one query (rand, uuid) */
  memo: Map<string, Value>;
  /** hosts http.send may contact; empty means http.send is off unless `upstreams` is set */
  httpAllow: string[];
  /** when set, every address http.send connects to must pass this guard (the operator's allow-list) */
  upstreams: UpstreamGuard | undefined;
  /**
   * check throws the evaluator's EvalCancelError when the evaluation is past its deadline or
   * cancelled. Built-ins that loop over their input or output call it every so often (see `pace`).
   */
  check(): void;
  /** milliseconds left before the deadline (Infinity without one), for built-ins that wait */
  remainingMs(): number;
  /** size caps on what one call may produce */
  limits: BuiltinLimits;
  /** annotations of the rule being evaluated (rego.metadata.rule / chain) */
  metadata?(): { rule: Value; chain: Value };
  /** per-engine memo of compiled patterns (regex, glob) */
  shared: Map<string, unknown>;
  /** Gatekeeper's external data: a provider's answer for keys, or undefined when there is no such provider */
  externalData?(provider: string, keys: unknown[]): ExternalDataAnswer | undefined;
  /** evaluation of a full policy module (rego.parse_module) */
  parseModule?(file: string, text: string): Value;
}

/** ExternalDataAnswer is a provider's answer to `external_data`, in Gatekeeper's response shape. */
export interface ExternalDataAnswer {
  responses: Array<[unknown, unknown]>;
  errors: Array<[unknown, string]>;
  system_error: string;
}

/** ExternalDataLookup answers `external_data` for the providers an evaluation was given. */
export type ExternalDataLookup = (provider: string, keys: unknown[]) => ExternalDataAnswer | undefined;

/** BuiltinFn computes a built-in's result from evaluated operands; undefined means undefined. */
export type BuiltinFn = (args: Value[], ctx: BuiltinContext) => Value | undefined;

/** Builtin is one entry of a family's register table. */
export interface Builtin {
  arity: number;
  fn: BuiltinFn;
  /** nondeterministic built-ins are not cached */
  sideEffect?: boolean;
  /** a relation returns an array of results, each one a separate solution (walk) */
  relation?: boolean;
  /** operand and result types (from SIGNATURES), for the compiler's type checker */
  sig?: Signature;
}

/** BuiltinError makes the calling expression undefined, or fails the query in strict mode. */
export class BuiltinError extends Error {
  constructor(
    readonly code: 'eval_type_error' | 'eval_builtin_error',
    message: string,
  ) {
    super(message);
  }
}

/** typeErr builds OPA's operand type error: `name: operand N must be T but got U`. */
export function typeErr(name: string, pos: number, want: string, got: Value): BuiltinError {
  return new BuiltinError('eval_type_error', `${name}: operand ${pos} must be ${want} but got ${typeName(got)}`);
}

/** builtinErr builds an `eval_builtin_error` with the built-in's name as prefix. */
export function builtinErr(name: string, msg: string): BuiltinError {
  return new BuiltinError('eval_builtin_error', `${name}: ${msg}`);
}
