import { constants, type Stats } from 'node:fs';
import { chmod, link, lstat, mkdir, open, readdir, rm, symlink, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import type { Logger } from 'pino';
import tar from 'tar-stream';

import { WorkloadError } from '../errors.js';

import { type Compression, Counter, decompressor, describeStreamError, DigestCheck, sniffCompression } from './streams.js';

/** UnpackLimits bound what unpacking one image may cost on the host. */
export interface UnpackLimits {
  /** Bytes of regular files written, all layers together. */
  maxImageBytes: number;
  /** Tar entries, all layers together (directories, links and whiteouts count). */
  maxEntries: number;
}

/** LayerData is one layer to apply: its first bytes (to tell the compression), its stream, and an optional check of the compressed bytes. */
export interface LayerData {
  head: Uint8Array;
  stream: Readable;
  /** Placed between the stream and the decompressor (the digest check of a layout's blob). */
  verify?: Transform;
}

/** LayerInfo names a layer in messages and carries the uncompressed digest the image configuration promises. */
export interface LayerInfo {
  index: number;
  digest: string;
  /** rootfs.diff_ids[index] of the image configuration, when it has one. */
  diffId?: string;
}

// A tar stream holds headers and padding beside file data; more than this per entry, plus a fixed
// allowance for read-ahead and pax records, is a decompression bomb (zeros after the end marker).
const OVERHEAD_PER_ENTRY = 4096;
const OVERHEAD_SLACK = 16 * 1024 * 1024;
const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
/** What may stay of a tar mode: no setuid, setgid or sticky bit, nothing writable by group or other. */
const MODE_MASK = 0o755;

/**
 * RootfsBuilder applies an image's layers, in order, to a directory that only Skiff can reach (a
 * temporary directory under `DATA_DIR/rootfs`, mode 0700), with the OCI layer semantics: whiteouts
 * (`.wh.NAME`) and opaque directories (`.wh..wh..opq`) delete from lower layers only; later entries
 * replace earlier ones.
 *
 * Nothing is ever written, created or followed through a symbolic link: every parent of every entry is
 * walked component by component inside the root with lstat, and an entry whose parent is a link is
 * refused (builders never write through links: a layer records the path a file really has). Names
 * with `..`, device nodes and FIFOs are refused; hard links may only name a file an earlier entry
 * created. Modes lose setuid, setgid, sticky and group/other write bits; ownership and extended
 * attributes (file capabilities among them) are not kept. Errors are WorkloadErrors naming the image,
 * the layer and the entry; the caller removes the directory on failure.
 */
export class RootfsBuilder {
  private fileBytes = 0;
  private declaredBytes = 0;
  private entries = 0;
  private tarBytes = 0;
  /** Paths (relative, `a/b`) verified to be real directories; '' is the root. Only this builder changes the tree. */
  private readonly dirs = new Set<string>(['']);
  /** Modes and mtimes of directories, applied at the end (a read-only directory would stop later entries). */
  private readonly dirMeta = new Map<string, { mode: number; mtime?: Date }>();
  /** Paths the current layer created, and their ancestors: whiteouts only delete what lower layers made. */
  private layerPaths = new Set<string>();
  private layerAncestors = new Set<string>();

  constructor(
    readonly root: string,
    private readonly image: string,
    private readonly limits: UnpackLimits,
    private readonly logger?: Logger,
  ) {}

  /** applyLayer decompresses and unpacks one layer over what the earlier layers left. */
  async applyLayer(data: LayerData, layer: LayerInfo): Promise<void> {
    const where = `layer ${layer.index + 1} (${layer.digest}) of image ${this.image}`;
    this.layerPaths = new Set();
    this.layerAncestors = new Set();
    const compression: Compression = sniffCompression(data.head);
    const base = this.tarBytes;
    const counter = new Counter((n) => {
      this.tarBytes = base + n;
      if (this.tarBytes > this.declaredBytes + OVERHEAD_PER_ENTRY * this.entries + OVERHEAD_SLACK) {
        throw new WorkloadError('ImageTooLarge', `${where} decompresses to far more than the files it holds (over ${this.tarBytes} bytes for ${this.declaredBytes} bytes of files): a decompression bomb; the image was not unpacked`);
      }
    });
    const stages: Array<Readable | Transform | NodeJS.ReadWriteStream> = [data.stream];
    if (data.verify) stages.push(data.verify);
    const inflate = decompressor(compression);
    if (inflate) stages.push(inflate);
    stages.push(counter);
    if (layer.diffId) {
      const diffId = layer.diffId;
      stages.push(new DigestCheck(diffId, undefined, (actual) => new WorkloadError('InvalidImage', `${where}: the uncompressed layer has digest ${actual}, but the image configuration (rootfs.diff_ids) says ${diffId}; the image is damaged or was assembled wrongly`)));
    }
    const extract = tar.extract();
    const feeding = pipeline([...stages, extract] as unknown as [Readable, NodeJS.WritableStream]).then(
      () => undefined,
      (err: unknown) => err ?? new Error('stream failed'),
    );
    let failure: unknown;
    try {
      for await (const entry of extract) await this.applyEntry(entry, where);
    } catch (err) {
      failure = err;
      data.stream.destroy();
    }
    const fed = await feeding;
    if (failure instanceof WorkloadError) throw failure;
    if (fed instanceof WorkloadError) throw fed;
    // The loop's own error comes first: when it stopped, the pipeline only reports a premature close.
    if (failure !== undefined || fed !== undefined) throw this.hostOrStreamError(failure ?? fed, compression, where);
  }

  /** finish applies the directories' modes and times and returns the bytes of the files the root holds. */
  async finish(): Promise<number> {
    const dirs = [...this.dirMeta.entries()].sort((a, b) => depth(b[0]) - depth(a[0]));
    if (!this.dirMeta.has('')) dirs.push(['', { mode: 0o755 }]);
    for (const [rel, meta] of dirs) {
      const abs = rel ? join(this.root, rel) : this.root;
      const st = await lstatOrUndefined(abs);
      // chmod follows links: only a directory this builder made is touched.
      if (!st?.isDirectory()) continue;
      await chmod(abs, meta.mode);
      if (meta.mtime) await utimes(abs, meta.mtime, meta.mtime);
    }
    return treeBytes(this.root);
  }

  private async applyEntry(entry: tar.Entry, where: string): Promise<void> {
    const h = entry.header;
    try {
      this.entries++;
      if (this.entries > this.limits.maxEntries) {
        throw new WorkloadError('ImageTooLarge', `image ${this.image} has more than ${this.limits.maxEntries} entries (files, directories and links) in its layers, stopping at ${where}; the image was not unpacked`);
      }
      const what = `${where}, entry "${printable(h.name)}"`;
      const parts = splitName(h.name, what);
      const name = parts[parts.length - 1];
      if (name !== undefined && name.startsWith(WHITEOUT)) await this.whiteout(parts, name, what);
      else {
        switch (h.type) {
          case 'directory':
            await this.directory(parts, h, what);
            break;
          case 'file':
          case 'contiguous-file':
            await this.file(parts, entry, h, what);
            break;
          case 'symlink':
            await this.symlink(parts, h.linkname, what);
            break;
          case 'link':
            await this.hardLink(parts, h.linkname, what);
            break;
          case 'character-device':
          case 'block-device':
            throw new WorkloadError('LayerEscapesRoot', `${what} is a ${h.type === 'block-device' ? 'block' : 'character'} device (${h.devmajor ?? 0}:${h.devminor ?? 0}): a device node in the image would open a host device, so it is never created; remove it from the image (the runtime provides /dev)`);
          case 'fifo':
            throw new WorkloadError('InvalidImage', `${what} is a FIFO: special files are not unpacked onto the host; remove it from the image and create it at run time if the program needs one`);
          default:
            throw new WorkloadError('InvalidImage', `${what} has the tar entry type ${JSON.stringify(h.type ?? null)}, which a container image layer may not hold`);
        }
      }
    } finally {
      // An entry the handlers above did not read (or read partly, on failure) is drained so the parser can go on or stop cleanly.
      entry.resume();
    }
  }

  private async whiteout(parts: string[], name: string, what: string): Promise<void> {
    const target = name.slice(WHITEOUT.length);
    if (target === '..') throw new WorkloadError('LayerEscapesRoot', `${what} is a whiteout of "..": it would delete outside its directory`);
    if (!target || target === '.') throw new WorkloadError('InvalidImage', `${what} is a whiteout that names no file`);
    const parent = await this.parentDir(parts, what, false);
    if (!parent) return;
    if (name === OPAQUE) {
      await this.removeLower(parent.rel);
      return;
    }
    // Other `.wh..wh.` names are AUFS bookkeeping (`.wh..wh.plnk`), not whiteouts.
    if (name.startsWith(`${WHITEOUT}${WHITEOUT}`)) {
      this.logger?.debug({ image: this.image, entry: what }, 'AUFS metadata entry skipped');
      return;
    }
    const rel = joinRel(parent.rel, target);
    if (this.layerPaths.has(rel)) return;
    if (this.layerAncestors.has(rel)) await this.removeLower(rel);
    else await this.remove(rel);
  }

  /** removeLower deletes what lower layers left under `rel`, keeping what the current layer made. */
  private async removeLower(rel: string): Promise<void> {
    const abs = this.abs(rel);
    for (const child of await readdir(abs)) {
      const c = joinRel(rel, child);
      if (this.layerPaths.has(c) || this.layerAncestors.has(c)) {
        const st = await lstat(join(abs, child));
        if (st.isDirectory()) await this.removeLower(c);
      } else await this.remove(c);
    }
  }

  private async directory(parts: string[], h: tar.Headers, what: string): Promise<void> {
    // The owner (Skiff) keeps full access to directories, so the tree can always be removed; the
    // root file system is mounted read-only wherever it is used, so this grants the image nothing.
    const meta = { mode: ((h.mode ?? 0o755) & MODE_MASK) | 0o700, mtime: h.mtime };
    if (!parts.length) {
      this.dirMeta.set('', meta);
      return;
    }
    const parent = await this.parentDir(parts, what, true);
    const rel = joinRel(parent!.rel, parts[parts.length - 1]!);
    const abs = this.abs(rel);
    const st = await lstatOrUndefined(abs);
    if (!st?.isDirectory()) {
      if (st) await this.remove(rel);
      await mkdir(abs, { mode: 0o755 });
    }
    this.dirs.add(rel);
    this.dirMeta.set(rel, meta);
    this.created(rel);
  }

  private async file(parts: string[], entry: tar.Entry, h: tar.Headers, what: string): Promise<void> {
    if (!parts.length) throw new WorkloadError('InvalidImage', `${what} is a file in place of the image's root directory`);
    const size = h.size ?? 0;
    this.declaredBytes += size;
    if (this.fileBytes + size > this.limits.maxImageBytes) {
      throw new WorkloadError('ImageTooLarge', `image ${this.image} unpacks to more than the limit of ${this.limits.maxImageBytes} bytes (${what} holds ${size} bytes); the image was not unpacked`);
    }
    const abs = await this.replaceable(parts, what);
    // O_EXCL|O_NOFOLLOW: the name was just cleared, so this creates a new inode and never writes through a link.
    const fh = await open(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      let written = 0;
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        written += chunk.length;
        if (written > size) throw new WorkloadError('InvalidImage', `${what} holds more bytes than its header says`);
        await fh.write(chunk);
      }
      this.fileBytes += written;
      await fh.chmod((h.mode ?? 0o644) & MODE_MASK);
      if (h.mtime) await fh.utimes(h.mtime, h.mtime);
    } finally {
      await fh.close();
    }
  }

  private async symlink(parts: string[], target: string | null | undefined, what: string): Promise<void> {
    if (!parts.length) throw new WorkloadError('InvalidImage', `${what} is a symbolic link in place of the image's root directory`);
    if (!target) throw new WorkloadError('InvalidImage', `${what} is a symbolic link with no target`);
    if (target.includes('\0')) throw new WorkloadError('InvalidImage', `${what} is a symbolic link whose target contains a NUL byte`);
    // The target is only the link's content: it is resolved inside the container, never here.
    const abs = await this.replaceable(parts, what);
    await symlink(target, abs);
  }

  private async hardLink(parts: string[], linkname: string | null | undefined, what: string): Promise<void> {
    if (!parts.length) throw new WorkloadError('InvalidImage', `${what} is a hard link in place of the image's root directory`);
    if (!linkname) throw new WorkloadError('InvalidImage', `${what} is a hard link with no target`);
    const targetParts = splitName(linkname, `${what} (hard link to "${printable(linkname)}")`);
    if (!targetParts.length) throw new WorkloadError('InvalidImage', `${what} is a hard link to the image's root directory`);
    const missing = () => new WorkloadError('InvalidImage', `${what} is a hard link to "${printable(linkname)}", which no earlier entry of the image created; a hard link may only name a file of the image itself`);
    const parent = await this.parentDir(targetParts, `${what} (hard link to "${printable(linkname)}")`, false);
    if (!parent) throw missing();
    const source = this.abs(joinRel(parent.rel, targetParts[targetParts.length - 1]!));
    const st = await lstatOrUndefined(source);
    if (!st) throw missing();
    if (st.isDirectory()) throw new WorkloadError('InvalidImage', `${what} is a hard link to the directory "${printable(linkname)}"`);
    const abs = await this.replaceable(parts, what, source);
    // link(2) does not follow a symbolic link named as its source: the link is to the link itself.
    if (abs !== source) await link(source, abs);
  }

  /**
   * replaceable resolves an entry's path (creating missing parent directories) and clears whatever the
   * name held, so the caller creates a fresh inode: a later layer never writes into an earlier file,
   * nor through a hard link shared with another name. `keep` is not removed (a hard link to itself).
   */
  private async replaceable(parts: string[], what: string, keep?: string): Promise<string> {
    const parent = await this.parentDir(parts, what, true);
    const rel = joinRel(parent!.rel, parts[parts.length - 1]!);
    const abs = this.abs(rel);
    if (abs !== keep && (await lstatOrUndefined(abs))) await this.remove(rel);
    this.created(rel);
    return abs;
  }

  /**
   * parentDir walks the parent components of `parts` inside the root with lstat, refusing a symbolic
   * link and a non-directory, and creates missing ones when `create` (a layer may omit them); without
   * `create` a missing one gives undefined.
   */
  private async parentDir(parts: string[], what: string, create: boolean): Promise<{ rel: string } | undefined> {
    let rel = '';
    for (let i = 0; i < parts.length - 1; i++) {
      const next = joinRel(rel, parts[i]!);
      if (!this.dirs.has(next)) {
        const abs = this.abs(next);
        const st = await lstatOrUndefined(abs);
        if (!st) {
          if (!create) return undefined;
          await mkdir(abs, { mode: 0o755 });
          // A parent the layer did not list: 0755 at the end whatever the umask (its own entry may still come).
          if (!this.dirMeta.has(next)) this.dirMeta.set(next, { mode: 0o755 });
        } else if (st.isSymbolicLink()) {
          throw new WorkloadError('LayerEscapesRoot', `${what}: its parent "${next}" is a symbolic link; entries are never written through links (a link may point anywhere on the host), so the image was not unpacked`);
        } else if (!st.isDirectory()) {
          throw new WorkloadError('InvalidImage', `${what}: its parent "${next}" is not a directory`);
        }
        this.dirs.add(next);
      }
      rel = next;
    }
    return { rel };
  }

  /** remove deletes a path of the tree (recursively for a directory; a link is removed, never followed). */
  private async remove(rel: string): Promise<void> {
    const abs = this.abs(rel);
    const st = await lstatOrUndefined(abs);
    if (!st) return;
    if (st.isDirectory()) {
      await rm(abs, { recursive: true, force: true });
      for (const set of [this.dirs, this.dirMeta]) {
        for (const k of set.keys()) if (k === rel || k.startsWith(`${rel}/`)) set.delete(k);
      }
    } else await unlink(abs);
  }

  private created(rel: string): void {
    this.layerPaths.add(rel);
    for (let i = rel.indexOf('/'); i > 0; i = rel.indexOf('/', i + 1)) this.layerAncestors.add(rel.slice(0, i));
  }

  private abs(rel: string): string {
    return rel ? join(this.root, rel) : this.root;
  }

  private hostOrStreamError(err: unknown, compression: Compression, where: string): WorkloadError {
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS' || code === 'EACCES' || code === 'EPERM' || code === 'EMFILE') {
      return new WorkloadError('UnpackFailed', `${where} cannot be unpacked into ${this.root}: ${code} (${(err as Error).message}); free space or fix the data directory's permissions`, err);
    }
    if (code === 'ENAMETOOLONG' || code === 'ELOOP' || code === 'ENOTDIR' || code === 'EEXIST' || code === 'EISDIR' || code === 'ENOTEMPTY') {
      return new WorkloadError('InvalidImage', `${where} has an entry that cannot be unpacked (${code}: ${(err as Error).message})`, err);
    }
    return describeStreamError(err, compression, where);
  }
}

