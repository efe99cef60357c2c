import { execFileSync } from 'node:child_process';
import {
type BigIntStats,
  closeSync, constants as C, fstatSync, fsyncSync, ftruncateSync, futimesSync, linkSync, lstatSync, lutimesSync, mkdirSync,
  openSync, readdirSync, readlinkSync, readSync, realpathSync, renameSync, rmdirSync, statSync, symlinkSync, unlinkSync,
  writeSync, } from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';

import { E, FILETYPE } from '../wasi/constants.js';

import { type DirEntry, type Entry, type FsBackend, FsError, type OpenFile, type OpenFlags, type Stat, type TimeSpec } from './types.js';

const NODE_ERRNO: Record<string, number> = {
  ENOENT: E.NOENT, EEXIST: E.EXIST, ENOTDIR: E.NOTDIR, EISDIR: E.ISDIR, ENOTEMPTY: E.NOTEMPTY, EACCES: E.ACCES,
  EPERM: E.PERM, ELOOP: E.LOOP, EINVAL: E.INVAL, EXDEV: E.XDEV, ENAMETOOLONG: E.NAMETOOLONG, EROFS: E.ROFS,
  ENOSPC: E.NOSPC, EBADF: E.BADF, EMFILE: E.MFILE, ENFILE: E.NFILE, EBUSY: E.BUSY, EFBIG: E.FBIG, EIO: E.IO,
  EMLINK: E.MLINK, ETXTBSY: E.TXTBSY, EDQUOT: E.DQUOT, EAGAIN: E.AGAIN, ESPIPE: E.SPIPE, EOVERFLOW: E.OVERFLOW,
  ENXIO: E.NXIO, ENODEV: E.NODEV,
};

/**
 * hostError turns a node:fs error from the system (one with an errno) into an FsError carrying the
 * WASI errno. Anything else, such as Node refusing an argument (`ERR_OUT_OF_RANGE`), is a host bug:
 * guest values are checked before they reach Node. It is returned as it is, so that the syscall
 * wrapper reports a host error instead of the guest seeing EIO.
 */
function hostError(err: unknown): unknown {
  if (err instanceof FsError) return err;
  const e = err as NodeJS.ErrnoException;
  if (typeof e.errno !== 'number' || typeof e.syscall !== 'string') return err;
  return new FsError(NODE_ERRNO[e.code ?? ''] ?? E.IO, e.message);
}

/**
 * fileOffset converts a guest's file offset or size for Node, which takes a double: past 2^53 a double
 * would round it to another offset, so those are EFBIG, as a file system's maximum size is.
 */
function fileOffset(n: bigint): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new FsError(E.FBIG);
  return Number(n);
}

/** hostCall runs a node:fs call and turns its error into an FsError carrying the WASI errno. */
function hostCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw hostError(err);
  }
}

function filetypeOf(st: BigIntStats): number {
  if (st.isFile()) return FILETYPE.REGULAR_FILE;
  if (st.isDirectory()) return FILETYPE.DIRECTORY;
  if (st.isSymbolicLink()) return FILETYPE.SYMBOLIC_LINK;
  if (st.isCharacterDevice()) return FILETYPE.CHARACTER_DEVICE;
  if (st.isBlockDevice()) return FILETYPE.BLOCK_DEVICE;
  if (st.isSocket()) return FILETYPE.SOCKET_STREAM;
  return FILETYPE.UNKNOWN;
}

function toStat(st: BigIntStats): Stat {
  return {
    dev: BigInt.asUintN(64, st.dev), ino: BigInt.asUintN(64, st.ino), filetype: filetypeOf(st), nlink: st.nlink, size: st.size,
    atim: st.atimeNs, mtim: st.mtimeNs, ctim: st.ctimeNs,
  };
}

/** Node's utimes takes seconds as a double; this keeps as much of the nanoseconds as a double holds. */
function seconds(t: TimeSpec, current: bigint): number {
  if (t === 'now') return Date.now() / 1000;
  const ns = t ?? current;
  return Number(ns / 1_000_000_000n) + Number(ns % 1_000_000_000n) / 1e9;
}

