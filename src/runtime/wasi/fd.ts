import { FsError, type Stat } from '../fs/types.js';

import {
  ADVICE_MAX, DIRENT, E, FDFLAGS, FDSTAT, FILESTAT, FILETYPE, FSTFLAGS, IOVEC, PREOPENTYPE_DIR, PRESTAT, R, WHENCE,
} from './constants.js';
import type { Descriptor, DirDescriptor, FileDescriptor, Stream } from './fd-table.js';
import { IOV_MAX, utf8 } from './memory.js';
import type { SyscallHost as WasiHost, Syscalls } from './syscalls.js';

const FDFLAGS_ALL = FDFLAGS.APPEND | FDFLAGS.DSYNC | FDFLAGS.NONBLOCK | FDFLAGS.RSYNC | FDFLAGS.SYNC;
const FSTFLAGS_ALL = FSTFLAGS.ATIM | FSTFLAGS.ATIM_NOW | FSTFLAGS.MTIM | FSTFLAGS.MTIM_NOW;
const I64_MAX = (1n << 63n) - 1n;

/** writeStat stores a `filestat` record at ptr. */
export function writeStat(h: WasiHost, ptr: number, st: Stat): void {
  const b = h.memory.bytes(ptr, FILESTAT.SIZE);
  const dv = new DataView(b.buffer, b.byteOffset, FILESTAT.SIZE);
  b.fill(0);
  dv.setBigUint64(FILESTAT.DEV, st.dev, true);
  dv.setBigUint64(FILESTAT.INO, st.ino, true);
  dv.setUint8(FILESTAT.FILETYPE, st.filetype);
  dv.setBigUint64(FILESTAT.NLINK, st.nlink, true);
  dv.setBigUint64(FILESTAT.SIZE_, st.size, true);
  dv.setBigUint64(FILESTAT.ATIM, BigInt.asUintN(64, st.atim), true);
  dv.setBigUint64(FILESTAT.MTIM, BigInt.asUintN(64, st.mtim), true);
  dv.setBigUint64(FILESTAT.CTIM, BigInt.asUintN(64, st.ctim), true);
}

/** timeSpecs validates fstflags and turns them into the backend's time specs (EINVAL on contradictions). */
export function timeSpecs(atim: bigint, mtim: bigint, flags: number): [bigint | 'now' | null, bigint | 'now' | null] {
  if (flags & ~FSTFLAGS_ALL) throw new FsError(E.INVAL);
  if ((flags & FSTFLAGS.ATIM) && (flags & FSTFLAGS.ATIM_NOW)) throw new FsError(E.INVAL);
  if ((flags & FSTFLAGS.MTIM) && (flags & FSTFLAGS.MTIM_NOW)) throw new FsError(E.INVAL);
  const a = flags & FSTFLAGS.ATIM_NOW ? 'now' : flags & FSTFLAGS.ATIM ? BigInt.asUintN(64, atim) : null;
  const m = flags & FSTFLAGS.MTIM_NOW ? 'now' : flags & FSTFLAGS.MTIM ? BigInt.asUintN(64, mtim) : null;
  return [a, m];
}

/** statOf returns the filestat of any descriptor. */
export function statOf(d: Descriptor): Stat {
  if (d.kind === 'file') return d.file.stat();
  if (d.kind === 'dir') return d.mount.backend.stat(d.stack[d.stack.length - 1]);
  return { dev: 0n, ino: 0n, filetype: d.filetype, nlink: 1n, size: 0n, atim: 0n, mtim: 0n, ctim: 0n };
}

function asFile(d: Descriptor): FileDescriptor {
  if (d.kind === 'file') return d;
  if (d.kind === 'dir') throw new FsError(E.ISDIR);
  throw new FsError(E.SPIPE);
}

function nonNegative(n: bigint): bigint {
  if (n < 0n) throw new FsError(E.INVAL);
  return n;
}

/** readInto fills iovecs from a descriptor's current position (or a stream/socket); returns bytes read. */
function readInto(d: Descriptor, iovs: Uint8Array[], at: bigint | null): number {
  let total = 0;
  if (d.kind === 'dir') throw new FsError(E.ISDIR);
  for (const iov of iovs) {
    if (iov.length === 0) continue;
    let n: number;
    if (d.kind === 'file') {
      const pos = at ?? d.position;
      n = d.file.read(iov, pos + BigInt(total));
    } else if (d.kind === 'stream') {
      if (!d.stream.read) throw new FsError(E.BADF);
      n = d.stream.read(iov);
    } else {
      if (!d.socket.recv) throw new FsError(E.NOTSUP);
      n = d.socket.recv(iov, false);
      if (n < 0) {
        if (total > 0) break;
        throw new FsError(E.AGAIN);
      }
    }
    total += n;
    if (n < iov.length) break;
  }
  if (d.kind === 'file' && at === null) d.position += BigInt(total);
  return total;
}

