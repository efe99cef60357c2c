import { close, createReadStream, fstat, read } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';

import { type Descriptor, formatReference, type ImageIndex, type ImageManifest, type ImageReference, isIndex, MediaTypes, OciError, parseManifest, type Platform, type Registry, selectPlatform, sha256Of } from '../../oci/index.js';
import { type HostDirs, HostPathError } from '../../security/index.js';
import { WorkloadError } from '../errors.js';

import { DigestCheck } from './streams.js';
import type { LayerData } from './unpack.js';

const fstatAsync = promisify(fstat);
const readAsync = promisify(read);
const closeAsync = promisify(close);

/** The largest manifest, index or configuration read (the distribution spec's manifest limit). */
export const MAX_METADATA_BYTES = 4 * 1024 * 1024;

/** ResolvedImage is an image manifest picked for the platform, with the digest that names the root file system. */
export interface ResolvedImage {
  digest: string;
  manifest: ImageManifest;
  /** PreparedImage.reference: the oci:// reference pinned by digest, or the layout directory. */
  pinned: string;
}

/** ImageSource is where an image's manifest, configuration and layers come from: a registry or a local layout. */
export interface ImageSource {
  /** How messages name the image. */
  readonly display: string;
  resolve(): Promise<ResolvedImage>;
  readConfig(desc: Descriptor): Promise<Uint8Array>;
  /** openLayer returns the layer's bytes as a stream; what is returned is (or will be, by its `verify`) checked against the digest. */
  openLayer(desc: Descriptor, maxBytes: number): Promise<LayerData>;
}

const IMAGE_MANIFEST_TYPES = new Set<string>([MediaTypes.ociManifest, MediaTypes.dockerManifest]);

/** The Ready reason each registry failure becomes. */
const OCI_REASONS: Record<string, string> = {
  oci_not_found: 'ImageNotFound',
  oci_unauthorized: 'RegistryUnauthorized',
  oci_denied: 'RegistryUnauthorized',
  oci_credentials_invalid: 'RegistryUnauthorized',
  oci_digest_mismatch: 'DigestMismatch',
  oci_too_large: 'ImageTooLarge',
  oci_manifest_invalid: 'InvalidImage',
  oci_platform_not_found: 'InvalidImage',
  oci_artifact_unsupported: 'InvalidImage',
  oci_reference_invalid: 'InvalidImage',
};

/** ociFailure turns an OCI client error into a WorkloadError naming the image (other errors pass unchanged). */
export function ociFailure(err: unknown, display: string): unknown {
  if (!(err instanceof OciError)) return err;
  return new WorkloadError(OCI_REASONS[err.code] ?? 'ImagePullFailed', `image ${display}: ${err.message}`, err);
}

/** checkImageManifest refuses an index nested too deep and an artifact that is not a container image. */
function checkImageManifest(mediaType: string, manifest: ImageManifest | ImageIndex, display: string): ImageManifest {
  if (isIndex(manifest)) throw new WorkloadError('InvalidImage', `image ${display}: the index for the platform leads to another index; nested indexes deeper than two levels are not followed`);
  if (!IMAGE_MANIFEST_TYPES.has(mediaType)) throw new WorkloadError('InvalidImage', `image ${display}: the manifest has media type ${mediaType}, not an OCI or Docker image manifest`);
  const ct = manifest.config.mediaType;
  if (ct !== MediaTypes.ociConfig && ct !== MediaTypes.dockerConfig) {
    throw new WorkloadError('InvalidImage', `image ${display} is not a container image: its configuration has media type ${ct}${manifest.artifactType ? ` (artifact ${manifest.artifactType})` : ''}; a Wasm module goes in spec.module with runtimeClassName wasm`);
  }
  return manifest;
}

/** RegistrySource pulls through the OCI client, which verifies every digest and keeps blobs in the shared cache. */
export class RegistrySource implements ImageSource {
  readonly display: string;

