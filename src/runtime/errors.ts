import { SkiffError } from '../util/errors.js';

/**
 * RuntimeErrorCode lists every condition the sandbox runtime reports on purpose. The codes are stable:
 * the control plane maps them to HTTP statuses (trap → 500, timeout → 504, overloaded → 503). `host_error`
 * is a bug in the WASI host itself (a syscall threw something unexpected), not the guest's fault.
 */
export type RuntimeErrorCode =
  | 'not_wasm'
  | 'unsupported_feature'
  | 'invalid_module'
  | 'missing_imports'
  | 'not_a_command'
  | 'unknown_module'
  | 'trap'
  | 'timeout'
  | 'memory_limit'
  | 'output_limit'
  | 'overloaded'
  | 'closed'
  | 'invalid_options'
  | 'worker_failed'
  | 'host_error';

/** RuntimeError is raised by the sandbox runtime; `code` is one of {@link RuntimeErrorCode}. */
export class RuntimeError extends SkiffError {
  declare readonly code: RuntimeErrorCode;
  /** Names of the missing imports for 'missing_imports', as `module.name`. */
  readonly details?: string[];
  /** What the guest wrote before it failed (trap, limits), for logs. */
  readonly stdout?: Uint8Array;
  readonly stderr?: Uint8Array;
  constructor(code: RuntimeErrorCode, message: string, options?: { cause?: unknown; details?: string[]; stdout?: Uint8Array; stderr?: Uint8Array }) {
    super(code, message, options);
    if (options?.details) this.details = options.details;
    if (options?.stdout) this.stdout = options.stdout;
    if (options?.stderr) this.stderr = options.stderr;
  }
}

/** isRuntimeError narrows an unknown value to a RuntimeError (also when it crossed a worker boundary as a plain object). */
export function isRuntimeError(err: unknown): err is RuntimeError {
  return err instanceof RuntimeError;
}
