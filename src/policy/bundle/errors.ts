import { SkiffError } from '../../util/errors.js';

/**
 * BundleError is any reason a policy bundle is refused: it names the bundle and, when one file is to
 * blame, that file (as its path inside the bundle), so a condition or a CLI error points at it.
 *
 * Codes: `bundle_corrupt` (not gzip, not tar), `bundle_unsafe_entry` (`..`, links, devices),
 * `bundle_too_large` (compressed, uncompressed, per file, file count), `bundle_manifest_invalid`,
 * `bundle_roots` (overlapping roots, a package or data outside them), `bundle_data_invalid`,
 * `bundle_parse_error` (a module does not parse), `bundle_unsupported` (delta or Wasm-only bundles),
 * `bundle_signature_missing`, `bundle_signature_invalid`, `bundle_files_mismatch` (the signature
 * covers other files than the bundle holds, or a file's digest differs), `bundle_key_invalid`.
 */
export class BundleError extends SkiffError {
  constructor(
    code: string,
    readonly bundle: string,
    readonly file: string | undefined,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(code, `bundle ${bundle}${file ? `, file ${file}` : ''}: ${detail}`, options);
  }
}
