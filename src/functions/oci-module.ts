import { formatReference, type ImageReference, OciError, parseReference, pullWasmModule, type Registry } from '../oci/index.js';

import { ModuleLoadError } from './errors.js';

/** The Ready reason each registry failure becomes. */
const REASONS: Record<string, string> = {
  oci_not_found: 'ModuleNotFound',
  oci_unauthorized: 'RegistryUnauthorized',
  oci_denied: 'RegistryUnauthorized',
  oci_digest_mismatch: 'DigestMismatch',
  oci_too_large: 'ModuleTooLarge',
  oci_upstream_refused: 'UpstreamRefused',
  oci_insecure_refused: 'RegistryInsecure',
  oci_artifact_unsupported: 'ModuleNotWasm',
  oci_manifest_invalid: 'ModuleNotWasm',
  oci_platform_not_found: 'ModuleNotWasm',
  oci_credentials_invalid: 'PullSecretInvalid',
};

/**
 * pinnedDigest returns the digest an earlier load pinned for `ref`, when `pinned` (status.resolvedModule)
 * was resolved from the same registry, repository and tag; a different spec.module resolves afresh.
 */
export function pinnedDigest(ref: ImageReference, pinned: string | undefined): string | undefined {
  if (!pinned || ref.digest) return undefined;
  try {
    const p = parseReference(pinned);
    return p.digest && p.registry === ref.registry && p.repository === ref.repository && p.tag === ref.tag ? p.digest : undefined;
  } catch {
    return undefined;
  }
}

/**
 * pullOciModule pulls a Function's oci:// module: by its digest when spec.module names one, by the
 * digest pinned earlier when the tag was resolved before, else by resolving the tag now. The result's
 * `resolved` is the reference pinned by digest, for status.resolvedModule.
 */
export async function pullOciModule(registry: Registry, text: string, ref: ImageReference, opts: { pinned?: string; maxBytes: number }): Promise<{ bytes: Uint8Array; resolved: string }> {
  const pin = pinnedDigest(ref, opts.pinned);
  const target = pin ? { ...ref, digest: pin } : ref;
  try {
    const pulled = await pullWasmModule(registry, target, { maxBytes: opts.maxBytes });
    return { bytes: pulled.bytes, resolved: formatReference({ ...ref, digest: ref.digest ?? pin ?? pulled.resolvedDigest }, { scheme: true }) };
  } catch (err) {
    if (!(err instanceof OciError)) throw err;
    const reason = REASONS[err.code] ?? 'FetchFailed';
    const pinNote = pin ? ` (the tag was pinned to ${pin} when first resolved; change spec.module to move to another digest)` : '';
    throw new ModuleLoadError(reason, `spec.module ${text}: ${err.message}${pinNote}`, err);
  }
}
