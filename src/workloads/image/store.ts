import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { Logger } from 'pino';

import { type CredentialProvider, DEFAULT_MAX_BLOB_BYTES, formatPlatform, OciError, parseReference, type Platform, type Registry } from '../../oci/index.js';
import type { HostDirs } from '../../security/index.js';
import { WorkloadError } from '../errors.js';
import type { ImageConfig, PreparedImage } from '../types.js';

import { hostPlatform, parseImageConfig, platformMismatch } from './config.js';
import { type ImageSource, LayoutSource, RegistrySource, type ResolvedImage } from './sources.js';
import { LAYER_MEDIA_TYPES } from './streams.js';
import { RootfsBuilder, treeBytes } from './unpack.js';

/** Unpacked bytes of one image at most, unless configured (`maxImageBytes`). */
export const DEFAULT_MAX_IMAGE_BYTES = 2 * 1024 * 1024 * 1024;
/** Compressed bytes of one layer at most, unless configured (`maxLayerBytes`): the OCI client's blob limit. */
export const DEFAULT_MAX_LAYER_BYTES = DEFAULT_MAX_BLOB_BYTES;
/** Tar entries of one image at most, unless configured (`maxEntries`). */
export const DEFAULT_MAX_ENTRIES = 500_000;
/** gc keeps an image prepared this recently even when it is not in the kept set (a Function applied meanwhile). */
export const DEFAULT_GC_GRACE_MS = 10 * 60 * 1000;

/** ImageStoreOptions configures an ImageStore. */
export interface ImageStoreOptions {
  /** The server's data directory; root file systems go to `DATA_DIR/rootfs` (mode 0700). */
  dataDir: string;
  /** The server's OCI client (its cache is shared with every other consumer). */
  registry: Registry;
  /** The operator's `--allow-host-dir` grants: the only places a local image layout may be read from. */
  hostDirs: HostDirs;
  logger?: Logger;
  /** Bytes of regular files one image may unpack to (default 2 GiB). */
  maxImageBytes?: number;
  /** Compressed bytes of one layer (default 256 MiB). */
  maxLayerBytes?: number;
  /** Tar entries of one image, all layers together (default 500,000). */
  maxEntries?: number;
}

/** PrepareOptions are per pull: a Function's pull secrets and the platform to pick out of an index. */
export interface PrepareOptions {
  /** Tried before the server's own credentials (a Function's spec.imagePullSecrets); needs a RegistryClient. */
  credentials?: CredentialProvider;
  /** The platform to pick from an image index (default: this host's, `linux/amd64` here). */
  platform?: Platform;
}

/** What `DATA_DIR/rootfs/sha256-HEX/image.json` records beside the unpacked tree. */
interface StoredImage {
  digest: string;
  config: ImageConfig;
  /** The configuration's os and architecture, checked against the platform asked for on every prepare. */
  os?: string;
  architecture?: string;
  sizeBytes: number;
  layers: string[];
}

interface CredentialedRegistry extends Registry {
  withCredentials(credentials: CredentialProvider): Registry;
}

/**
 * ImageStore turns container images into content-addressed, read-only root file systems:
 * `DATA_DIR/rootfs/sha256-HEX/root`, keyed by the image manifest's digest, unpacked once and shared
 * by every replica and both runtime classes. An image is unpacked into a temporary sibling and renamed
 * into place when complete, so a crash or a failure leaves nothing that looks prepared; concurrent
 * prepares of one image unpack it once. The source is an `oci://` reference (pulled through the OCI
 * client) or the absolute path of a local OCI image layout inside an `--allow-host-dir` grant.
 *
 * @example
 * const images = new ImageStore({ dataDir, registry, hostDirs });
 * const img = await images.prepare('oci://127.0.0.1:5000/app@sha256:...');
 * // img.rootfs is DATA_DIR/rootfs/sha256-<hex>/root; img.config.cmd is the image's Cmd
 */
export class ImageStore {
  private readonly base: string;
  private readonly limits: { maxImageBytes: number; maxLayerBytes: number; maxEntries: number };
  /** Unpacks under way, by manifest digest: a second prepare of the same image waits for the first. */
  private readonly inflight = new Map<string, Promise<StoredImage>>();
  /** Temporary directories of unpacks under way (gc leaves them alone). */
  private readonly tmpInUse = new Set<string>();
  /** When each image was last prepared by this process (gc's grace period). */
  private readonly lastPrepared = new Map<string, number>();

  constructor(private readonly opts: ImageStoreOptions) {
    this.base = join(opts.dataDir, 'rootfs');
    this.limits = {
      maxImageBytes: opts.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES,
      maxLayerBytes: opts.maxLayerBytes ?? DEFAULT_MAX_LAYER_BYTES,
      maxEntries: opts.maxEntries ?? DEFAULT_MAX_ENTRIES,
    };
  }