/** exactViaNode tells whether Node's utimes (a double, then whole microseconds in libuv) keeps `t` exactly. */
function exactViaNode(t: TimeSpec): boolean {
  if (t === null || t === 'now') return true;
  const secs = seconds(t, 0n);
  const whole = Math.trunc(secs);
  let nsec = Math.trunc((secs - whole) * 1e9);
  nsec -= nsec % 1000;
  return BigInt(whole) * 1_000_000_000n + BigInt(nsec) === t;
}

/**
 * setTimesExact sets nanosecond times, which Node's fs API cannot (it passes seconds as a double and
 * libuv keeps microseconds): coreutils `touch` takes `@SECONDS.NANOS`. Only used when Node would round.
 */
function setTimesExact(path: string, atim: TimeSpec, mtim: TimeSpec, noFollow: boolean): void {
  const stamp = (t: bigint) => `@${t / 1_000_000_000n}.${(t % 1_000_000_000n).toString().padStart(9, '0')}`;
  for (const [flag, t] of [['-a', atim], ['-m', mtim]] as const) {
    if (t === null) continue;
    const args = ['-c', flag, ...(noFollow ? ['-h'] : []), ...(t === 'now' ? [] : ['-d', stamp(t)]), '--', path];
    try {
      execFileSync('touch', args, { stdio: 'ignore' });
    } catch {
      throw new FsError(E.IO, `touch ${args.join(' ')} failed`);
    }
  }
}

/** Linux names every open descriptor under /proc/self/fd; without it the checks below fall back to real paths. */
const PROC_FD = (() => {
  try {
    return statSync('/proc/self/fd').isDirectory();
  } catch {
    return false;
  }
})();

// O_NONBLOCK everywhere: opening a FIFO (or a device) must never park the thread, whatever it is.
// Directories may be reached through a link swapped in by a race: opening one has no effect, and what
// was opened is checked before it is used (a link that stays inside the mount is harmless).
const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NONBLOCK;
const FILE_FLAGS = C.O_NOFOLLOW | C.O_NONBLOCK | C.O_NOCTTY;

/**
 * Where: a name inside a directory that was opened and checked. `path` is how this process reaches the
 * name (`/proc/self/fd/N/NAME`: the kernel looks NAME up in the directory held open, never re-walking
 * the directory's path); `childPath` is the same for a child process (`/proc/PID/fd/N/NAME`).
 */
interface Where {
  path: string;
  childPath: string;
}

/**
 * HostFs exposes one host directory. Node references are absolute host paths that the shared resolver
 * built one component at a time (it expands symlinks itself), so every reference lies beneath the root
 * by construction. Node has no `openat`, so every operation first opens the directory that holds the
 * name (`O_DIRECTORY|O_NONBLOCK`) and checks what the kernel actually opened
 * (`/proc/self/fd/N`) lies inside the root, then acts on `/proc/self/fd/N/NAME`: the name is looked up
 * in the directory held open, with the final component never followed. A directory swapped for a
 * symlink between resolution and use (another instance sharing a read-write directory, a host process)
 * is therefore refused before anything is created, truncated, renamed or removed outside. Only regular
 * files are opened as files: a FIFO, socket or device is refused at open without blocking.
 */
export class HostFs implements FsBackend<string> {
  readonly root: string;
  private readonly rootSlash: string;
  constructor(hostRoot: string, readonly readOnly: boolean) {
    this.root = hostCall(() => realpathSync(hostRoot));
    this.rootSlash = this.root.endsWith(sep) ? this.root : this.root + sep;
    if (!statSync(this.root).isDirectory()) throw new FsError(E.NOTDIR, `${hostRoot} is not a directory`);
  }

  private writable(): void {
    if (this.readOnly) throw new FsError(E.ROFS);
  }

  private inside(real: string): boolean {
    return real === this.root || real.startsWith(this.rootSlash);
  }

  /** guestPath names a node relative to the mount, for notes (never the host's own layout beyond it). */
  private guestPath(node: string): string {
    return node === this.root ? '.' : node.startsWith(this.rootSlash) ? node.slice(this.rootSlash.length) : '?';
  }

