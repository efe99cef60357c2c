import { SkiffError } from '../util/errors.js';

import type { Loc } from './ast/types.js';

/**
 * RegoError carries one of OPA's error codes (`rego_parse_error`, `rego_compile_error`,
 * `rego_unsafe_var_error`, `rego_recursion_error`, `rego_type_error`, `eval_conflict_error`,
 * `eval_builtin_error`, `eval_type_error`, `eval_cancel_error`) and, when known, a location.
 * The message reads like OPA's: `file:row: code: text`.
 */
export class RegoError extends SkiffError {
  readonly loc: Loc | undefined;
  readonly detail: string;
  constructor(code: string, detail: string, loc?: Loc) {
    super(code, `${loc ? `${loc.file}:${loc.row}: ` : ''}${code}: ${detail}`);
    this.loc = loc;
    this.detail = detail;
  }
}

/** RegoErrors collects several compile problems, sorted by location, reported at once. */
export class RegoErrors extends SkiffError {
  readonly errors: RegoError[];
  constructor(errors: RegoError[]) {
    const sorted = [...errors].sort(
      (a, b) => (a.loc?.file ?? '').localeCompare(b.loc?.file ?? '') || (a.loc?.row ?? 0) - (b.loc?.row ?? 0) || (a.loc?.col ?? 0) - (b.loc?.col ?? 0),
    );
    super(sorted[0]?.code ?? 'rego_compile_error', sorted.length === 1 ? sorted[0]!.message : `${sorted.length} errors occurred:\n${sorted.map((e) => e.message).join('\n')}`);
    this.errors = sorted;
  }
}

/** HaltError aborts evaluation: deadline, step limit or cancellation. */
export class EvalCancelError extends RegoError {
  constructor(detail: string) {
    super('eval_cancel_error', detail);
  }
}

/** caretSnippet renders the source line of loc with a caret under the column. */
export function caretSnippet(source: string, loc: Loc): string {
  const line = source.split('\n')[loc.row - 1] ?? '';
  return `${line}\n${' '.repeat(Math.max(0, loc.col - 1))}^`;
}
