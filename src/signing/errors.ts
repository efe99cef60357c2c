import { CheckFailedError, SkiffError } from '../util/errors.js';

/**
 * KeyError means a key file could not be used: not PEM, an unsupported algorithm or curve, or a
 * wrong password. The message names the file (or the field the PEM came from) and what to do.
 */
export class KeyError extends SkiffError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('signing_key_invalid', message, options);
  }
}

/** BundleFormatError means a Sigstore bundle is not well-formed JSON of a bundle version Skiff reads. */
export class BundleFormatError extends SkiffError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('sigstore_bundle_invalid', message, options);
  }
}

/** TrustedRootError means a `trusted_root.json` could not be read as Sigstore's TrustedRoot. */
export class TrustedRootError extends SkiffError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('trusted_root_invalid', message, options);
  }
}

/**
 * VerificationFailedError means a signature, bundle or attestation was checked and did not verify
 * (or none was found). It is a `CheckFailedError`, so the CLI exits 1, as cosign does.
 */
export class VerificationFailedError extends CheckFailedError {
  /** reasons lists every signature tried and why it did not verify. */
  readonly reasons: string[];
  constructor(message: string, reasons: string[] = []) {
    super(message, 'signature_verification_failed');
    this.reasons = reasons;
  }
}
