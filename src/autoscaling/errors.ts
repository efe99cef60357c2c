import { SkiffError } from '../util/errors.js';

/** ScaleProblem names one bad field of a scale spec by its full path and says how to fix it. */
export interface ScaleProblem {
  field: string;
  message: string;
}

/**
 * AutoscalingError is the base of the autoscaling area's errors: a stable `code` (prefixed
 * `autoscaling_`) and a message for a person.
 */
export class AutoscalingError extends SkiffError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`autoscaling_${code}`, message, options);
  }
}

/**
 * InvalidScaleSpecError: a Function's `spec.scale` could not be resolved into a policy. It carries
 * every problem found, not the first, so the person fixing the manifest sees them all at once.
 */
export class InvalidScaleSpecError extends AutoscalingError {
  constructor(readonly problems: ScaleProblem[]) {
    super('invalid_scale_spec', `invalid scale spec: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
  }
}
