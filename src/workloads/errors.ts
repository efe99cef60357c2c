import { SkiffError } from '../util/errors.js';

/**
 * WorkloadError: a container or VM workload could not be prepared or run. `reason` is the PascalCase
 * condition reason a Function's status shows (HandlerUnavailable, ImagePullFailed, InvalidImage,
 * LayerEscapesRoot, StartFailed, ...); the message names the image, layer or file and what to do.
 */
export class WorkloadError extends SkiffError {
  constructor(readonly reason: string, message: string, cause?: unknown) {
    super(`workload_${reason.replace(/[A-Z]/g, (c, i) => (i ? '_' : '') + c.toLowerCase())}`, message, { cause });
  }
}
