import { SkiffError } from '../../util/errors.js';

/** RolloutConflictError means an object the Rollout would make exists and belongs to someone else. */
export class RolloutConflictError extends SkiffError {
  constructor(message: string) {
    super('rollout_conflict', message);
  }
}