  constructor(
    private readonly registry: Registry,
    private readonly ref: ImageReference,
    private readonly platform: Platform,
  ) {
    this.display = formatReference(ref, { scheme: true });
  }

  async resolve(): Promise<ResolvedImage> {
    try {
      const fetched = await this.registry.getManifest(this.ref, { platform: this.platform });
      const manifest = checkImageManifest(fetched.mediaType, fetched.manifest, this.display);
      return { digest: fetched.digest, manifest, pinned: formatReference({ ...this.ref, digest: fetched.digest }, { scheme: true }) };
    } catch (err) {
      throw ociFailure(err, this.display);
    }
  }

  async readConfig(desc: Descriptor): Promise<Uint8Array> {
    try {
      return await this.registry.getBlob(this.ref, desc.digest, { maxBytes: MAX_METADATA_BYTES });
    } catch (err) {
      throw ociFailure(err, this.display);
    }
  }

  async openLayer(desc: Descriptor, maxBytes: number): Promise<LayerData> {
    let bytes: Uint8Array;
    try {
      bytes = await this.registry.getBlob(this.ref, desc.digest, { maxBytes });
    } catch (err) {
      throw ociFailure(err, this.display);
    }
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    const slices = function* (): Generator<Buffer> {
      for (let i = 0; i < buf.length; i += 1024 * 1024) yield buf.subarray(i, i + 1024 * 1024);
    };
    return { head: buf.subarray(0, 4), stream: Readable.from(slices(), { objectMode: false }) };
  }
}

/**
 * LayoutSource reads a local OCI image layout directory (`oci-layout`, `index.json`,
 * `blobs/sha256/HEX`) inside the operator's `--allow-host-dir` grants: every file is opened through
 * HostDirs (so no symbolic link leads out of the grant and no FIFO blocks), and every blob is checked
 * against its descriptor's digest and size.
 */
export class LayoutSource implements ImageSource {
  readonly display: string;
  private readonly dir: string;

  constructor(
    private readonly hostDirs: HostDirs,
    dir: string,
    private readonly platform: Platform,
  ) {
    this.dir = resolve(dir);
    this.display = this.dir;
  }

