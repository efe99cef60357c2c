import { SkiffError } from '../util/errors.js';

/**
 * FunctionError is raised while serving a function. Its code tells the gateway which HTTP status to
 * answer: function_not_found/not_ready/overloaded → 503, timeout → 504, bad_gateway → 502, others → 500.
 */
export class FunctionError extends SkiffError {}

/** ModuleLoadError: a Function's module could not be loaded; `reason` is a PascalCase condition reason. */
export class ModuleLoadError extends SkiffError {
  constructor(readonly reason: string, message: string, cause?: unknown) {
    super(`module_${reason.replace(/[A-Z]/g, (c, i) => (i ? '_' : '') + c.toLowerCase())}`, message, { cause });
  }
}
