import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { resolve } from 'node:path';

import { blobRef, MODULE_SOURCE_ANNOTATION, parseModuleRef } from '../api/kinds/index.js';
import { DEFAULT_MAX_BLOB_BYTES } from '../store/index.js';
import { CheckFailedError } from '../util/errors.js';
import { readFully } from '../util/read-fd.js';

import { type ApiClient,ApiRequestError } from './client.js';

/** A local module file read for upload: where it is, how the manifest wrote it, and its bytes' digest. */
export interface LocalModule {
  path: string;
  written: string;
  hex: string;
  bytes: Uint8Array;
}

/**
 * LocalModules reads the module files Functions name on this machine, once per path per apply, so that
 * `skiff apply` can send their bytes instead of a path the server may neither reach nor read.
 */
export class LocalModules {
  private readonly read = new Map<string, LocalModule>();
  private readonly attempted = new Set<string>();

  constructor(private readonly maxBytes = DEFAULT_MAX_BLOB_BYTES) {}

  /**
   * localPathOf tells whether a Function's `spec.module` (as the manifest wrote it) is a file on this
   * machine, and where: a plain path (relative to the manifest's folder) or a file:// URL.
   */
  static localPathOf(module: unknown, baseDir: string): string | undefined {
    if (typeof module !== 'string') return undefined;
    const ref = parseModuleRef(module);
    if (ref.type !== 'host') return undefined;
    return resolve(baseDir, ref.path);
  }

  /** load reads and hashes a module file; a problem is thrown as a message for the person (no file contents). */
  load(path: string, written: string): LocalModule {
    const cached = this.read.get(path);
    if (cached) return { ...cached, written };
    this.attempted.add(path);
    let fd: number;
    try {
      // Non-blocking, so that a FIFO named by mistake is refused instead of hanging the CLI.
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new Error(`spec.module: ${path} does not exist; build it or fix spec.module`);
      throw new Error(`spec.module: cannot read ${path} (${code ?? (err as Error).message})`);
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Error(`spec.module: ${path} is not a regular file`);
      if (st.size > this.maxBytes) throw new Error(`spec.module: ${path} is ${st.size} bytes; the limit is ${this.maxBytes}`);
      const buf = readFully(fd, st.size);
      const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
      const mod = { path, written, hex: createHash('sha256').update(bytes).digest('hex'), bytes };
      this.read.set(path, mod);
      return mod;
    } finally {
      closeSync(fd);
    }
  }

  /** files lists every module file read or tried so far (what `apply --watch` watches besides the manifests). */
  files(): string[] {
    return [...this.attempted];
  }
}

/** useUpload points a Function at its uploaded module and notes, for people, the file it came from. */
export function useUpload(obj: { metadata: { annotations?: Record<string, string> }; spec?: { module?: string } }, mod: LocalModule): void {
  obj.spec = { ...(obj.spec ?? {}), module: blobRef(mod.hex) };
  obj.metadata.annotations = { ...(obj.metadata.annotations ?? {}), [MODULE_SOURCE_ANNOTATION]: mod.written };
}

/**
 * uploadModules makes sure the server holds every module: it asks first (HEAD) and sends the bytes
 * (PUT) only when they are missing, so an unchanged module costs one small request per apply.
 */
export async function uploadModules(client: ApiClient, modules: Iterable<LocalModule>): Promise<{ uploaded: number }> {
  const unique = new Map<string, LocalModule>();
  for (const m of modules) unique.set(m.hex, m);
  let uploaded = 0;
  for (const m of unique.values()) {
    const path = `/blobs/sha256/${m.hex}`;
    const head = await client.raw('HEAD', path);
    await head.arrayBuffer().catch(() => undefined);
    if (head.status === 200) continue;
    if (head.status !== 404) throw await uploadError(head, m);
    const put = await client.raw('PUT', path, m.bytes, { 'content-type': 'application/wasm' });
    if (put.status !== 200 && put.status !== 201) throw await uploadError(put, m);
    await put.arrayBuffer().catch(() => undefined);
    uploaded++;
  }
  return { uploaded };
}

async function uploadError(res: Response, m: LocalModule): Promise<Error> {
  let message = '';
  try {
    const body = (await res.json()) as { kind?: string; message?: string; reason?: string };
    if (body?.kind === 'Status') message = body.message ?? '';
  } catch {
    // HEAD answers carry no body.
  }
  if (res.status === 401) return new ApiRequestError(401, undefined, `uploading ${m.written} was refused: ${message || 'the server wants a bearer token'} (the CLI reads DATA_DIR/token via SKIFF_DATA_DIR, or set SKIFF_TOKEN)`);
  if (res.status === 404) return new CheckFailedError(`uploading ${m.written}: the server does not accept module uploads (PUT /blobs); it may be an older Skiff`);
  return new ApiRequestError(res.status, undefined, `uploading ${m.written} failed (HTTP ${res.status})${message ? `: ${message}` : ''}`);
}
