import type { Value } from '../value.js';

/** Loc is a source position (1-based row and column). */
export interface Loc {
  file: string;
  row: number;
  col: number;
}

/** Term is a Rego term: a value, variable, reference, collection, comprehension or call. */
export type Term =
  | { type: 'scalar'; value: Value; loc: Loc }
  | { type: 'var'; name: string; loc: Loc; slot?: number }
  | { type: 'ref'; head: Term; path: Term[]; loc: Loc }
  | { type: 'array'; items: Term[]; loc: Loc }
  | { type: 'object'; items: Array<[Term, Term]>; loc: Loc }
  | { type: 'set'; items: Term[]; loc: Loc }
  | { type: 'arraycompr'; head: Term; body: Expr[]; loc: Loc }
  | { type: 'setcompr'; head: Term; body: Expr[]; loc: Loc }
  | { type: 'objectcompr'; key: Term; value: Term; body: Expr[]; loc: Loc }
  | { type: 'call'; fn: string[]; args: Term[]; loc: Loc; target?: CallTarget }
  | { type: 'template'; parts: Array<string | Term | Expr>; loc: Loc };

/** CallTarget is filled by the compiler: a built-in or a user function at a data path. */
export type CallTarget = { kind: 'builtin'; name: string } | { kind: 'func'; path: string[] } | { kind: 'dynamic' };

export type RefTerm = Extract<Term, { type: 'ref' }>;
export type VarTerm = Extract<Term, { type: 'var' }>;
export type CallTerm = Extract<Term, { type: 'call' }>;

/** With is a `with TARGET as VALUE` modifier. */
export interface With {
  target: Term;
  value: Term;
  loc: Loc;
}

/** Expr is one literal of a rule body or query. */
export type Expr = (
  | { kind: 'term'; term: Term }
  | { kind: 'some'; vars: VarTerm[] }
  | { kind: 'somein'; key?: Term; value: Term; domain: Term }
  | { kind: 'every'; key?: Term; value: Term; domain: Term; body: Expr[] }
) & {
  negated: boolean;
  with: With[];
  loc: Loc;
  /** filled by the compiler: the variable slots bound before this expression runs (its place in the ordered body) */
  bound?: ReadonlySet<number>;
  /** filled by the compiler: this expression binds an operand hoisted out of the negated expression after it */
  hoisted?: true;
};

/** Rule is one rule definition (one body); `else` chains hang off it. */
export interface Rule {
  /** head ref after the package, e.g. p.q[x] → ["p","q",x] */
  ref: Term[];
  kind: 'complete' | 'multi' | 'func';
  args?: Term[];
  key?: Term;
  value?: Term;
  /** the head's value was written with `:=` (v0 formatting keeps `=` where it was written) */
  assign?: true;
  body: Expr[];
  elses: Array<{ value?: Term; assign?: true; body: Expr[]; loc: Loc }>;
  isDefault: boolean;
  loc: Loc;
  module: Module;
  /** filled by the compiler */
  nslots?: number;
  /** memo: every parameter is a plain variable */
  plainParams?: boolean;
  /** `# METADATA` annotations written just above the rule */
  annotations?: Record<string, unknown>;
}

export interface Import {
  path: Term;
  alias?: string;
  loc: Loc;
}

/** Module is one parsed Rego file. */
export interface Module {
  file: string;
  pkg: string[];
  imports: Import[];
  rules: Rule[];
  regoVersion: 0 | 1;
  loc: Loc;
  /** `# METADATA` annotations written just above the package clause */
  annotations?: Record<string, unknown>;
}
