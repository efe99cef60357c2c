/**
 * SkiffError is the base of every error Skiff raises on purpose: a stable machine-readable `code`
 * and a message written for a person (what went wrong, where, and what to do about it).
 */
export class SkiffError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** UsageError means the command line itself was wrong; the CLI exits 2. */
export class UsageError extends SkiffError {
  constructor(message: string) {
    super('usage_error', message);
  }
}

/** CheckFailedError means the request was understood but refused or the check failed; the CLI exits 1. */
export class CheckFailedError extends SkiffError {
  constructor(message: string, code = 'check_failed') {
    super(code, message);
  }
}
