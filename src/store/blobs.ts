import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle,mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';

import { SkiffError } from '../util/errors.js';

/** The largest blob accepted unless a store is configured otherwise: the module size limit. */
export const DEFAULT_MAX_BLOB_BYTES = 256 * 1024 * 1024;

const HEX = /^[0-9a-f]{64}$/;

/** BlobError is any refusal or failure of the blob store; `code` says which. */
export class BlobError extends SkiffError {
  constructor(code: 'blob_invalid_digest' | 'blob_not_found' | 'blob_corrupt' | 'blob_digest_mismatch' | 'blob_too_large' | 'blob_io', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** One write's outcome: whether the blob is new, and its size. */
export interface BlobPut {
  created: boolean;
  size: number;
}

export interface BlobStoreOptions {
  /** Root of the store (`DATA_DIR/blobs`); blobs live in `sha256/HEX` below it. */
  dir: string;
  /** Largest blob accepted (default: the module limit, 256 MiB). */
  maxBytes?: number;
}

/** isBlobHex tells whether a string is a lowercase sha256 hex digest (the only names the store knows). */
export function isBlobHex(hex: string): boolean {
  return HEX.test(hex);
}

/**
 * BlobStore keeps content-addressed files under `DIR/sha256/HEX`: module bytes uploaded by the CLI (the
 * server's own copy of a local file). A write goes to a temporary file, is hashed as it streams, synced,
 * and renamed into place only when its digest is the one announced, so an acknowledged blob survives a
 * crash and a name never holds other bytes. Reads hash again: a blob damaged on disk is an error (and is
 * removed so that the next upload replaces it), never served.
 */
export class BlobStore {
  readonly maxBytes: number;
  private readonly dir: string;
  private readonly shaDir: string;
  private readonly tmpDir: string;
  private ready?: Promise<void>;

  constructor(opts: BlobStoreOptions) {
    this.dir = opts.dir;
    this.shaDir = join(opts.dir, 'sha256');
    this.tmpDir = join(opts.dir, 'tmp');
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BLOB_BYTES;
  }

  /** open creates the store's folders (once; later calls share the first). */
  open(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(this.shaDir, { recursive: true, mode: 0o700 });
      await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    })();
    return this.ready;
  }

  /** pathOf is where a blob lives (for diagnostics and tests). */
  pathOf(hex: string): string {
    checkHex(hex);
    return join(this.shaDir, hex);
  }