/**
 * writeStreamRanges is fd_write for a stream that copies ranges itself (captured stdout/stderr): the
 * same checks as iovecs() (count, bounds, byte budget), without building a view per iovec.
 */
function writeStreamRanges(h: WasiHost, stream: Stream, iovs: number, count: number, out: number): number {
  const m = h.memory;
  iovs >>>= 0;
  count >>>= 0;
  if (count > IOV_MAX) throw new FsError(E.INVAL);
  m.check(iovs, count * IOVEC.SIZE);
  const dv = m.dv;
  // Every iovec is checked before any byte is written, as when they are resolved up front.
  let total = 0;
  for (let i = 0; i < count; i++) {
    const base = iovs + i * IOVEC.SIZE;
    const len = dv.getUint32(base + IOVEC.LEN, true);
    m.take(dv.getUint32(base + IOVEC.BUF, true), len);
    total += len;
  }
  const u8 = m.u8;
  for (let i = 0; i < count; i++) {
    const base = iovs + i * IOVEC.SIZE;
    const len = dv.getUint32(base + IOVEC.LEN, true);
    if (len > 0) stream.writeRange!(u8, dv.getUint32(base + IOVEC.BUF, true), len);
  }
  m.u32(out, total);
  return E.SUCCESS;
}

/** writeFrom writes iovecs to a descriptor, honouring append mode and the write quota. */
function writeFrom(h: WasiHost, d: Descriptor, iovs: Uint8Array[], at: bigint | null): number {
  if (d.kind === 'dir') throw new FsError(E.ISDIR);
  let total = 0;
  if (d.kind === 'file') {
    let pos = at ?? (d.fdflags & FDFLAGS.APPEND ? d.file.stat().size : d.position);
    for (const iov of iovs) {
      if (iov.length === 0) continue;
      const budget = h.state.writeBudget;
      if (budget <= 0) {
        if (total > 0) break;
        throw new FsError(E.DQUOT);
      }
      const chunk = iov.length > budget ? iov.subarray(0, budget) : iov;
      const n = d.file.write(chunk, pos);
      h.state.writeBudget -= n;
      total += n;
      pos += BigInt(n);
      if (n < iov.length) break;
    }
    if (at === null) d.position = pos;
    return total;
  }
  for (const iov of iovs) {
    if (iov.length === 0) continue;
    let n: number;
    if (d.kind === 'stream') {
      if (!d.stream.write) throw new FsError(E.BADF);
      n = d.stream.write(iov);
    } else {
      if (!d.socket.send) throw new FsError(E.NOTSUP);
      n = d.socket.send(iov);
    }
    total += n;
    if (n < iov.length) break;
  }
  return total;
}

/** dirEntries lists a directory with `.` and `..` first, cached on the descriptor from cookie 0 on. */
function dirEntries(d: DirDescriptor & { listing?: Array<{ name: Uint8Array; ino: bigint; filetype: number }> }, cookie: bigint) {
  if (cookie === 0n || !d.listing) {
    const b = d.mount.backend;
    const here = d.stack[d.stack.length - 1];
    const parent = d.stack.length > 1 ? d.stack[d.stack.length - 2] : here;
    d.listing = [
      { name: utf8('.'), ino: b.stat(here).ino, filetype: FILETYPE.DIRECTORY },
      { name: utf8('..'), ino: b.stat(parent).ino, filetype: FILETYPE.DIRECTORY },
      ...b.readdir(here).map((e) => ({ name: utf8(e.name), ino: e.ino, filetype: e.filetype })),
    ];
  }
  return d.listing;
}

