import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';

import { type ImageReference, OciReferenceError, parseReference } from '../../oci/index.js';

/** The prefix of a Function module that names an uploaded blob: `blob:sha256:HEX`. */
export const BLOB_REF_PREFIX = 'blob:sha256:';

/** The annotation `skiff apply` leaves on a Function whose module it uploaded: the path as the manifest wrote it. */
export const MODULE_SOURCE_ANNOTATION = 'skiff.dev/module-source';

/**
 * ModuleRef is what a Function's `spec.module` names:
 * - `blob`: bytes uploaded to the server's content-addressed store (`blob:sha256:HEX`);
 * - `url`: an http(s) URL the server fetches;
 * - `host`: a host path (plain, or a `file://` URL) the server reads itself; `path` is absolute for a
 *   `file://` URL and as written otherwise (a relative path has no meaning on the server);
 * - `oci`: a Wasm module artifact in an OCI registry (`oci://HOST[:PORT]/REPO[:TAG][@sha256:HEX]`);
 * - `invalid`: none of these, with the reason.
 */
export type ModuleRef =
  | { type: 'blob'; hex: string; digest: string }
  | { type: 'url'; url: URL }
  | { type: 'host'; path: string; absolute: boolean }
  | { type: 'oci'; ref: ImageReference }
  | { type: 'invalid'; message: string };

const FORMS = 'use blob:sha256:HEX (an uploaded module: skiff apply uploads local files), oci://REGISTRY/REPO@sha256:HEX or :TAG (skiff push), an http(s):// URL, or an absolute path or file:// URL inside a directory the server allows';

/** blobRef renders the `spec.module` value that names an uploaded blob. */
export function blobRef(hex: string): string {
  return BLOB_REF_PREFIX + hex;
}

/** parseModuleRef classifies a `spec.module` value; it touches neither the file system nor the network. */
export function parseModuleRef(ref: string): ModuleRef {
  if (typeof ref !== 'string' || ref === '') return { type: 'invalid', message: `must not be empty; ${FORMS}` };
  if (ref.includes('\0')) return { type: 'invalid', message: 'must not contain a NUL character' };
  if (/^blob:/i.test(ref)) {
    const hex = ref.slice(BLOB_REF_PREFIX.length);
    if (!ref.startsWith(BLOB_REF_PREFIX) || !/^[0-9a-f]{64}$/.test(hex)) return { type: 'invalid', message: 'a blob reference must be blob:sha256: followed by 64 lowercase hex digits' };
    return { type: 'blob', hex, digest: `sha256:${hex}` };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(ref)?.[1]?.toLowerCase();
  // A one-letter "scheme" is a Windows drive; anything else with a colon and no slash is a plain relative name.
  if (scheme && scheme.length > 1 && ref.slice(scheme.length + 1).startsWith('//')) {
    if (scheme === 'http' || scheme === 'https') {
      let url: URL;
      try {
        url = new URL(ref);
      } catch {
        return { type: 'invalid', message: 'is not a valid URL' };
      }
      if (!url.hostname) return { type: 'invalid', message: 'a URL needs a host' };
      return { type: 'url', url };
    }
    if (scheme === 'oci') {
      try {
        const parsed = parseReference(ref);
        if (!parsed.tag && !parsed.digest) return { type: 'invalid', message: `${ref} names neither a tag nor a digest; add :TAG or @sha256:HEX` };
        return { type: 'oci', ref: parsed };
      } catch (err) {
        if (err instanceof OciReferenceError) return { type: 'invalid', message: err.message };
        throw err;
      }
    }
    if (scheme === 'file') {
      let path: string;
      try {
        const u = new URL(ref);
        if (u.hostname && u.hostname !== 'localhost') return { type: 'invalid', message: 'a file:// URL must name a local path (file:///PATH)' };
        path = fileURLToPath(u);
      } catch {
        return { type: 'invalid', message: 'is not a valid file:// URL' };
      }
      return { type: 'host', path, absolute: true };
    }
    return { type: 'invalid', message: `the scheme "${scheme}" is not supported; ${FORMS}` };
  }
  return { type: 'host', path: ref, absolute: isAbsolute(ref) };
}
