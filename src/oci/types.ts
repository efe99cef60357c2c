/**
 * The shapes the OCI distribution client speaks in (OCI image and distribution specs 1.1; Docker v2
 * schema 2 manifests are read into the same shapes). Everything that stores or fetches artifacts
 * (module sources, signatures, policy bundles, runtime-class images) codes against `Registry`, so a
 * consumer never sees HTTP, auth or caching.
 */

/** A parsed `HOST[:PORT]/REPO[:TAG][@sha256:HEX]` reference; `oci://` prefixes are stripped by the parser. */
export interface ImageReference {
  /** registry host with its port, as written (`127.0.0.1:5000`, `ghcr.io`) */
  registry: string;
  /** repository path (`team/app`) */
  repository: string;
  tag?: string;
  /** `sha256:<64 hex>` */
  digest?: string;
}

/** Platform as an image index entry states it. */
export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

/** Descriptor points at content by digest. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
  /** base64 of the content, when embedded */
  data?: string;
}

/** ImageManifest is an OCI image manifest (or a Docker v2 schema 2 manifest). */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** ImageIndex is an OCI image index (or a Docker manifest list). */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** FetchedManifest is a manifest as pulled: the exact bytes (whose digest is `digest`) and their parse. */
export interface FetchedManifest {
  digest: string;
  mediaType: string;
  bytes: Uint8Array;
  manifest: ImageManifest | ImageIndex;
}

/**
 * Registry is one client's view of OCI registries. Every method verifies what it reads against the
 * digest it asked for or was told, and fails with a coded error naming the reference.
 */
export interface Registry {
  /** resolve finds what a tag (or digest) names now, without downloading it (HEAD, GET as a fallback). */
  /** `fresh` asks the registry even when the tag's resolution is remembered (decisions about what a tag names now). */
  resolve(ref: ImageReference, opts?: { fresh?: boolean }): Promise<Descriptor>;
  /** getManifest pulls a manifest or index by tag or digest; `platform` picks an image out of an index. */
  getManifest(ref: ImageReference, opts?: { platform?: Platform; accept?: string[] }): Promise<FetchedManifest>;
  /** getBlob pulls a blob of `ref.repository` by digest, through the local content-addressed cache. */
  getBlob(ref: ImageReference, digest: string, opts?: { maxBytes?: number }): Promise<Uint8Array>;
  /** putBlob uploads bytes to `ref.repository` unless the registry has them already. */
  putBlob(ref: ImageReference, bytes: Uint8Array, mediaType: string): Promise<Descriptor>;
  /** putManifest uploads a manifest under `ref.tag` (or by its digest); returns the manifest's descriptor. */
  putManifest(ref: ImageReference, bytes: Uint8Array, mediaType: string): Promise<Descriptor>;
  /** referrers lists manifests whose `subject` is `digest` (referrers API, or the `sha256-HEX` tag-schema fallback). */
  referrers(ref: ImageReference, digest: string, opts?: { artifactType?: string }): Promise<Descriptor[]>;
  /** listTags lists a repository's tags. */
  listTags(ref: ImageReference): Promise<string[]>;
}
