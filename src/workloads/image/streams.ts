import { createHash, type Hash } from 'node:crypto';
import { Duplex, Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';

import { Decompress } from 'fzstd';

import { WorkloadError } from '../errors.js';

/** The layer media types an image may use (OCI image spec 1.1 and Docker's image manifest v2.2). */
export const LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

/** Compression of a layer, told by its first bytes. */
export type Compression = 'gzip' | 'zstd' | 'none';

/**
 * sniffCompression reads a layer's magic number. The bytes decide, not the media type: registries and
 * builders have mislabelled layers (a plain tar as tar.gzip), and the decompressor fails clearly on a
 * stream that is not what its magic says.
 */
export function sniffCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** Counter passes bytes through and calls `check` with the running total, which may throw to stop the stream. */
export class Counter extends Transform {
  bytes = 0;
  constructor(private readonly check: (total: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    try {
      this.check(this.bytes);
    } catch (err) {
      return cb(err as Error);
    }
    cb(null, chunk);
  }
}

/**
 * DigestCheck passes bytes through while hashing them; at the end the digest and the size must be the
 * ones expected, else the stream fails with `mismatch()`'s error (after everything passed through, so
 * whatever was unpacked from it stays in the temporary directory that the failure discards).
 */
export class DigestCheck extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private size = 0;

  constructor(
    private readonly expected: string,
    private readonly expectedSize: number | undefined,
    private readonly mismatch: (actual: string, size: number) => Error,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const actual = `sha256:${this.hash.digest('hex')}`;
    if (actual !== this.expected || (this.expectedSize !== undefined && this.size !== this.expectedSize)) return cb(this.mismatch(actual, this.size));
    cb();
  }
}

// fzstd decodes whole blocks synchronously and does not wait for the reader: a few bytes of
// run-length blocks can stand for many MiB. Fed in small slices, with the output handed on before the
// next slice, one step produces a few MiB at most and the stream's backpressure holds.
const ZSTD_SLICE = 128;

/** zstdStage is a streaming Zstandard decompressor over fzstd (Node 20's zlib has no zstd). */
function zstdStage(): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    let out: Buffer[] = [];
    // Copied: the decoder's blocks may be views into its reused window.
    const z = new Decompress((data) => {
      if (data.length) out.push(Buffer.from(data));
    });
    for await (const chunk of source) {
      for (let i = 0; i < chunk.length; i += ZSTD_SLICE) {
        z.push(chunk.subarray(i, i + ZSTD_SLICE), false);
        if (out.length) {
          const ready = out;
          out = [];
          yield* ready;
        }
      }
    }
    z.push(new Uint8Array(0), true);
    yield* out;
  });
}

/** decompressor returns the stage that undoes `c` (none for an uncompressed tar). */
export function decompressor(c: Compression): Duplex | undefined {
  if (c === 'gzip') return createGunzip();
  if (c === 'zstd') return zstdStage();
  return undefined;
}

/**
 * describeStreamError turns a decompressor's or the tar parser's error into what a person reads in the
 * Function's status (a WorkloadError passes unchanged).
 */
export function describeStreamError(err: unknown, c: Compression, where: string): WorkloadError {
  if (err instanceof WorkloadError) return err;
  const msg = (err as Error)?.message ?? String(err);
  const code = (err as NodeJS.ErrnoException)?.code;
  if (c === 'gzip' && (typeof code === 'string' && code.startsWith('Z_'))) {
    return new WorkloadError('InvalidImage', `${where} is not a valid gzip stream (${msg}): the layer is truncated or damaged; push the image again`, err);
  }
  if (c === 'zstd' && typeof code === 'number') {
    return new WorkloadError('InvalidImage', `${where} is not a valid zstd stream (${msg}): the layer is truncated or damaged; push the image again`, err);
  }
  if (/tar|end of data|header/i.test(msg)) {
    return new WorkloadError('InvalidImage', `${where} is not a valid tar archive (${msg})`, err);
  }
  return new WorkloadError('InvalidImage', `${where} cannot be read (${code ?? msg})`, err);
}