  /** refuseOutside closes a descriptor that turned out to lie outside the root and reports it. */
  private refuseOutside(fd: number, node: string): never {
    closeSync(fd);
    throw new FsError(E.PERM, 'opened file lies outside the preopen', `"${this.guestPath(node)}" led outside the preopen when opened (a directory was replaced by a link); refused`);
  }

  /** checkFd verifies that descriptor `fd`, opened for `node`, refers to something inside the root. */
  private checkFd(fd: number, node: string): void {
    let real: string;
    try {
      real = PROC_FD ? readlinkSync(`/proc/self/fd/${fd}`) : realpathSync(node);
    } catch (err) {
      closeSync(fd);
      throw hostError(err);
    }
    if (!this.inside(real)) this.refuseOutside(fd, node);
  }

  /** openDir opens the directory `dir` and checks that what the kernel opened lies inside the root. */
  private openDir(dir: string): number {
    const fd = hostCall(() => openSync(dir, DIR_FLAGS));
    this.checkFd(fd, dir);
    return fd;
  }

  /** inDir runs `fn` on `name` inside the checked directory `dir`; the directory stays open meanwhile. */
  private inDir<T>(dir: string, name: string, fn: (w: Where) => T): T {
    if (!PROC_FD) {
      // No descriptor paths: check the directory's real path, then use it (a narrower window, not none).
      const real = hostCall(() => realpathSync(dir));
      if (!this.inside(real)) throw new FsError(E.PERM, 'directory lies outside the preopen', `"${this.guestPath(dir)}" led outside the preopen; refused`);
      const p = join(real, name);
      return hostCall(() => fn({ path: p, childPath: p }));
    }
    const fd = this.openDir(dir);
    try {
      return hostCall(() => fn({ path: `/proc/self/fd/${fd}/${name}`, childPath: `/proc/${process.pid}/fd/${fd}/${name}` }));
    } finally {
      closeSync(fd);
    }
  }

  /** atNode runs `fn` on a node through its checked parent directory (the root through itself, as `.`). */
  private atNode<T>(node: string, fn: (w: Where) => T): T {
    if (node === this.root) return this.inDir(node, '.', fn);
    return this.inDir(dirname(node), basename(node), fn);
  }

  lookup(dir: string, name: string): Entry<string> | null {
    const st = this.inDir(dir, name, (w) => lstatSync(w.path, { bigint: true, throwIfNoEntry: false }));
    return st ? { node: join(dir, name), filetype: filetypeOf(st) } : null;
  }

  readlink(node: string): string {
    return this.atNode(node, (w) => readlinkSync(w.path, 'utf8'));
  }

  stat(node: string): Stat {
    return toStat(this.atNode(node, (w) => lstatSync(w.path, { bigint: true })));
  }

  readdir(dir: string): DirEntry[] {
    return this.inDir(dir, '.', (w) =>
      readdirSync(w.path).flatMap((name) => {
        const st = lstatSync(join(w.path, name), { bigint: true, throwIfNoEntry: false });
        return st ? [{ name, ino: BigInt.asUintN(64, st.ino), filetype: filetypeOf(st) }] : [];
      }),
    );
  }

