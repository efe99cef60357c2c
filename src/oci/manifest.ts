import { createHash } from 'node:crypto';

import { OciManifestError, OciPlatformError } from './errors.js';
import { isDigest } from './reference.js';
import type { Descriptor, ImageIndex, ImageManifest, Platform } from './types.js';

/** Media types of the manifests the client reads and writes. */
export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

/** Every manifest media type, as the `Accept` header of a manifest request lists them. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [MediaTypes.ociManifest, MediaTypes.ociIndex, MediaTypes.dockerManifest, MediaTypes.dockerManifestList];

const INDEX_TYPES = new Set<string>([MediaTypes.ociIndex, MediaTypes.dockerManifestList]);

/** sha256Of renders bytes' digest as `sha256:<hex>`. */
export function sha256Of(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** isIndex tells whether a parsed manifest is an image index (or Docker manifest list). */
export function isIndex(m: ImageManifest | ImageIndex): m is ImageIndex {
  return Array.isArray((m as ImageIndex).manifests);
}

/** isIndexMediaType tells whether a media type is an image index or manifest list. */
export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

/**
 * parseManifest reads manifest bytes: JSON with `schemaVersion: 2`, either an image manifest (config
 * and layers) or an index (manifests). The media type comes from the document, else from the
 * `Content-Type` the registry sent, else from the document's shape. Every descriptor is checked
 * (digest form, non-negative size), so nothing downstream trusts a malformed one.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined, where: string): { mediaType: string; manifest: ImageManifest | ImageIndex } {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch (err) {
    throw new OciManifestError(`the manifest of ${where} is not JSON`, { cause: err });
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new OciManifestError(`the manifest of ${where} is not a JSON object`);
  const m = doc as Record<string, unknown>;
  if (m.schemaVersion !== 2) throw new OciManifestError(`the manifest of ${where} has schemaVersion ${JSON.stringify(m.schemaVersion)}; only schema 2 (OCI and Docker v2.2) is supported`);
  const declared = typeof m.mediaType === 'string' ? m.mediaType : undefined;
  const sent = contentType?.split(';')[0]?.trim();
  const shapeIsIndex = Array.isArray(m.manifests);
  const mediaType = declared ?? (sent && MANIFEST_MEDIA_TYPES.includes(sent) ? sent : shapeIsIndex ? MediaTypes.ociIndex : MediaTypes.ociManifest);
  if (!MANIFEST_MEDIA_TYPES.includes(mediaType)) throw new OciManifestError(`the manifest of ${where} has media type ${mediaType}, which is not an OCI or Docker schema 2 manifest or index`);
  if (isIndexMediaType(mediaType) !== shapeIsIndex) throw new OciManifestError(`the manifest of ${where} says it is ${mediaType} but ${shapeIsIndex ? 'lists manifests' : 'has no manifests list'}`);
  if (shapeIsIndex) {
    (m.manifests as unknown[]).forEach((d, i) => checkDescriptor(d, `${where}: manifests[${i}]`));
  } else {
    checkDescriptor(m.config, `${where}: config`);
    if (!Array.isArray(m.layers)) throw new OciManifestError(`the manifest of ${where} has no layers list`);
    m.layers.forEach((d, i) => checkDescriptor(d, `${where}: layers[${i}]`));
  }
  if (m.subject !== undefined) checkDescriptor(m.subject, `${where}: subject`);
  return { mediaType, manifest: doc as ImageManifest | ImageIndex };
}

function checkDescriptor(d: unknown, where: string): asserts d is Descriptor {
  if (!d || typeof d !== 'object') throw new OciManifestError(`${where} is not a descriptor object`);
  const x = d as Record<string, unknown>;
  if (typeof x.mediaType !== 'string' || !x.mediaType) throw new OciManifestError(`${where} has no mediaType`);
  if (typeof x.digest !== 'string' || !isDigest(x.digest)) throw new OciManifestError(`${where} has digest ${JSON.stringify(x.digest)}; only sha256:<64 hex> digests are supported`);
  if (typeof x.size !== 'number' || !Number.isSafeInteger(x.size) || x.size < 0) throw new OciManifestError(`${where} has an invalid size ${JSON.stringify(x.size)}`);
}

/**
 * selectPlatform picks the entry of an index that matches `want`: os and architecture must be equal,
 * and variant too when asked for (an entry without a variant matches any). Attestation entries
 * (`unknown/unknown`, as BuildKit writes them) never match.
 */
export function selectPlatform(index: ImageIndex, want: Platform, where: string): Descriptor {
  const candidates = index.manifests.filter((d) => {
    const p = d.platform;
    if (!p || p.os !== want.os || p.architecture !== want.architecture) return false;
    if (want.variant && p.variant && p.variant !== want.variant) return false;
    if (want['os.version'] && p['os.version'] && p['os.version'] !== want['os.version']) return false;
    return true;
  });
  // An exact variant match wins over an entry that states none.
  const exact = candidates.find((d) => (want.variant ? d.platform?.variant === want.variant : true));
  const pick = exact ?? candidates[0];
  if (!pick) {
    const offered = index.manifests.map((d) => (d.platform ? formatPlatform(d.platform) : '(no platform)')).join(', ') || 'nothing';
    throw new OciPlatformError(`${where} is an image index with no image for ${formatPlatform(want)}; it offers ${offered}`);
  }
  return pick;
}

/** formatPlatform renders `os/arch[/variant]`. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** parsePlatform reads `os/arch[/variant]` (`linux/arm64/v8`, `wasip1/wasm`). */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !p)) throw new OciManifestError(`"${text}" is not a platform; expected OS/ARCH[/VARIANT] such as linux/amd64`);
  return { os: parts[0]!, architecture: parts[1]!, ...(parts[2] ? { variant: parts[2] } : {}) };
}

/** descriptorOf describes bytes: their media type, digest and size (and artifact type when the manifest has one). */
export function descriptorOf(bytes: Uint8Array, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType, digest: sha256Of(bytes), size: bytes.length, ...extra };
}

/** encodeJson renders a manifest or config as the exact bytes to push (compact JSON, UTF-8). */
export function encodeJson(value: unknown): Uint8Array {
  return new Uint8Array(Buffer.from(JSON.stringify(value), 'utf8'));
}
