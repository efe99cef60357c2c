import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';

import ignoreModule from 'ignore';
import tar from 'tar-stream';

import { type ArtifactFiles, ArtifactMissingError, type ArtifactReader } from '../artifact.js';

import { ArtifactCorruptError, ArtifactTooLargeError } from './errors.js';
import type { TreeEntry } from './git.js';

/** ArtifactLimits bound what one artifact may hold, when it is built and again when it is read. */
export interface ArtifactLimits {
  maxFiles: number;
  /** Sum of the files' sizes. */
  maxBytes: number;
}

export const DEFAULT_ARTIFACT_LIMITS: ArtifactLimits = { maxFiles: 10_000, maxBytes: 64 * 1024 * 1024 };

/** ArtifactFile is one file to pack: a POSIX path relative to the root, and whether git marks it executable. */
export interface ArtifactFile {
  path: string;
  data: Uint8Array;
  executable?: boolean;
}

/** Selection is what of a commit's tree goes into the artifact, and what was left out and why. */
export interface Selection {
  files: TreeEntry[];
  /** Symbolic links: they could point outside the artifact. */
  symlinks: string[];
  /** Gitlinks: submodules are not fetched. */
  submodules: string[];
  /** How many files spec.ignore left out. */
  ignored: number;
}

export interface StoredArtifact {
  digest: string;
  size: number;
}

export interface ArtifactStoreOptions {
  /** DATA_DIR/gitops/artifacts */
  dir: string;
  limits?: Partial<ArtifactLimits>;
  /** How many read artifacts are kept decoded in memory (default 8). */
  cacheEntries?: number;
}

// ignore is CommonJS with `factory.default = factory`; under NodeNext its types describe that default.
const ignore = ignoreModule.default;

// Fixed metadata makes the archive a function of the tree alone, so equal trees give equal digests.
const EPOCH = new Date(0);