  /**
   * has tells whether a blob is stored, and, when it is, refreshes its age: a client that asks before
   * it applies a Function naming the blob must not lose it to a sweep in between.
   */
  async has(hex: string): Promise<{ size: number } | undefined> {
    const p = this.pathOf(hex);
    try {
      const st = await stat(p);
      if (!st.isFile()) return undefined;
      await touch(p);
      return { size: st.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioError('cannot look up', hex, err);
    }
  }

  /**
   * put stores the bytes of `source` under `hex`. The bytes are hashed while they are written; a
   * different digest is a `blob_digest_mismatch`, more than maxBytes a `blob_too_large`, and in both
   * cases nothing is kept. When the blob already exists it is left as it is (and its age refreshed).
   */
  async put(hex: string, source: AsyncIterable<Uint8Array> | Uint8Array): Promise<BlobPut> {
    checkHex(hex);
    await this.open();
    const tmp = join(this.tmpDir, `${hex}.${process.pid}.${randomBytes(6).toString('hex')}`);
    let fh: FileHandle | undefined;
    let size = 0;
    try {
      fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      const hash = createHash('sha256');
      const chunks = source instanceof Uint8Array ? [source] : source;
      for await (const chunk of chunks) {
        size += chunk.length;
        if (size > this.maxBytes) throw new BlobError('blob_too_large', `the blob is larger than the limit of ${this.maxBytes} bytes`);
        hash.update(chunk);
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      }
      const actual = hash.digest('hex');
      if (actual !== hex) throw new BlobError('blob_digest_mismatch', `the bytes sent have digest sha256:${actual}, not sha256:${hex}; nothing was stored`);
      await fh.sync();
      await fh.close();
      fh = undefined;
      const target = join(this.shaDir, hex);
      if (await this.has(hex)) {
        await rm(tmp, { force: true });
        return { created: false, size };
      }
      await rename(tmp, target);
      await syncDir(this.shaDir);
      return { created: true, size };
    } catch (err) {
      await fh?.close().catch(() => {});
      await rm(tmp, { force: true }).catch(() => {});
      if (err instanceof BlobError) throw err;
      throw ioError('cannot store', hex, err);
    }
  }

  /**
   * get reads a blob and checks that its bytes still have its digest. A missing blob is
   * `blob_not_found`; a damaged one is `blob_corrupt` and is removed, so that the next upload of the
   * same bytes stores them again instead of being told they are present.
   */
  async get(hex: string, opts: { maxBytes?: number } = {}): Promise<Uint8Array> {
    const p = this.pathOf(hex);
    const max = opts.maxBytes ?? this.maxBytes;
    let fh: FileHandle;
    try {
      fh = await open(p, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new BlobError('blob_not_found', `blob sha256:${hex} is not in the store`);
      throw ioError('cannot read', hex, err);
    }
    let bytes: Buffer;
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new BlobError('blob_corrupt', `blob sha256:${hex} is not a regular file`);
      if (st.size > max) throw new BlobError('blob_too_large', `blob sha256:${hex} is ${st.size} bytes; the limit is ${max}`);
      bytes = await fh.readFile();
    } catch (err) {
      if (err instanceof BlobError) throw err;
      throw ioError('cannot read', hex, err);
    } finally {
      await fh.close().catch(() => {});
    }
    if (createHash('sha256').update(bytes).digest('hex') !== hex) {
      await rm(p, { force: true }).catch(() => {});
      throw new BlobError('blob_corrupt', `blob sha256:${hex} is damaged on disk (its bytes no longer have its digest); it was removed: upload it again`);
    }
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  /** list returns every stored blob's digest hex. */
  async list(): Promise<string[]> {
    try {
      return (await readdir(this.shaDir)).filter(isBlobHex);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /**
   * sweep removes blobs that nothing references and that have not been written or asked about for
   * graceMs, and temporary files left by interrupted uploads. Returns the removed digests.
   */
  async sweep(referenced: ReadonlySet<string>, graceMs: number, now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    for (const hex of await this.list()) {
      if (referenced.has(hex)) continue;
      const p = join(this.shaDir, hex);
      try {
        const st = await stat(p);
        if (now - st.mtimeMs < graceMs) continue;
        await rm(p, { force: true });
        removed.push(hex);
      } catch {
        // Removed or replaced meanwhile: the next sweep sees it again.
      }
    }
    let tmps: string[] = [];
    try {
      tmps = await readdir(this.tmpDir);
    } catch {
      // No uploads yet.
    }
    for (const t of tmps) {
      const p = join(this.tmpDir, t);
      try {
        if (now - (await stat(p)).mtimeMs >= graceMs) await rm(p, { force: true });
      } catch {
        // Finished or removed meanwhile.
      }
    }
    if (removed.length) await syncDir(this.shaDir).catch(() => {});
    return removed;
  }

  /** root is the store's directory (for messages). */
  get root(): string {
    return this.dir;
  }
}

function checkHex(hex: string): void {
  if (!isBlobHex(hex)) throw new BlobError('blob_invalid_digest', `"${String(hex).slice(0, 80)}" is not a sha256 digest (64 lowercase hex digits)`);
}

async function touch(p: string): Promise<void> {
  const t = new Date();
  await utimes(p, t, t).catch(() => {});
}

/** syncDir makes a rename in `dir` durable: without it a crash can lose the new name though the data was synced. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function ioError(what: string, hex: string, err: unknown): BlobError {
  return new BlobError('blob_io', `${what} blob sha256:${hex}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
}
