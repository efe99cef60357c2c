import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { ModuleLoadError } from './errors.js';

export interface LoadedModule {
  bytes: Uint8Array;
  digest: string;
}

export interface ModuleSourceOptions {
  /** Relative module paths are resolved against this directory. */
  baseDir: string;
  /** Largest module accepted, in bytes. */
  maxBytes?: number;
  fetchTimeoutMs?: number;
}

/** sha256Digest renders bytes' digest as `sha256:<hex>`. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** isRemote tells whether a module reference is an http(s) URL. */
export function isRemote(ref: string): boolean {
  return /^https?:\/\//i.test(ref);
}

/** localPath resolves a local module reference (plain path or file:// URL). */
export function localPath(ref: string, baseDir: string): string {
  const p = ref.startsWith('file://') ? new URL(ref).pathname : ref;
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/**
 * loadModule reads a module from a path or fetches it from an http(s) URL, bounded in size and time,
 * and checks the expected digest when one is given. Failures are ModuleLoadErrors whose reason ends
 * up in the Function's Ready condition.
 */
export async function loadModule(ref: string, expectedDigest: string | undefined, opts: ModuleSourceOptions): Promise<LoadedModule> {
  const max = opts.maxBytes ?? 256 * 1024 * 1024;
  let bytes: Uint8Array;
  if (isRemote(ref)) {
    bytes = await fetchModule(ref, max, opts.fetchTimeoutMs ?? 30_000);
  } else {
    const path = localPath(ref, opts.baseDir);
    try {
      const st = await stat(path);
      if (!st.isFile()) throw new ModuleLoadError('ModuleNotFound', `module ${ref} is not a file`);
      if (st.size > max) throw new ModuleLoadError('ModuleTooLarge', `module ${ref} is ${st.size} bytes; the limit is ${max}`);
      bytes = new Uint8Array(await readFile(path));
    } catch (err) {
      if (err instanceof ModuleLoadError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new ModuleLoadError('ModuleNotFound', `module file ${path} does not exist; build it or fix spec.module`);
      if (code === 'EACCES') throw new ModuleLoadError('ModuleNotReadable', `module file ${path} is not readable by the Skiff process`);
      throw new ModuleLoadError('ModuleNotReadable', `cannot read module file ${path}: ${(err as Error).message}`, err);
    }
  }
  const digest = sha256Digest(bytes);
  if (expectedDigest && expectedDigest !== digest) {
    throw new ModuleLoadError('DigestMismatch', `module ${ref} has digest ${digest} but spec.digest expects ${expectedDigest}; the module was not loaded`);
  }
  return { bytes, digest };
}

async function fetchModule(url: string, max: number, timeoutMs: number): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (err) {
    throw new ModuleLoadError('FetchFailed', `cannot fetch module ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, err);
  }
  if (!res.ok) throw new ModuleLoadError('FetchFailed', `fetching module ${url} answered HTTP ${res.status}`);
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > max) throw new ModuleLoadError('ModuleTooLarge', `module ${url} is ${declared} bytes; the limit is ${max}`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > max) throw new ModuleLoadError('ModuleTooLarge', `module ${url} is larger than the limit of ${max} bytes`);
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}