  /** rootfsDir is where the image with manifest digest `digest` is (or would be) unpacked. */
  rootfsDir(digest: string): string {
    return join(this.base, digest.replace(':', '-'), 'root');
  }

  /**
   * prepare pulls (or reads) an image and unpacks it, unless it is unpacked already. It rejects with a
   * WorkloadError whose reason is the Function's status reason: ImageNotFound, RegistryUnauthorized,
   * DigestMismatch, ImageTooLarge, InvalidImage, LayerEscapesRoot, HostPathNotAllowed, ImagePullFailed
   * or UnpackFailed.
   */
  async prepare(reference: string, opts: PrepareOptions = {}): Promise<PreparedImage> {
    const source = this.source(reference, opts);
    const resolved = await source.resolve();
    const { digest } = resolved;
    let job = this.inflight.get(digest);
    if (!job) {
      job = this.ensure(source, resolved, opts.platform ?? hostPlatform()).finally(() => this.inflight.delete(digest));
      this.inflight.set(digest, job);
    }
    const stored = await job;
    this.lastPrepared.set(digest, Date.now());
    return { digest, reference: resolved.pinned, rootfs: this.rootfsDir(digest), config: structuredClone(stored.config), sizeBytes: stored.sizeBytes };
  }

  /**
   * gc removes unpacked images whose manifest digest is not in `keepDigests`, except those being
   * prepared and those prepared by this process within `graceMs` (default 10 minutes), and removes
   * temporary directories that no unpack under way owns (left by a crash).
   */
  async gc(keepDigests: ReadonlySet<string>, opts: { graceMs?: number } = {}): Promise<{ removed: number; bytes: number }> {
    const grace = opts.graceMs ?? DEFAULT_GC_GRACE_MS;
    let names: string[];
    try {
      names = await readdir(this.base);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { removed: 0, bytes: 0 };
      throw err;
    }
    let removed = 0;
    let bytes = 0;
    const now = Date.now();
    for (const name of names) {
      const path = join(this.base, name);
      if (name.startsWith('.tmp-')) {
        if (!this.tmpInUse.has(path)) await removeTree(path);
        continue;
      }
      const m = /^sha256-([0-9a-f]{64})$/.exec(name);
      if (!m) continue;
      const digest = `sha256:${m[1]}`;
      if (keepDigests.has(digest) || this.inflight.has(digest)) continue;
      if (now - (this.lastPrepared.get(digest) ?? -Infinity) < grace) continue;
      const size = (await this.readStored(digest))?.sizeBytes ?? (await treeBytes(path).catch(() => 0));
      await removeTree(path);
      this.lastPrepared.delete(digest);
      removed++;
      bytes += size;
      this.opts.logger?.info({ digest, bytes: size }, 'unpacked image removed');
    }
    return { removed, bytes };
  }

  private source(reference: string, opts: PrepareOptions): ImageSource {
    const platform = opts.platform ?? hostPlatform();
    if (typeof reference !== 'string' || !reference) throw new WorkloadError('InvalidImage', 'spec.image is empty; name an oci:// reference or the absolute path of an OCI image layout directory');
    if (reference.startsWith('/')) {
      if (opts.credentials) this.opts.logger?.debug({ reference }, 'pull secrets ignored for a local image layout');
      return new LayoutSource(this.opts.hostDirs, reference, platform);
    }
    if (reference.startsWith('.') || reference.startsWith('~')) {
      throw new WorkloadError('InvalidImage', `spec.image "${reference}" is a relative path; a local OCI image layout is named by its absolute path`);
    }
    let ref;
    try {
      ref = parseReference(reference, { defaultTag: 'latest' });
    } catch (err) {
      if (err instanceof OciError) throw new WorkloadError('InvalidImage', `spec.image: ${err.message}; or name the absolute path of an OCI image layout directory`, err);
      throw err;
    }
    let registry = this.opts.registry;
    if (opts.credentials) {
      if (!hasCredentials(registry)) throw new WorkloadError('ImagePullFailed', `image ${reference}: this server's registry client cannot use pull secrets`);
      registry = registry.withCredentials(opts.credentials);
    }
    return new RegistrySource(registry, ref, platform);
  }

  private async ensure(source: ImageSource, resolved: ResolvedImage, platform: Platform): Promise<StoredImage> {
    const existing = await this.readStored(resolved.digest);
    if (existing) {
      this.checkPlatform(existing, platform, source.display);
      return existing;
    }
    const dir = join(this.base, resolved.digest.replace(':', '-'));
    // Only a rename puts a directory here, after its image.json: one without it was damaged by hand.
    await removeTree(dir);
    return this.unpack(source, resolved, platform);
  }

