import { SkiffError } from '../../util/errors.js';

/** SyncBuildError: the manifests under a Sync's path could not be read into objects; the message names every file and line. */
export class SyncBuildError extends SkiffError {
  constructor(message: string, readonly problems: string[] = [message]) {
    super('sync_build_failed', message);
  }
}

/** SyncPathError: a path in a Sync's spec or a kustomization points outside the artifact. */
export class SyncPathError extends SkiffError {
  constructor(message: string) {
    super('sync_path_invalid', message);
  }
}

/** SyncLimitError: a revision is larger than a Sync may apply (objects, bytes, nesting). */
export class SyncLimitError extends SkiffError {
  constructor(message: string) {
    super('sync_limit_exceeded', message);
  }
}

/** SyncApplyError: the API refused an object of the revision (schema, admission, a constraint); nothing of the revision was applied. */
export class SyncApplyError extends SkiffError {
  constructor(
    message: string,
    readonly object: string,
    readonly file: string,
  ) {
    super('sync_apply_refused', message);
  }
}