/**
 * splitName turns a tar entry name into path components from the image root. A leading `/` or `./`
 * means the root (tars differ); `.` and empty components are dropped; `..` anywhere is refused, even
 * where it would stay inside (builders never write it), and so is a NUL.
 */
export function splitName(name: string, what: string): string[] {
  if (name.includes('\0')) throw new WorkloadError('InvalidImage', `${what}: the name contains a NUL byte`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new WorkloadError('LayerEscapesRoot', `${what}: the name has a ".." component, which could climb out of the image root; the image was not unpacked`);
  return parts;
}

function joinRel(parent: string, name: string): string {
  return parent ? `${parent}/${name}` : name;
}

function depth(rel: string): number {
  return rel ? rel.split('/').length : 0;
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** printable shortens a name for a message and shows control characters escaped. */
function printable(name: string): string {
  const short = name.length > 200 ? `${name.slice(0, 200)}...` : name;
  return JSON.stringify(short).slice(1, -1);
}

/** treeBytes sums the sizes of the regular files under `root`, counting each inode once. */
export async function treeBytes(root: string): Promise<number> {
  let total = 0;
  const seen = new Set<string>();
  const stack = [root];
  while (stack.length) {
    const dir = stack.pop()!;
    for (const d of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, d.name);
      if (d.isDirectory()) stack.push(p);
      else if (d.isFile()) {
        const st = await lstat(p);
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          if (seen.has(key)) continue;
          seen.add(key);
        }
        total += st.size;
      }
    }
  }
  return total;
}
