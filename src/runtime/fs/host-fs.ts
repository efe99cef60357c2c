import {
  closeSync, constants as C, fstatSync, fsyncSync, ftruncateSync, futimesSync, linkSync, lstatSync, lutimesSync, mkdirSync,
  openSync, readdirSync, readlinkSync, readSync, realpathSync, renameSync, rmdirSync, statSync, symlinkSync, unlinkSync,
  writeSync, type BigIntStats,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, sep } from 'node:path';
import { E, FILETYPE } from '../wasi/constants.js';
import { FsError, type DirEntry, type Entry, type FsBackend, type OpenFile, type OpenFlags, type Stat, type TimeSpec } from './types.js';

const NODE_ERRNO: Record<string, number> = {
  ENOENT: E.NOENT, EEXIST: E.EXIST, ENOTDIR: E.NOTDIR, EISDIR: E.ISDIR, ENOTEMPTY: E.NOTEMPTY, EACCES: E.ACCES,
  EPERM: E.PERM, ELOOP: E.LOOP, EINVAL: E.INVAL, EXDEV: E.XDEV, ENAMETOOLONG: E.NAMETOOLONG, EROFS: E.ROFS,
  ENOSPC: E.NOSPC, EBADF: E.BADF, EMFILE: E.MFILE, ENFILE: E.NFILE, EBUSY: E.BUSY, EFBIG: E.FBIG, EIO: E.IO,
  EMLINK: E.MLINK, ETXTBSY: E.TXTBSY, EDQUOT: E.DQUOT, EAGAIN: E.AGAIN, ESPIPE: E.SPIPE, EOVERFLOW: E.OVERFLOW,
  ENXIO: E.NXIO, ENODEV: E.NODEV,
};

/** hostCall runs a node:fs call and turns its error into an FsError carrying the WASI errno. */
function hostCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FsError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    throw new FsError(NODE_ERRNO[code] ?? E.IO, (err as Error).message);
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

/**
 * HostFs exposes one host directory. Node references are absolute host paths that the shared resolver
 * built one component at a time, never following a symlink itself, so every reference lies beneath the
 * root. Opening a file also re-checks the kernel's view of the opened descriptor (`/proc/self/fd`), so a
 * directory swapped for a symlink between resolution and open cannot smuggle a file from outside in.
 * Remaining window: other path operations (mkdir, unlink, rename) act on the resolved path, so a host
 * process (not a guest) racing renames inside the tree could redirect them; guests cannot, as each runs
 * single-threaded.
 */
export class HostFs implements FsBackend<string> {
  readonly root: string;
  constructor(hostRoot: string, readonly readOnly: boolean) {
    this.root = hostCall(() => realpathSync(hostRoot));
    if (!statSync(this.root).isDirectory()) throw new FsError(E.NOTDIR, `${hostRoot} is not a directory`);
  }

  private writable(): void {
    if (this.readOnly) throw new FsError(E.ROFS);
  }

  lookup(dir: string, name: string): Entry<string> | null {
    const p = join(dir, name);
    const st = hostCall(() => lstatSync(p, { bigint: true, throwIfNoEntry: false }));
    return st ? { node: p, filetype: filetypeOf(st) } : null;
  }

  readlink(node: string): string {
    return hostCall(() => readlinkSync(node, 'utf8'));
  }

  stat(node: string): Stat {
    return toStat(hostCall(() => lstatSync(node, { bigint: true })));
  }

  readdir(dir: string): DirEntry[] {
    return hostCall(() => readdirSync(dir)).flatMap((name) => {
      const st = lstatSync(join(dir, name), { bigint: true, throwIfNoEntry: false });
      return st ? [{ name, ino: BigInt.asUintN(64, st.ino), filetype: filetypeOf(st) }] : [];
    });
  }

  private openChecked(path: string, flags: number): OpenFile {
    const fd = hostCall(() => openSync(path, flags | C.O_NOFOLLOW));
    let real: string;
    try {
      real = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      real = path;
    }
    if (real !== this.root && !real.startsWith(this.root.endsWith(sep) ? this.root : this.root + sep)) {
      closeSync(fd);
      throw new FsError(E.PERM, 'opened file lies outside the preopen');
    }
    return new HostFile(fd, this.readOnly);
  }

  open(node: string, flags: OpenFlags): OpenFile {
    if (flags.write || flags.truncate) this.writable();
    const acc = flags.write ? (flags.read ? C.O_RDWR : C.O_WRONLY) : C.O_RDONLY;
    return this.openChecked(node, acc | (flags.truncate ? C.O_TRUNC : 0));
  }

  create(dir: string, name: string, flags: OpenFlags): OpenFile {
    this.writable();
    const acc = flags.write ? (flags.read ? C.O_RDWR : C.O_WRONLY) : C.O_RDONLY;
    return this.openChecked(join(dir, name), acc | C.O_CREAT | C.O_EXCL);
  }

  mkdir(dir: string, name: string): void {
    this.writable();
    hostCall(() => mkdirSync(join(dir, name)));
  }

  rmdir(dir: string, name: string): void {
    this.writable();
    hostCall(() => rmdirSync(join(dir, name)));
  }

  unlink(dir: string, name: string): void {
    this.writable();
    const p = join(dir, name);
    const st = hostCall(() => lstatSync(p));
    if (st.isDirectory()) throw new FsError(E.ISDIR);
    hostCall(() => unlinkSync(p));
  }

  symlink(target: string, dir: string, name: string): void {
    this.writable();
    hostCall(() => symlinkSync(target, join(dir, name)));
  }

  link(node: string, dir: string, name: string): void {
    this.writable();
    hostCall(() => linkSync(node, join(dir, name)));
  }

  rename(fromDir: string, fromName: string, toDir: string, toName: string): void {
    this.writable();
    hostCall(() => renameSync(join(fromDir, fromName), join(toDir, toName)));
  }

  setTimes(node: string, atim: TimeSpec, mtim: TimeSpec): void {
    this.writable();
    const st = this.stat(node);
    // A time left unchanged is rewritten by utimes too, so it must survive the rounding as well.
    if (!exactViaNode(atim ?? st.atim) || !exactViaNode(mtim ?? st.mtim)) return setTimesExact(node, atim, mtim, true);
    hostCall(() => lutimesSync(node, seconds(atim, st.atim), seconds(mtim, st.mtim)));
  }

  sameNode(a: string, b: string): boolean {
    return a === b;
  }
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
    return hostCall(() => writeSync(this.fd, buf, 0, buf.length, Number(position)));
  }
  stat(): Stat {
    return toStat(hostCall(() => fstatSync(this.fd, { bigint: true })));
  }
  truncate(size: bigint): void {
    this.writable();
    hostCall(() => ftruncateSync(this.fd, Number(size)));
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
