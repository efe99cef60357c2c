import { SkiffError } from '../../util/errors.js';

/** Why a fetch failed, as the Ready condition's reason. */
export type FetchFailureReason = 'FetchFailed' | 'TimedOut' | 'RefNotFound' | 'AuthenticationFailed' | 'HostKeyVerificationFailed' | 'RepositoryTooLarge' | 'InvalidSource';

/** GitFetchError: git could not fetch the requested revision. The message never holds credentials. */
export class GitFetchError extends SkiffError {
  constructor(
    readonly reason: FetchFailureReason,
    message: string,
  ) {
    super(`git_${reason.replace(/[A-Z]/g, (c, i: number) => (i ? '_' : '') + c.toLowerCase())}`, message);
  }
}

/** ArtifactTooLargeError: a revision's tree exceeds the artifact limits (files or bytes). */
export class ArtifactTooLargeError extends SkiffError {
  constructor(message: string) {
    super('artifact_too_large', message);
  }
}

/** ArtifactCorruptError: a stored artifact holds an entry that is not a plain file at a safe relative path. */
export class ArtifactCorruptError extends SkiffError {
  constructor(digest: string, detail: string) {
    super('artifact_corrupt', `artifact ${digest} is not usable: ${detail}; it will be rebuilt on the source's next fetch`);
  }
}

/** VerificationError: a commit's signature is missing, malformed, or not made by a trusted key. */
export class VerificationError extends SkiffError {
  constructor(
    readonly reason: 'Unsigned' | 'InvalidSignature' | 'UntrustedKey' | 'NoKeys' | 'UnsupportedSignature',
    message: string,
  ) {
    super(`verify_${reason.replace(/[A-Z]/g, (c, i: number) => (i ? '_' : '') + c.toLowerCase())}`, message);
  }
}
