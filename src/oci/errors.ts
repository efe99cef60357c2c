import { SkiffError } from '../util/errors.js';

/**
 * OciError is the base of every refusal or failure of the registry client. `code` is stable (programs
 * match on it); the message names the reference and says what to do. Messages never carry
 * credentials, tokens or response bodies beyond the registry's own short error text.
 */
export class OciError extends SkiffError {}

/** OciReferenceError: a reference (`HOST[:PORT]/REPO[:TAG][@sha256:HEX]`) cannot be parsed. */
export class OciReferenceError extends OciError {
  constructor(message: string) {
    super('oci_reference_invalid', message);
  }
}

/** OciNotFoundError: the registry has no such repository, tag, manifest or blob (HTTP 404). */
export class OciNotFoundError extends OciError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('oci_not_found', message, options);
  }
}

/** OciUnauthorizedError: the registry wants credentials, or refused the ones sent (HTTP 401). */
export class OciUnauthorizedError extends OciError {
  constructor(message: string) {
    super('oci_unauthorized', message);
  }
}

/** OciDeniedError: the credentials were accepted but may not do this (HTTP 403). */
export class OciDeniedError extends OciError {
  constructor(message: string) {
    super('oci_denied', message);
  }
}

/** OciDigestMismatchError: content does not have the digest it was asked for or announced under. */
export class OciDigestMismatchError extends OciError {
  constructor(message: string) {
    super('oci_digest_mismatch', message);
  }
}

/** OciTooLargeError: a manifest or blob is larger than the limit the caller set. */
export class OciTooLargeError extends OciError {
  constructor(message: string) {
    super('oci_too_large', message);
  }
}

/** OciManifestError: a manifest is not JSON, not of a known media type, or misses required fields. */
export class OciManifestError extends OciError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('oci_manifest_invalid', message, options);
  }
}

/** OciPlatformError: an image index holds no image for the platform asked for. */
export class OciPlatformError extends OciError {
  constructor(message: string) {
    super('oci_platform_not_found', message);
  }
}

/** OciArtifactError: a manifest is well-formed but is not the kind of artifact asked for (not a Wasm module). */
export class OciArtifactError extends OciError {
  constructor(message: string) {
    super('oci_artifact_unsupported', message);
  }
}

/** OciRegistryError: the registry answered with an unexpected status (5xx after retries, 400, 405, ...). */
export class OciRegistryError extends OciError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super('oci_registry_error', message);
  }
}

/** OciTimeoutError: the registry did not answer within the deadline, or a download stalled. */
export class OciTimeoutError extends OciError {
  constructor(message: string) {
    super('oci_timeout', message);
  }
}

/** OciUnreachableError: the registry could not be connected to (refused, reset, unresolvable, TLS failure). */
export class OciUnreachableError extends OciError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('oci_unreachable', message, options);
  }
}

/** OciInsecureError: plain HTTP was needed for a registry the operator has not allowed it for. */
export class OciInsecureError extends OciError {
  constructor(message: string) {
    super('oci_insecure_refused', message);
  }
}

/** OciUpstreamRefusedError: the upstream guard refuses the registry's address (loopback, link-local, Skiff's own listeners). */
export class OciUpstreamRefusedError extends OciError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('oci_upstream_refused', message, options);
  }
}

/** OciCredentialsError: a docker config.json or registry Secret cannot be read or has no usable entry. */
export class OciCredentialsError extends OciError {
  constructor(message: string) {
    super('oci_credentials_invalid', message);
  }
}