  async resolve(): Promise<ResolvedImage> {
    if (!this.hostDirs.contains(this.dir)) {
      throw new WorkloadError('HostPathNotAllowed', `image ${this.hostDirs.refusal(this.dir, 'spec.image')}; the layout was not read`);
    }
    const marker = this.readFile(join(this.dir, 'oci-layout'), 4096, 'its oci-layout file');
    let version: unknown;
    try {
      version = (JSON.parse(marker.toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch {
      version = undefined;
    }
    if (typeof version !== 'string') throw new WorkloadError('InvalidImage', `image ${this.display}: the oci-layout file has no imageLayoutVersion; this is not an OCI image layout`);
    let doc: ImageManifest | ImageIndex = this.parse(this.readFile(join(this.dir, 'index.json'), MAX_METADATA_BYTES, 'its index.json'), 'index.json').manifest;
    if (!isIndex(doc)) throw new WorkloadError('InvalidImage', `image ${this.display}: index.json is not an image index`);
    let desc: Descriptor | undefined;
    for (let depth = 0; isIndex(doc) && depth < 3; depth++) {
      desc = this.pick(doc);
      const parsed = this.parse(this.readBlob(desc, MAX_METADATA_BYTES), desc.digest, desc.mediaType);
      doc = parsed.manifest;
      if (!isIndex(doc)) {
        const manifest = checkImageManifest(parsed.mediaType, doc, this.display);
        return { digest: desc.digest, manifest, pinned: this.dir };
      }
    }
    throw new WorkloadError('InvalidImage', `image ${this.display}: index.json leads through more than two nested indexes`);
  }

  async readConfig(desc: Descriptor): Promise<Uint8Array> {
    return this.readBlob(desc, MAX_METADATA_BYTES);
  }

  async openLayer(desc: Descriptor, maxBytes: number): Promise<LayerData> {
    const path = this.blobPath(desc.digest);
    const what = `layer ${desc.digest} of image ${this.display}`;
    let fd: number;
    try {
      fd = this.hostDirs.openFile(path, 'spec.image');
    } catch (err) {
      throw this.hostFailure(err, `${what} (blobs/sha256/${desc.digest.slice(7)})`);
    }
    try {
      const size = (await fstatAsync(fd)).size;
      if (size !== desc.size) throw new WorkloadError('DigestMismatch', `${what} is ${size} bytes on disk but its descriptor says ${desc.size}; the layout is damaged`);
      if (size > maxBytes) throw new WorkloadError('ImageTooLarge', `${what} is ${size} bytes compressed; the layer limit is ${maxBytes}`);
      const head = Buffer.alloc(4);
      const { bytesRead: n } = await readAsync(fd, head, 0, 4, 0);
      const verify = new DigestCheck(desc.digest, desc.size, (actual) => new WorkloadError('DigestMismatch', `${what}: the file blobs/sha256/${desc.digest.slice(7)} has digest ${actual}; the layout is damaged or was altered, and nothing of it was used`));
      return { head: head.subarray(0, n), stream: createReadStream('', { fd, start: 0, autoClose: true }), verify };
    } catch (err) {
      await closeAsync(fd).catch(() => {});
      throw err;
    }
  }

  private pick(index: ImageIndex): Descriptor {
    if (index.manifests.length === 1) return index.manifests[0]!;
    if (!index.manifests.length) throw new WorkloadError('InvalidImage', `image ${this.display}: index.json lists no manifests`);
    try {
      return selectPlatform(index, this.platform, this.display);
    } catch (err) {
      throw ociFailure(err, this.display);
    }
  }

  private parse(bytes: Uint8Array, what: string, mediaType?: string): ReturnType<typeof parseManifest> {
    try {
      return parseManifest(bytes, mediaType, `${this.display} (${what})`);
    } catch (err) {
      throw ociFailure(err, this.display);
    }
  }

  private blobPath(digest: string): string {
    // Descriptors were checked by parseManifest: sha256 and 64 hex digits, nothing that climbs.
    return join(this.dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  }

  private readBlob(desc: Descriptor, max: number): Uint8Array {
    const bytes = this.readFile(this.blobPath(desc.digest), max, `blob ${desc.digest}`);
    const actual = sha256Of(bytes);
    if (actual !== desc.digest || bytes.length !== desc.size) {
      throw new WorkloadError('DigestMismatch', `image ${this.display}: blob ${desc.digest} has digest ${actual} and ${bytes.length} bytes (its descriptor says ${desc.size}); the layout is damaged or was altered`);
    }
    return bytes;
  }

  private readFile(path: string, max: number, what: string): Buffer {
    try {
      return this.hostDirs.readFile(path, { maxBytes: max, field: 'spec.image' });
    } catch (err) {
      throw this.hostFailure(err, `${what}`);
    }
  }

  private hostFailure(err: unknown, what: string): unknown {
    if (!(err instanceof HostPathError)) return err;
    switch (err.code) {
      case 'host_path_outside':
        return new WorkloadError('HostPathNotAllowed', `image ${this.display}: ${what} leads outside the directories the operator allowed (--allow-host-dir): ${err.message}`, err);
      case 'host_path_not_found':
        return new WorkloadError('InvalidImage', `image ${this.display}: ${what} is missing; this is not a complete OCI image layout`, err);
      case 'host_path_too_large':
        return new WorkloadError('ImageTooLarge', `image ${this.display}: ${what} is too large: ${err.message}`, err);
      default:
        return new WorkloadError('InvalidImage', `image ${this.display}: ${what} cannot be read: ${err.message}`, err);
    }
  }
}
