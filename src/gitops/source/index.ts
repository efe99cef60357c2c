// The Git source: GitRepository objects fetched into mirrors and stored as artifacts (see ../README.md).
export { ArtifactStore, type ArtifactFile, type ArtifactLimits, DEFAULT_ARTIFACT_LIMITS, type StoredArtifact } from './artifacts.js';
export { GitRepositoryController, type GitRepositoryControllerOptions, RECONCILE_AT_ANNOTATION } from './controller.js';
export { ArtifactCorruptError, ArtifactTooLargeError, GitFetchError, VerificationError } from './errors.js';
export { type FetchedRevision, type GitCredentials, GitMirrors, type GitRef, gitUrlGuard, redactUrl, type UrlGuard } from './git.js';
export { readTrustedKeys, verifyCommit } from './verify.js';
export { GIT_WEBHOOK_PREFIX, gitWebhookMount, type GitWebhookOptions, type WebhookSources } from './webhook.js';