/** fdCalls implements every `fd_*` function. */
export const fdCalls: Syscalls = {
  fd_advise: (h: WasiHost, fd: number, offset: bigint, len: bigint, advice: number) => {
    const d = h.state.fds.require(fd, R.FD_ADVISE);
    if (advice < 0 || advice > ADVICE_MAX) return E.INVAL;
    nonNegative(offset);
    nonNegative(len);
    asFile(d);
    return E.SUCCESS;
  },
  fd_allocate: (h: WasiHost, fd: number, offset: bigint, len: bigint) => {
    const d = asFile(h.state.fds.require(fd, R.FD_ALLOCATE));
    if (nonNegative(offset) + nonNegative(len) > I64_MAX || len === 0n) return E.INVAL;
    const size = d.file.stat().size;
    const grow = offset + len - size;
    if (grow > 0n) {
      if (BigInt(Math.min(h.state.writeBudget, Number.MAX_SAFE_INTEGER)) < grow) return E.DQUOT;
      d.file.allocate(offset, len);
      h.state.writeBudget -= Number(grow);
    }
    return E.SUCCESS;
  },
  fd_close: (h: WasiHost, fd: number) => {
    const d = h.state.fds.remove(fd);
    if (d.kind === 'file') d.file.close();
    else if (d.kind === 'socket') d.socket.close();
    return E.SUCCESS;
  },
  fd_datasync: (h: WasiHost, fd: number) => {
    const d = h.state.fds.require(fd, R.FD_DATASYNC);
    if (d.kind === 'file') d.file.sync();
    else if (d.kind !== 'dir') return E.INVAL;
    return E.SUCCESS;
  },
  fd_sync: (h: WasiHost, fd: number) => {
    const d = h.state.fds.require(fd, R.FD_SYNC);
    if (d.kind === 'file') d.file.sync();
    else if (d.kind !== 'dir') return E.INVAL;
    return E.SUCCESS;
  },
  fd_fdstat_get: (h: WasiHost, fd: number, out: number) => {
    const d = h.state.fds.get(fd);
    const b = h.memory.bytes(out, FDSTAT.SIZE);
    const dv = new DataView(b.buffer, b.byteOffset, FDSTAT.SIZE);
    b.fill(0);
    dv.setUint8(FDSTAT.FILETYPE, d.filetype);
    dv.setUint16(FDSTAT.FLAGS, d.fdflags, true);
    dv.setBigUint64(FDSTAT.RIGHTS_BASE, d.rightsBase, true);
    dv.setBigUint64(FDSTAT.RIGHTS_INHERITING, d.rightsInheriting, true);
    return E.SUCCESS;
  },
  fd_fdstat_set_flags: (h: WasiHost, fd: number, flags: number) => {
    const d = h.state.fds.require(fd, R.FD_FDSTAT_SET_FLAGS);
    if (flags & ~FDFLAGS_ALL) return E.INVAL;
    d.fdflags = flags;
    return E.SUCCESS;
  },
  fd_fdstat_set_rights: (h: WasiHost, fd: number, base: bigint, inheriting: bigint) => {
    const d = h.state.fds.get(fd);
    const b = BigInt.asUintN(64, base);
    const i = BigInt.asUintN(64, inheriting);
    // Rights can only ever be dropped, never regained.
    if ((b & ~d.rightsBase) !== 0n || (i & ~d.rightsInheriting) !== 0n) return E.NOTCAPABLE;
    d.rightsBase = b;
    d.rightsInheriting = i;
    return E.SUCCESS;
  },
  fd_filestat_get: (h: WasiHost, fd: number, out: number) => {
    const d = h.state.fds.require(fd, R.FD_FILESTAT_GET);
    writeStat(h, out, statOf(d));
    return E.SUCCESS;
  },
  fd_filestat_set_size: (h: WasiHost, fd: number, size: bigint) => {
    const d = h.state.fds.require(fd, R.FD_FILESTAT_SET_SIZE);
    if (d.kind !== 'file') return d.kind === 'dir' ? E.ISDIR : E.INVAL;
    if (size < 0n) return E.INVAL;
    const grow = size - d.file.stat().size;
    if (grow > 0n && BigInt(Math.min(h.state.writeBudget, Number.MAX_SAFE_INTEGER)) < grow) return E.DQUOT;
    d.file.truncate(size);
    if (grow > 0n) h.state.writeBudget -= Number(grow);
    return E.SUCCESS;
  },
  fd_filestat_set_times: (h: WasiHost, fd: number, atim: bigint, mtim: bigint, flags: number) => {
    const d = h.state.fds.require(fd, R.FD_FILESTAT_SET_TIMES);
    const [a, m] = timeSpecs(atim, mtim, flags);
    if (d.kind === 'file') d.file.setTimes(a, m);
    else if (d.kind === 'dir') d.mount.backend.setTimes(d.stack[d.stack.length - 1], a, m);
    else return E.BADF;
    return E.SUCCESS;
  },
  fd_pread: (h: WasiHost, fd: number, iovs: number, n: number, offset: bigint, out: number) => {
    const d = h.state.fds.require(fd, R.FD_READ | R.FD_SEEK);
    if (d.kind !== 'file' && d.kind !== 'dir') return E.SPIPE;
    const list = h.memory.iovecs(iovs, n);
    h.memory.u32(out, readInto(d, list, nonNegative(offset)));
    return E.SUCCESS;
  },
  fd_pwrite: (h: WasiHost, fd: number, iovs: number, n: number, offset: bigint, out: number) => {
    const d = h.state.fds.require(fd, R.FD_WRITE | R.FD_SEEK);
    if (d.kind !== 'file' && d.kind !== 'dir') return E.SPIPE;
    const list = h.memory.iovecs(iovs, n);
    h.memory.u32(out, writeFrom(h, d, list, nonNegative(offset)));
    return E.SUCCESS;
  },
  fd_read: (h: WasiHost, fd: number, iovs: number, n: number, out: number) => {
    const d = h.state.fds.require(fd, R.FD_READ);
    const list = h.memory.iovecs(iovs, n);
    h.memory.u32(out, readInto(d, list, null));
    return E.SUCCESS;
  },
  fd_write: (h: WasiHost, fd: number, iovs: number, n: number, out: number) => {
    const d = h.state.fds.require(fd, R.FD_WRITE);
    if (d.kind === 'stream' && d.stream.writeRange) return writeStreamRanges(h, d.stream, iovs, n, out);
    const list = h.memory.iovecs(iovs, n);
    h.memory.u32(out, writeFrom(h, d, list, null));
    return E.SUCCESS;
  },
  fd_prestat_get: (h: WasiHost, fd: number, out: number) => {
    const d = h.state.fds.get(fd);
    if (d.kind !== 'dir' || d.preopen === undefined) return E.BADF;
    h.memory.check(out >>> 0, PRESTAT.SIZE);
    h.memory.dv.setUint8(out + PRESTAT.TAG, PREOPENTYPE_DIR);
    h.memory.u32(out + PRESTAT.NAME_LEN, utf8(d.preopen).length);
    return E.SUCCESS;
  },
  fd_prestat_dir_name: (h: WasiHost, fd: number, ptr: number, len: number) => {
    const d = h.state.fds.get(fd);
    if (d.kind !== 'dir' || d.preopen === undefined) return E.BADF;
    const name = utf8(d.preopen);
    if ((len >>> 0) < name.length) return E.NAMETOOLONG;
    h.memory.bytes(ptr, name.length).set(name);
    return E.SUCCESS;
  },
  fd_readdir: (h: WasiHost, fd: number, buf: number, len: number, cookie: bigint, out: number) => {
    const d = h.state.fds.require(fd, R.FD_READDIR);
    if (d.kind !== 'dir') return E.NOTDIR;
    const entries = dirEntries(d, BigInt.asUintN(64, cookie));
    const dst = h.memory.bytes(buf, len);
    const header = new Uint8Array(DIRENT.SIZE);
    const hv = new DataView(header.buffer);
    let used = 0;
    for (let i = Number(BigInt.asUintN(64, cookie)); i < entries.length && used < dst.length; i++) {
      const e = entries[i]!;
      header.fill(0);
      hv.setBigUint64(DIRENT.NEXT, BigInt(i + 1), true);
      hv.setBigUint64(DIRENT.INO, e.ino, true);
      hv.setUint32(DIRENT.NAMLEN, e.name.length, true);
      hv.setUint8(DIRENT.TYPE, e.filetype);
      // A record that does not fit is truncated: bufused == buf_len tells the guest to call again.
      for (const part of [header, e.name]) {
        const n = Math.min(part.length, dst.length - used);
        dst.set(part.subarray(0, n), used);
        used += n;
      }
    }
    h.memory.u32(out, used);
    return E.SUCCESS;
  },
  fd_renumber: (h: WasiHost, from: number, to: number) => {
    const old = h.state.fds.renumber(from, to);
    if (old?.kind === 'file') old.file.close();
    else if (old?.kind === 'socket') old.socket.close();
    return E.SUCCESS;
  },
  fd_seek: (h: WasiHost, fd: number, offset: bigint, whence: number, out: number) => {
    const needed = offset === 0n && whence === WHENCE.CUR ? R.FD_TELL : R.FD_SEEK;
    const d0 = h.state.fds.get(fd);
    if (d0.kind === 'dir') return E.BADF;
    if ((d0.rightsBase & needed) === 0n && (d0.rightsBase & R.FD_SEEK) === 0n) return E.BADF;
    const d = asFile(d0);
    let base: bigint;
    if (whence === WHENCE.SET) base = 0n;
    else if (whence === WHENCE.CUR) base = d.position;
    else if (whence === WHENCE.END) base = d.file.stat().size;
    else return E.INVAL;
    const next = base + offset;
    if (next < 0n || next > I64_MAX) return E.INVAL;
    d.position = next;
    h.memory.u64(out, next);
    return E.SUCCESS;
  },
  fd_tell: (h: WasiHost, fd: number, out: number) => {
    if (h.state.fds.get(fd).kind === 'dir') return E.BADF;
    const d0 = h.state.fds.require(fd, R.FD_TELL);
    h.memory.u64(out, asFile(d0).position);
    return E.SUCCESS;
  },
};
