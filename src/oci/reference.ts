import { OciReferenceError } from './errors.js';
import type { ImageReference } from './types.js';

/** The scheme a Function's `spec.module` and other resource fields use to name an OCI artifact. */
export const OCI_SCHEME = 'oci://';

const HOST = /^(?:\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::(\d{1,5}))?$/;
// The distribution spec's repository name grammar: lowercase path components joined by `/`.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const FORM = 'HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX], e.g. ghcr.io/team/app:v1 or 127.0.0.1:5000/app@sha256:...';

/** isDigest tells whether a string is a `sha256:<64 lowercase hex>` digest. */
export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

/**
 * parseReference reads `[oci://]HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]`. The registry host is
 * required (there is no implicit Docker Hub); a reference with neither tag nor digest means `latest`
 * only when `defaultTag` says so. Errors are OciReferenceErrors naming the reference and the part that
 * is wrong.
 *
 * @example
 * parseReference('oci://127.0.0.1:5000/team/app:v1') // { registry: '127.0.0.1:5000', repository: 'team/app', tag: 'v1' }
 */
export function parseReference(text: string, opts: { defaultTag?: string } = {}): ImageReference {
  if (typeof text !== 'string' || !text.trim()) throw new OciReferenceError(`an empty string is not an OCI reference; expected ${FORM}`);
  const shown = text.length > 200 ? `${text.slice(0, 200)}...` : text;
  let rest = text.trim();
  if (rest.toLowerCase().startsWith(OCI_SCHEME)) rest = rest.slice(OCI_SCHEME.length);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rest)) throw new OciReferenceError(`"${shown}": only the oci:// scheme names an OCI artifact; expected ${FORM}`);
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new OciReferenceError(`"${shown}": the digest "${digest.slice(0, 80)}" is not sha256: followed by 64 lowercase hex digits`);
  }
  const slash = rest.indexOf('/');
  if (slash <= 0) throw new OciReferenceError(`"${shown}" names no registry host; expected ${FORM}`);
  const registry = rest.slice(0, slash);
  const hostMatch = HOST.exec(registry);
  if (!hostMatch || (hostMatch[1] !== undefined && (Number(hostMatch[1]) < 1 || Number(hostMatch[1]) > 65535))) throw new OciReferenceError(`"${shown}": "${registry}" is not a registry HOST[:PORT]`);
  if (!/[.:]/.test(registry) && registry !== 'localhost' && !registry.startsWith('[')) {
    throw new OciReferenceError(`"${shown}": "${registry}" does not look like a registry host (no dot or port); name the registry explicitly, e.g. docker.io/${rest}`);
  }
  let path = rest.slice(slash + 1);
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) throw new OciReferenceError(`"${shown}": the tag "${tag.slice(0, 80)}" is not valid (letters, digits, _, . and -, at most 128, not starting with . or -)`);
  }
  if (!path) throw new OciReferenceError(`"${shown}" names no repository; expected ${FORM}`);
  if (path.length > 255) throw new OciReferenceError(`"${shown}": the repository name is longer than 255 characters`);
  for (const c of path.split('/')) {
    if (!COMPONENT.test(c)) throw new OciReferenceError(`"${shown}": the repository "${path}" is not valid (lowercase letters and digits, separated by ., _, __, - or /)`);
  }
  if (!tag && !digest && opts.defaultTag) tag = opts.defaultTag;
  const ref: ImageReference = { registry: registry.toLowerCase(), repository: path };
  if (tag) ref.tag = tag;
  if (digest) ref.digest = digest;
  return ref;
}

/** formatReference renders a reference as `HOST/REPO[:TAG][@DIGEST]`, with `oci://` in front when `scheme` is set. */
export function formatReference(ref: ImageReference, opts: { scheme?: boolean } = {}): string {
  return `${opts.scheme ? OCI_SCHEME : ''}${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** pinned returns the reference naming `digest` (the tag kept for people to read; the digest is what counts). */
export function pinned(ref: ImageReference, digest: string): ImageReference {
  return { ...ref, digest };
}

/** registryHostPort splits a registry into the host to connect to (brackets stripped) and its port (443 unless given). */
export function registryHostPort(registry: string, defaultPort = 443): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(registry);
  const host = (m?.[1] ?? registry).replace(/^\[|\]$/g, '');
  return { host, port: m?.[2] ? Number(m[2]) : defaultPort };
}