  /**
   * openAt opens a regular file by a checked path. Truncation waits until the descriptor is known to
   * be a regular file inside the root, so a refused open never changes anything.
   */
  private openAt(w: Where, node: string, flags: number, truncate: boolean): OpenFile {
    const fd = openSync(w.path, flags | FILE_FLAGS, 0o666);
    this.checkFd(fd, node);
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) {
        if (st.isDirectory()) throw new FsError(E.ISDIR);
        throw notRegular(this.guestPath(node));
      }
      if (truncate) ftruncateSync(fd, 0);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return new HostFile(fd, this.readOnly);
  }

  open(node: string, flags: OpenFlags): OpenFile {
    if (flags.write || flags.truncate) this.writable();
    const acc = flags.write ? (flags.read ? C.O_RDWR : C.O_WRONLY) : C.O_RDONLY;
    return this.atNode(node, (w) => {
      // Refuse anything but a regular file before opening it: opening a device can act on its own.
      const st = lstatSync(w.path);
      if (st.isDirectory()) throw new FsError(E.ISDIR);
      if (st.isSymbolicLink()) throw new FsError(E.LOOP);
      if (!st.isFile()) throw notRegular(this.guestPath(node));
      return this.openAt(w, node, acc, flags.truncate);
    });
  }

  create(dir: string, name: string, flags: OpenFlags): OpenFile {
    this.writable();
    const acc = flags.write ? (flags.read ? C.O_RDWR : C.O_WRONLY) : C.O_RDONLY;
    return this.inDir(dir, name, (w) => this.openAt(w, join(dir, name), acc | C.O_CREAT | C.O_EXCL, false));
  }

  mkdir(dir: string, name: string): void {
    this.writable();
    this.inDir(dir, name, (w) => mkdirSync(w.path));
  }

  rmdir(dir: string, name: string): void {
    this.writable();
    this.inDir(dir, name, (w) => rmdirSync(w.path));
  }

  unlink(dir: string, name: string): void {
    this.writable();
    this.inDir(dir, name, (w) => {
      if (lstatSync(w.path).isDirectory()) throw new FsError(E.ISDIR);
      unlinkSync(w.path);
    });
  }

  symlink(target: string, dir: string, name: string): void {
    this.writable();
    this.inDir(dir, name, (w) => symlinkSync(target, w.path));
  }

  link(node: string, dir: string, name: string): void {
    this.writable();
    // link(2) does not follow a final symlink in the source, so neither name can lead elsewhere.
    this.atNode(node, (from) => this.inDir(dir, name, (to) => linkSync(from.path, to.path)));
  }

  rename(fromDir: string, fromName: string, toDir: string, toName: string): void {
    this.writable();
    this.inDir(fromDir, fromName, (from) => this.inDir(toDir, toName, (to) => renameSync(from.path, to.path)));
  }

  setTimes(node: string, atim: TimeSpec, mtim: TimeSpec): void {
    this.writable();
    this.atNode(node, (w) => {
      const st = toStat(lstatSync(w.path, { bigint: true }));
      // A time left unchanged is rewritten by utimes too, so it must survive the rounding as well.
      if (!exactViaNode(atim ?? st.atim) || !exactViaNode(mtim ?? st.mtim)) return setTimesExact(w.childPath, atim, mtim, true);
      lutimesSync(w.path, seconds(atim, st.atim), seconds(mtim, st.mtim));
    });
  }

  sameNode(a: string, b: string): boolean {
    return a === b;
  }
}

/** notRegular refuses to open a FIFO, socket or device (the note goes to the operator's log). */
function notRegular(guestPath: string): FsError {
  return new FsError(E.PERM, 'not a regular file', `refused to open "${guestPath}": only regular files and directories are opened (FIFOs, sockets and devices are not)`);
}

/** HostFile is an open host file descriptor. */
class HostFile implements OpenFile {
  private closed = false;
  constructor(private readonly fd: number, private readonly readOnly: boolean) {}
  private writable(): void {
    if (this.readOnly) throw new FsError(E.ROFS);
  }
  read(buf: Uint8Array, position: bigint): number {
    return hostCall(() => readSync(this.fd, buf, 0, buf.length, position));
  }
  write(buf: Uint8Array, position: bigint): number {
    const at = fileOffset(position);
    return hostCall(() => writeSync(this.fd, buf, 0, buf.length, at));
  }
  stat(): Stat {
    return toStat(hostCall(() => fstatSync(this.fd, { bigint: true })));
  }
  truncate(size: bigint): void {
    this.writable();
    const n = fileOffset(size);
    hostCall(() => ftruncateSync(this.fd, n));
  }
  setTimes(atim: TimeSpec, mtim: TimeSpec): void {
    this.writable();
    const st = this.stat();
    // The kernel's per-process view of the descriptor names the open file, even after a rename or unlink.
    if (!exactViaNode(atim ?? st.atim) || !exactViaNode(mtim ?? st.mtim)) return setTimesExact(`/proc/${process.pid}/fd/${this.fd}`, atim, mtim, false);
    hostCall(() => futimesSync(this.fd, seconds(atim, st.atim), seconds(mtim, st.mtim)));
  }
  allocate(offset: bigint, len: bigint): void {
    const st = this.stat();
    if (offset + len > st.size) this.truncate(offset + len);
  }
  sync(): void {
    hostCall(() => fsyncSync(this.fd));
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}