  private async unpack(source: ImageSource, resolved: ResolvedImage, platform: Platform): Promise<StoredImage> {
    const { digest, manifest } = resolved;
    const started = Date.now();
    const display = source.display;
    const parsed = parseImageConfig(await source.readConfig(manifest.config), `image ${display}`);
    this.checkPlatform(parsed, platform, display);
    if (parsed.diffIds && parsed.diffIds.length !== manifest.layers.length) {
      throw new WorkloadError('InvalidImage', `image ${display}: its configuration lists ${parsed.diffIds.length} layers (rootfs.diff_ids) but its manifest ${manifest.layers.length}`);
    }
    manifest.layers.forEach((l, i) => {
      if (!LAYER_MEDIA_TYPES.has(l.mediaType)) throw new WorkloadError('InvalidImage', `image ${display}: layer ${i + 1} (${l.digest}) has media type ${l.mediaType}, which is not a tar, tar+gzip or tar+zstd image layer`);
      if (l.size > this.limits.maxLayerBytes) throw new WorkloadError('ImageTooLarge', `image ${display}: layer ${i + 1} (${l.digest}) is ${l.size} bytes compressed; the layer limit is ${this.limits.maxLayerBytes}`);
    });
    await mkdir(this.base, { recursive: true, mode: 0o700 });
    await chmod(this.base, 0o700);
    const hex = digest.slice('sha256:'.length);
    const tmp = await mkdtemp(join(this.base, `.tmp-sha256-${hex.slice(0, 16)}-`));
    this.tmpInUse.add(tmp);
    try {
      const root = join(tmp, 'root');
      await mkdir(root, { mode: 0o755 });
      const builder = new RootfsBuilder(root, display, this.limits, this.opts.logger);
      for (const [i, layer] of manifest.layers.entries()) {
        const data = await source.openLayer(layer, this.limits.maxLayerBytes);
        await builder.applyLayer(data, { index: i, digest: layer.digest, ...(parsed.diffIds ? { diffId: parsed.diffIds[i] } : {}) });
      }
      const sizeBytes = await builder.finish();
      const stored: StoredImage = { digest, config: parsed.config, os: parsed.os, architecture: parsed.architecture, sizeBytes, layers: manifest.layers.map((l) => l.digest) };
      await writeFile(join(tmp, 'image.json'), JSON.stringify(stored), { mode: 0o600 });
      const final = join(this.base, `sha256-${hex}`);
      try {
        await rename(tmp, final);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Another process sharing the data directory finished the same image first: keep its copy.
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        await removeTree(tmp);
        const theirs = await this.readStored(digest);
        if (!theirs) throw err;
        return theirs;
      }
      this.opts.logger?.info({ image: display, digest, layers: manifest.layers.length, bytes: sizeBytes, ms: Date.now() - started }, 'image unpacked');
      return stored;
    } catch (err) {
      await removeTree(tmp).catch((e: unknown) => this.opts.logger?.warn({ err: e, dir: tmp }, 'temporary image directory not removed'));
      if (err instanceof WorkloadError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new WorkloadError('UnpackFailed', `image ${display} cannot be unpacked into ${this.base}: ${code ?? (err as Error).message}`, err);
    } finally {
      this.tmpInUse.delete(tmp);
    }
  }

  private checkPlatform(image: { os?: string; architecture?: string }, platform: Platform, display: string): void {
    const mismatch = platformMismatch(image, platform);
    if (mismatch) throw new WorkloadError('InvalidImage', `image ${display} cannot run as ${formatPlatform(platform)}: ${mismatch}`);
  }

  /** readStored reads what an earlier unpack recorded, or undefined when the image is not (completely) there. */
  private async readStored(digest: string): Promise<StoredImage | undefined> {
    try {
      const doc = JSON.parse(await readFile(join(this.base, digest.replace(':', '-'), 'image.json'), 'utf8')) as StoredImage;
      return doc.digest === digest ? doc : undefined;
    } catch {
      return undefined;
    }
  }
}

function hasCredentials(r: Registry): r is CredentialedRegistry {
  return typeof (r as Partial<CredentialedRegistry>).withCredentials === 'function';
}

/** removeTree deletes a directory tree, making directories writable first when the owner lost that right. */
async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
    await makeWritable(path);
    await rm(path, { recursive: true, force: true });
  }
}

async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o700).catch(() => {});
  for (const d of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (d.isDirectory()) await makeWritable(join(dir, d.name));
  }
}
