import { join } from 'node:path';

import { BlobError, BlobStore } from '../store/index.js';

import { OciDigestMismatchError, OciTooLargeError } from './errors.js';
import { isDigest } from './reference.js';
import type { Descriptor } from './types.js';

export interface OciCacheOptions {
  /** The data directory; the cache lives in `DATA_DIR/oci/blobs/sha256/<hex>`. */
  dataDir: string;
  /** How long a tag's resolution is reused before the registry is asked again (default 5 s). */
  tagTtlMs?: number;
  /** Largest entry kept (default 256 MiB, the module limit). */
  maxBytes?: number;
}

/** The manifest size past which the garbage collector does not look inside an entry for references. */
const MAX_MANIFEST_SCAN = 4 * 1024 * 1024;

/**
 * OciCache is the content-addressed store of everything pulled from or pushed to registries,
 * manifests and blobs alike, in `DATA_DIR/oci/blobs/sha256/<hex>`: written atomically (temporary file,
 * fsync, rename) only when the bytes have the digest they are stored under, and hashed again when
 * read, so a damaged entry is dropped and fetched again rather than used. One cache serves every
 * consumer (module sources, signatures, policy bundles). Tag resolutions are remembered in memory for
 * a few seconds only: a tag is a moving name, a digest is not.
 */
export class OciCache {
  private readonly store: BlobStore;
  private readonly tags = new Map<string, { desc: Descriptor; at: number }>();
  private readonly tagTtlMs: number;

  constructor(opts: OciCacheOptions) {
    this.store = new BlobStore({ dir: join(opts.dataDir, 'oci', 'blobs'), maxBytes: opts.maxBytes });
    this.tagTtlMs = opts.tagTtlMs ?? 5_000;
  }

  /** root is the cache's directory (`DATA_DIR/oci/blobs`). */
  get root(): string {
    return this.store.root;
  }

  /** pathOf is where an entry lives (diagnostics and tests). */
  pathOf(digest: string): string {
    return this.store.pathOf(hexOf(digest));
  }

  /** has tells whether an entry is present (and refreshes its age for the garbage collector). */
  async has(digest: string): Promise<boolean> {
    return !!(await this.store.has(hexOf(digest)));
  }

  /**
   * get returns an entry's bytes after checking their digest; a missing or damaged entry (removed on
   * the spot) is undefined, so the caller fetches it again. An entry over `maxBytes` is an error.
   */
  async get(digest: string, maxBytes?: number): Promise<Uint8Array | undefined> {
    try {
      return await this.store.get(hexOf(digest), { maxBytes });
    } catch (err) {
      if (err instanceof BlobError && (err.code === 'blob_not_found' || err.code === 'blob_corrupt')) return undefined;
      if (err instanceof BlobError && err.code === 'blob_too_large') throw new OciTooLargeError(`${digest}: ${err.message}`);
      throw err;
    }
  }

  /**
   * put stores bytes, or a stream of them, under `digest`; the bytes are hashed as they are written,
   * and content with another digest (or over `maxBytes`) is refused with nothing kept.
   */
  async put(digest: string, source: Uint8Array | AsyncIterable<Uint8Array>, what: string, maxBytes?: number): Promise<void> {
    const limited = maxBytes === undefined || source instanceof Uint8Array ? source : limit(source, maxBytes, what);
    if (source instanceof Uint8Array && maxBytes !== undefined && source.length > maxBytes) throw new OciTooLargeError(`${what} is ${source.length} bytes; the limit is ${maxBytes}`);
    try {
      await this.store.put(hexOf(digest), limited);
    } catch (err) {
      // A failure of the source (a stalled download, the size limit) reaches us wrapped as an I/O error.
      if (err instanceof BlobError && err.code === 'blob_io' && err.cause instanceof Error && !(err.cause as NodeJS.ErrnoException).syscall) throw err.cause;
      if (err instanceof BlobError && err.code === 'blob_digest_mismatch') throw new OciDigestMismatchError(`${what}: the registry sent content whose digest is not ${digest} (${err.message.replace(/; nothing was stored$/, '')}); nothing was kept: the registry's copy is damaged or was swapped`);
      if (err instanceof BlobError && err.code === 'blob_too_large') throw new OciTooLargeError(`${what} is larger than the limit of ${maxBytes ?? this.store.maxBytes} bytes`);
      throw err;
    }
  }

  /** tag returns a tag's recent resolution, if it is younger than the TTL. */
  tag(key: string, now = Date.now()): Descriptor | undefined {
    const t = this.tags.get(key);
    if (!t) return undefined;
    if (now - t.at > this.tagTtlMs) {
      this.tags.delete(key);
      return undefined;
    }
    return t.desc;
  }

  /** rememberTag keeps a tag's resolution for the TTL. */
  rememberTag(key: string, desc: Descriptor, now = Date.now()): void {
    if (this.tagTtlMs <= 0) return;
    if (this.tags.size > 1024) this.tags.clear();
    this.tags.set(key, { desc, at: now });
  }

  /** forgetTag drops a tag's resolution (after a push moved it). */
  forgetTag(key: string): void {
    this.tags.delete(key);
  }

  /**
   * gc removes every entry not reachable from `keep` (digests still named by stored objects) and not
   * touched for `graceMs`. A kept manifest keeps what it references: its config and layers, the
   * manifests of an index, its subject. The grace period protects pulls in flight, whose objects do
   * not name their digests yet. Returns the removed digests.
   */
  async gc(keep: Iterable<string>, graceMs: number, now = Date.now()): Promise<string[]> {
    const reachable = new Set<string>();
    const queue = [...keep].filter(isDigest);
    while (queue.length) {
      const d = queue.pop()!;
      if (reachable.has(d)) continue;
      reachable.add(d);
      for (const child of await this.references(d)) if (!reachable.has(child)) queue.push(child);
    }
    const removed = await this.store.sweep(new Set([...reachable].map(hexOf)), graceMs, now);
    return removed.map((h) => `sha256:${h}`);
  }

  /** references lists the digests a cached manifest points at (nothing for a blob or a missing entry). */
  private async references(digest: string): Promise<string[]> {
    let bytes: Uint8Array | undefined;
    try {
      bytes = await this.get(digest, MAX_MANIFEST_SCAN);
    } catch {
      return [];
    }
    // Manifests are JSON objects; a Wasm module or tarball is not worth parsing.
    if (!bytes || bytes[0] !== 0x7b) return [];
    try {
      const m = JSON.parse(Buffer.from(bytes).toString('utf8')) as { schemaVersion?: number; config?: Descriptor; layers?: Descriptor[]; manifests?: Descriptor[]; subject?: Descriptor };
      if (m.schemaVersion !== 2) return [];
      return [m.config, ...(m.layers ?? []), ...(m.manifests ?? []), m.subject].map((d) => d?.digest).filter((d): d is string => typeof d === 'string' && isDigest(d));
    } catch {
      return [];
    }
  }
}

function hexOf(digest: string): string {
  return digest.startsWith('sha256:') ? digest.slice(7) : digest;
}

async function* limit(source: AsyncIterable<Uint8Array>, max: number, what: string): AsyncGenerator<Uint8Array> {
  let size = 0;
  for await (const chunk of source) {
    size += chunk.length;
    if (size > max) throw new OciTooLargeError(`${what} is larger than the limit of ${max} bytes`);
    yield chunk;
  }
}