/** safePath says whether a path is relative, normalised, and stays inside the root. */
export function safePath(p: string): boolean {
  if (p.length === 0 || p.length > 4096 || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  return p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

/**
 * selectTree keeps the regular files of a commit's tree that spec.ignore does not match; symbolic
 * links and submodules are left out and named, so the status can say so.
 */
export function selectTree(entries: readonly TreeEntry[], ignorePatterns: string | undefined): Selection {
  const ig = ignore().add(ignorePatterns ?? '');
  const sel: Selection = { files: [], symlinks: [], submodules: [], ignored: 0 };
  for (const e of entries) {
    if (e.type === 'commit') sel.submodules.push(e.path);
    else if (e.mode === '120000') sel.symlinks.push(e.path);
    else if (e.type !== 'blob' || !safePath(e.path)) sel.symlinks.push(e.path);
    else if (ig.ignores(e.path)) sel.ignored++;
    else sel.files.push(e);
  }
  return sel;
}

/** checkLimits refuses a selection that holds more files or bytes than the limits allow. */
export function checkLimits(files: readonly { size: number }[], limits: ArtifactLimits): void {
  if (files.length > limits.maxFiles) throw new ArtifactTooLargeError(`the revision has ${files.length} files, over the limit of ${limits.maxFiles}; leave some out with spec.ignore`);
  const total = files.reduce((n, f) => n + f.size, 0);
  if (total > limits.maxBytes) throw new ArtifactTooLargeError(`the revision's files add up to ${total} bytes, over the limit of ${limits.maxBytes}; leave some out with spec.ignore`);
}

/** packCanonical makes the canonical tar.gz of a set of files: sorted paths, fixed times, owners and modes. */
export async function packCanonical(files: readonly ArtifactFile[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: Buffer) => chunks.push(c));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const f of sorted) {
    await new Promise<void>((resolve, reject) => {
      pack.entry({ name: f.path, type: 'file', mode: f.executable ? 0o755 : 0o644, mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '', size: f.data.byteLength }, Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength), (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks), { level: 6 });
}

/**
 * ArtifactStore keeps artifacts as content-addressed files, `sha256-HEX.tar.gz`, written atomically.
 * It is the ArtifactReader Syncs read from: every entry read back is checked to be a plain file at a
 * safe relative path, within the limits, so a tampered file cannot reach outside the artifact.
 */
export class ArtifactStore implements ArtifactReader {
  readonly dir: string;
  readonly limits: ArtifactLimits;
  private readonly cache = new Map<string, ArtifactFiles>();
  private readonly cacheEntries: number;
  private readonly references: Array<() => Iterable<string>> = [];

  constructor(opts: ArtifactStoreOptions) {
    this.dir = opts.dir;
    this.limits = { ...DEFAULT_ARTIFACT_LIMITS, ...opts.limits };
    this.cacheEntries = opts.cacheEntries ?? 8;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /** pathOf is the file of an artifact (digest `sha256:HEX`). */
  pathOf(digest: string): string {
    const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
    if (!m) throw new ArtifactMissingError(digest);
    return join(this.dir, `sha256-${m[1]}.tar.gz`);
  }

  has(digest: string): boolean {
    try {
      return statSync(this.pathOf(digest)).isFile();
    } catch {
      return false;
    }
  }

  /** put packs the files canonically and stores them; the same files always give the same digest. */
  async put(files: readonly ArtifactFile[]): Promise<StoredArtifact> {
    checkLimits(files.map((f) => ({ size: f.data.byteLength })), this.limits);
    for (const f of files) if (!safePath(f.path)) throw new ArtifactCorruptError('(new)', `path ${JSON.stringify(f.path)} is not a safe relative path`);
    const bytes = await packCanonical(files);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const path = this.pathOf(digest);
    if (!this.has(digest)) {
      const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
      writeFileSync(tmp, bytes, { mode: 0o600 });
      renameSync(tmp, path);
    }
    return { digest, size: bytes.byteLength };
  }

  async read(digest: string): Promise<ArtifactFiles> {
    const cached = this.cache.get(digest);
    if (cached) {
      this.cache.delete(digest);
      this.cache.set(digest, cached);
      return cached;
    }
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.pathOf(digest));
    } catch {
      throw new ArtifactMissingError(digest);
    }
    if (`sha256:${createHash('sha256').update(bytes).digest('hex')}` !== digest) throw new ArtifactCorruptError(digest, 'its bytes do not match its digest');
    const files = await this.unpack(digest, bytes);
    this.cache.set(digest, files);
    while (this.cache.size > this.cacheEntries) this.cache.delete(this.cache.keys().next().value!);
    return files;
  }

  /** addReferences registers digests another area still needs (a Sync's last healthy revision), kept by gc. */
  addReferences(source: () => Iterable<string>): void {
    this.references.push(source);
  }

  /**
   * gc removes artifacts that neither `keep` nor a registered reference names and that are older
   * than graceMs (so one being written or just replaced survives). Returns how many were removed.
   */
  gc(keep: Iterable<string>, graceMs = 60 * 60_000, now = Date.now()): number {
    const kept = new Set(keep);
    for (const r of this.references) for (const d of r()) kept.add(d);
    let removed = 0;
    for (const name of readdirSync(this.dir)) {
      const m = /^sha256-([0-9a-f]{64})\.tar\.gz(\..*\.tmp)?$/.exec(name);
      if (!m || (!m[2] && kept.has(`sha256:${m[1]}`))) continue;
      const p = join(this.dir, name);
      try {
        if (now - statSync(p).mtimeMs < graceMs) continue;
        rmSync(p, { force: true });
        this.cache.delete(`sha256:${m[1]}`);
        removed++;
      } catch {
        // removed meanwhile
      }
    }
    return removed;
  }

  private async unpack(digest: string, bytes: Buffer): Promise<ArtifactFiles> {
    let tarBytes: Buffer;
    try {
      tarBytes = gunzipSync(bytes, { maxOutputLength: this.limits.maxBytes + (this.limits.maxFiles + 2) * 1536 });
    } catch (err) {
      throw new ArtifactCorruptError(digest, `it does not decompress within the limits (${(err as Error).message})`);
    }
    const files = new Map<string, Uint8Array>();
    const extract = tar.extract();
    let total = 0;
    await new Promise<void>((resolve, reject) => {
      extract.on('entry', (header, stream, next) => {
        const name = header.name;
        if (header.type !== 'file') return reject(new ArtifactCorruptError(digest, `entry ${JSON.stringify(name)} is a ${header.type}, not a file`));
        if (!safePath(name) || files.has(name)) return reject(new ArtifactCorruptError(digest, `entry ${JSON.stringify(name)} is not a safe, unique relative path`));
        if (files.size + 1 > this.limits.maxFiles) return reject(new ArtifactCorruptError(digest, `it holds more than ${this.limits.maxFiles} files`));
        const parts: Buffer[] = [];
        stream.on('data', (c: Buffer) => {
          total += c.length;
          parts.push(c);
        });
        stream.on('end', () => {
          if (total > this.limits.maxBytes) return reject(new ArtifactCorruptError(digest, `its files add up to more than ${this.limits.maxBytes} bytes`));
          files.set(name, new Uint8Array(Buffer.concat(parts)));
          next();
        });
        stream.on('error', reject);
      });
      extract.on('finish', () => resolve());
      extract.on('error', (err) => reject(new ArtifactCorruptError(digest, (err as Error).message)));
      Readable.from([tarBytes]).pipe(extract);
    });
    return files;
  }
}
