import { promisify } from 'node:util';
import { gunzip, gzipSync } from 'node:zlib';

import tar from 'tar-stream';

import { BundleError } from './errors.js';

const gunzipAsync = promisify(gunzip);

/** BundleLimits bound what reading one bundle may cost. */
export interface BundleLimits {
  /** the gzipped bundle as downloaded (default 16 MiB) */
  maxBytes: number;
  /** the tar stream once decompressed, headers included (default 64 MiB): a gzip bomb stops here */
  maxUncompressedBytes: number;
  /** one file in the bundle (default 16 MiB) */
  maxFileBytes: number;
  /** entries in the bundle, directories included (default 10,000) */
  maxFiles: number;
}

export const DEFAULT_BUNDLE_LIMITS: Readonly<BundleLimits> = Object.freeze({
  maxBytes: 16 * 1024 * 1024,
  maxUncompressedBytes: 64 * 1024 * 1024,
  maxFileBytes: 16 * 1024 * 1024,
  maxFiles: 10_000,
});

/** BundleEntry is one regular file of a bundle, named by its path from the bundle root (no leading slash). */
export interface BundleEntry {
  path: string;
  bytes: Uint8Array;
}

/**
 * entryPath turns a tar entry name into a path from the bundle root, or says why it is unsafe. A leading
 * `/` or `./` names the bundle root: `opa build` writes `/data.json`, `tar -C dir .` writes `./data.json`.
 * Nothing is ever written to disk from a bundle, but a name that climbs out (`..`), a Windows drive or
 * backslash path, an empty or `.` segment, or a NUL is refused so that no two names mean one file and
 * no consumer that does extract it can be led outside.
 */
export function entryPath(name: string): { path: string } | { why: string } {
  if (name.includes('\0')) return { why: 'the name contains a NUL byte' };
  if (name.includes('\\')) return { why: 'the name contains a backslash' };
  let p = name;
  if (p.startsWith('./')) p = p.slice(2);
  else if (p.startsWith('/')) p = p.slice(1);
  if (p.endsWith('/')) p = p.slice(0, -1);
  if (!p) return { path: '' };
  const segs = p.split('/');
  if (/^[A-Za-z]:$/.test(segs[0]!)) return { why: 'the name starts with a drive letter' };
  for (const s of segs) {
    if (s === '..') return { why: 'the name climbs out of the bundle (..)' };
    if (s === '' || s === '.') return { why: 'the name has an empty or "." segment' };
  }
  return { path: p };
}

/**
 * readArchive unpacks a gzipped tarball in memory within `limits`: only regular files and directories
 * are accepted (symbolic and hard links, devices and FIFOs are refused, as OPA only loads regular
 * files and a link in a bundle is either a mistake or an attack), every name must pass `entryPath`,
 * and a name may appear once.
 */
export async function readArchive(bytes: Uint8Array, bundle: string, limits: BundleLimits = DEFAULT_BUNDLE_LIMITS): Promise<BundleEntry[]> {
  if (bytes.length > limits.maxBytes) throw new BundleError('bundle_too_large', bundle, undefined, `the bundle is ${bytes.length} bytes; the limit is ${limits.maxBytes}`);
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) throw new BundleError('bundle_corrupt', bundle, undefined, 'the bundle is not gzip-compressed: a bundle is a .tar.gz as opa build writes it');
  let raw: Buffer;
  try {
    raw = await gunzipAsync(bytes, { maxOutputLength: limits.maxUncompressedBytes });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw new BundleError('bundle_too_large', bundle, undefined, `the bundle decompresses to more than ${limits.maxUncompressedBytes} bytes (a gzip bomb, or raise the limit)`, { cause: err });
    }
    throw new BundleError('bundle_corrupt', bundle, undefined, `the gzip stream is damaged (${(err as Error).message})`, { cause: err });
  }
  const extract = tar.extract();
  const out: BundleEntry[] = [];
  const seen = new Set<string>();
  let count = 0;
  const done = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      if (++count > limits.maxFiles) throw new BundleError('bundle_too_large', bundle, undefined, `the bundle has more than ${limits.maxFiles} entries`);
      const p = entryPath(h.name);
      if ('why' in p) throw new BundleError('bundle_unsafe_entry', bundle, h.name, `${p.why}; the bundle was refused`);
      if (h.type === 'directory') {
        entry.resume();
        continue;
      }
      if (h.type !== 'file') throw new BundleError('bundle_unsafe_entry', bundle, p.path || h.name, `is a ${h.type ?? 'special'} entry${h.linkname ? ` to ${h.linkname}` : ''}; bundles may hold regular files only`);
      if (!p.path) throw new BundleError('bundle_unsafe_entry', bundle, h.name, 'a file entry without a name');
      if ((h.size ?? 0) > limits.maxFileBytes) throw new BundleError('bundle_too_large', bundle, p.path, `is ${h.size} bytes; the limit per file is ${limits.maxFileBytes}`);
      if (seen.has(p.path)) throw new BundleError('bundle_unsafe_entry', bundle, p.path, 'appears twice in the bundle');
      seen.add(p.path);
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      out.push({ path: p.path, bytes: Buffer.concat(chunks) });
    }
  })();
  extract.end(raw);
  try {
    await done;
  } catch (err) {
    extract.destroy();
    if (err instanceof BundleError) throw err;
    throw new BundleError('bundle_corrupt', bundle, undefined, `the tar archive is damaged (${(err as Error).message})`, { cause: err });
  }
  return out;
}

/** writeArchive packs files (regular, mode 0600, time 0 so equal input gives equal bytes) into a gzipped tarball. */
export async function writeArchive(files: Array<{ name: string; bytes: Uint8Array }>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(c);
  })();
  for (const f of files) {
    await new Promise<void>((resolve, reject) => pack.entry({ name: f.name, size: f.bytes.length, mode: 0o600, mtime: new Date(0), type: 'file' }, Buffer.from(f.bytes), (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await collected;
  return gzipSync(Buffer.concat(chunks));
}
