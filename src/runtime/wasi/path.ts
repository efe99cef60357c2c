import { dirStackOf, isSelf, resolve, type Resolved } from '../fs/resolve.js';
import { addNote, FsError } from '../fs/types.js';

import { E, FDFLAGS, FILETYPE, LOOKUP_SYMLINK_FOLLOW, OFLAGS, R, RIGHTS_DIR, RIGHTS_FILE } from './constants.js';
import { timeSpecs, writeStat } from './fd.js';
import type { DirDescriptor } from './fd-table.js';
import type { SyscallHost as WasiHost, Syscalls } from './syscalls.js';

const OFLAGS_ALL = OFLAGS.CREAT | OFLAGS.DIRECTORY | OFLAGS.EXCL | OFLAGS.TRUNC;
const FDFLAGS_ALL = FDFLAGS.APPEND | FDFLAGS.DSYNC | FDFLAGS.NONBLOCK | FDFLAGS.RSYNC | FDFLAGS.SYNC;

// A directory without the right for a path operation (a read-only preopen, or rights the guest
// dropped) refuses it with EPERM, as the official wasi-testsuite expects.
function dir(h: WasiHost, fd: number, rights: bigint): DirDescriptor {
  const d = h.state.fds.get(fd);
  if (d.kind !== 'dir') throw new FsError(E.NOTDIR);
  if ((d.rightsBase & rights) !== rights) throw new FsError(E.PERM);
  return d;
}

function at(h: WasiHost, d: DirDescriptor, ptr: number, len: number, follow: boolean): Resolved {
  const path = h.memory.string(ptr, len);
  // A directory descriptor resolves beneath itself, exactly like openat2(RESOLVE_BENEATH).
  return resolve(d.mount.backend, [d.stack[d.stack.length - 1]], path, follow, h.state.notes);
}

function top(r: Resolved): unknown {
  return r.parent[r.parent.length - 1];
}

function writable(d: DirDescriptor): void {
  if (d.mount.readOnly) throw new FsError(E.ROFS);
}

/** fullStack turns a resolution made from a descriptor into a chain from the mount root. */
function fullStack(d: DirDescriptor, chain: unknown[]): unknown[] {
  return [...d.stack.slice(0, -1), ...chain];
}

/** pathCalls implements every `path_*` function on top of the shared resolver and the file backends. */
export const pathCalls: Syscalls = {
  path_create_directory: (h: WasiHost, fd: number, ptr: number, len: number) => {
    const d = dir(h, fd, R.PATH_CREATE_DIRECTORY);
    writable(d);
    const r = at(h, d, ptr, len, false);
    if (isSelf(r) || r.entry) return E.EXIST;
    d.mount.backend.mkdir(top(r), r.name);
    return E.SUCCESS;
  },
  path_filestat_get: (h: WasiHost, fd: number, flags: number, ptr: number, len: number, out: number) => {
    const d = dir(h, fd, R.PATH_FILESTAT_GET);
    const r = at(h, d, ptr, len, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    if (!r.entry) return E.NOENT;
    writeStat(h, out, d.mount.backend.stat(r.entry.node));
    return E.SUCCESS;
  },
  path_filestat_set_times: (h: WasiHost, fd: number, flags: number, ptr: number, len: number, atim: bigint, mtim: bigint, fst: number) => {
    const d = dir(h, fd, R.PATH_FILESTAT_SET_TIMES);
    const [a, m] = timeSpecs(atim, mtim, fst);
    const r = at(h, d, ptr, len, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    if (!r.entry) return E.NOENT;
    writable(d);
    d.mount.backend.setTimes(r.entry.node, a, m);
    return E.SUCCESS;
  },
  path_link: (h: WasiHost, oldFd: number, oldFlags: number, oldPtr: number, oldLen: number, newFd: number, newPtr: number, newLen: number) => {
    const src = dir(h, oldFd, R.PATH_LINK_SOURCE);
    const dst = dir(h, newFd, R.PATH_LINK_TARGET);
    const from = at(h, src, oldPtr, oldLen, (oldFlags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    if (!from.entry) return E.NOENT;
    if (from.entry.filetype === FILETYPE.DIRECTORY) return E.PERM;
    const to = at(h, dst, newPtr, newLen, false);
    if (isSelf(to) || to.entry) return E.EXIST;
    if (to.trailingSlash) return E.NOENT;
    if (src.mount.backend !== dst.mount.backend) return E.XDEV;
    writable(dst);
    dst.mount.backend.link(from.entry.node, top(to), to.name);
    return E.SUCCESS;
  },
  path_open: (h: WasiHost, fd: number, dirflags: number, ptr: number, len: number, oflags: number, base: bigint, _inheriting: bigint, fdflags: number, out: number) => {
    const d = dir(h, fd, R.PATH_OPEN);
    if (oflags & ~OFLAGS_ALL || fdflags & ~FDFLAGS_ALL) return E.INVAL;
    h.memory.check(out >>> 0, 4);
    base = BigInt.asUintN(64, base);
    if (oflags & OFLAGS.CREAT && (d.rightsBase & R.PATH_CREATE_FILE) === 0n) return E.PERM;
    if (oflags & OFLAGS.TRUNC && (d.rightsBase & R.PATH_FILESTAT_SET_SIZE) === 0n) return E.PERM;
    // Reading or writing is the one thing a descriptor cannot do without: asking for it where the
    // directory cannot pass it on is refused now; any other right asked for is just not granted.
    for (const right of [R.FD_READ, R.FD_WRITE]) {
      if (base & right && (d.rightsInheriting & right) === 0n) return E.PERM;
    }
    const r = at(h, d, ptr, len, (dirflags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    const be = d.mount.backend;
    const wantWrite = (base & (R.FD_WRITE | R.FD_ALLOCATE | R.FD_FILESTAT_SET_SIZE)) !== 0n || (oflags & OFLAGS.TRUNC) !== 0;
    const wantRead = (base & (R.FD_READ | R.FD_READDIR)) !== 0n;
    // Files get what was asked for, within what the directory passes on. Directories get the
    // directory rights of the one they were opened from: programs routinely ask for too little
    // (wasi-libc, Rust std), and a subdirectory can never hold more than its opener.
    const rightsBase = base & d.rightsInheriting;
    if (!r.entry) {
      if (!(oflags & OFLAGS.CREAT)) return E.NOENT;
      if (oflags & OFLAGS.DIRECTORY) return E.INVAL;
      if (r.trailingSlash) return E.ISDIR;
      writable(d);
      const file = be.create(top(r), r.name, { read: wantRead, write: wantWrite, truncate: false });
      return add(h, out, file, { kind: 'file', file, position: 0n, mount: d.mount, filetype: FILETYPE.REGULAR_FILE, rightsBase: rightsBase & RIGHTS_FILE, rightsInheriting: 0n, fdflags });
    }
    if (oflags & OFLAGS.CREAT && oflags & OFLAGS.EXCL) return E.EXIST;
    if (r.entry.filetype === FILETYPE.SYMBOLIC_LINK) return E.LOOP;
    if (r.entry.filetype === FILETYPE.DIRECTORY) {
      if (oflags & OFLAGS.TRUNC || base & R.FD_WRITE) return E.ISDIR;
      const nfd = h.state.fds.add({
        kind: 'dir', mount: d.mount, stack: fullStack(d, dirStackOf(r)),
        filetype: FILETYPE.DIRECTORY, rightsBase: d.rightsBase & RIGHTS_DIR, rightsInheriting: d.rightsInheriting, fdflags,
      });
      h.memory.u32(out, nfd);
      return E.SUCCESS;
    }
    if (oflags & OFLAGS.DIRECTORY) return E.NOTDIR;
    if (wantWrite) writable(d);
    const file = be.open(r.entry.node, { read: wantRead, write: wantWrite, truncate: (oflags & OFLAGS.TRUNC) !== 0 });
    return add(h, out, file, { kind: 'file', file, position: 0n, mount: d.mount, filetype: r.entry.filetype, rightsBase: rightsBase & RIGHTS_FILE, rightsInheriting: 0n, fdflags });
  },
  path_readlink: (h: WasiHost, fd: number, ptr: number, len: number, buf: number, bufLen: number, out: number) => {
    const d = dir(h, fd, R.PATH_READLINK);
    const r = at(h, d, ptr, len, false);
    if (!r.entry) return E.NOENT;
    if (r.entry.filetype !== FILETYPE.SYMBOLIC_LINK) return E.INVAL;
    const target = new TextEncoder().encode(d.mount.backend.readlink(r.entry.node));
    // Like POSIX readlink: a short buffer gets a truncated target, and bufused says how much.
    const n = Math.min(target.length, bufLen >>> 0);
    h.memory.bytes(buf, n).set(target.subarray(0, n));
    h.memory.u32(out, n);
    return E.SUCCESS;
  },
  path_remove_directory: (h: WasiHost, fd: number, ptr: number, len: number) => {
    const d = dir(h, fd, R.PATH_REMOVE_DIRECTORY);
    const r = at(h, d, ptr, len, false);
    if (r.name === '.') return E.INVAL;
    if (r.name === '..') return E.NOTEMPTY;
    if (!r.entry) return E.NOENT;
    if (r.entry.filetype !== FILETYPE.DIRECTORY) return E.NOTDIR;
    writable(d);
    d.mount.backend.rmdir(top(r), r.name);
    return E.SUCCESS;
  },
  path_rename: (h: WasiHost, fd: number, oldPtr: number, oldLen: number, newFd: number, newPtr: number, newLen: number) => {
    const src = dir(h, fd, R.PATH_RENAME_SOURCE);
    const dst = dir(h, newFd, R.PATH_RENAME_TARGET);
    const from = at(h, src, oldPtr, oldLen, false);
    const to = at(h, dst, newPtr, newLen, false);
    if (isSelf(from) || isSelf(to)) return E.BUSY;
    if (!from.entry) return E.NOENT;
    if (src.mount.backend !== dst.mount.backend) return E.XDEV;
    if (to.trailingSlash && from.entry.filetype !== FILETYPE.DIRECTORY) return E.NOTDIR;
    writable(src);
    writable(dst);
    src.mount.backend.rename(top(from), from.name, top(to), to.name);
    return E.SUCCESS;
  },
  path_symlink: (h: WasiHost, oldPtr: number, oldLen: number, fd: number, newPtr: number, newLen: number) => {
    const d = dir(h, fd, R.PATH_SYMLINK);
    const target = h.memory.string(oldPtr, oldLen);
    if (target.includes('\0')) return E.ILSEQ;
    if (target.startsWith('/')) {
      addNote(h.state.notes, `refused to create a symlink with the absolute target "${target}"`);
      return E.PERM;
    }
    const r = at(h, d, newPtr, newLen, false);
    if (isSelf(r) || r.entry) return E.EXIST;
    if (r.trailingSlash) return E.NOENT;
    writable(d);
    d.mount.backend.symlink(target, top(r), r.name);
    return E.SUCCESS;
  },
  path_unlink_file: (h: WasiHost, fd: number, ptr: number, len: number) => {
    const d = dir(h, fd, R.PATH_UNLINK_FILE);
    const r = at(h, d, ptr, len, false);
    if (isSelf(r)) return E.ISDIR;
    if (!r.entry) return E.NOENT;
    if (r.entry.filetype === FILETYPE.DIRECTORY) return E.ISDIR;
    writable(d);
    d.mount.backend.unlink(top(r), r.name);
    return E.SUCCESS;
  },
};

/** add installs a freshly opened file, closing it again if the descriptor quota is exhausted. */
function add(h: WasiHost, out: number, file: { close(): void }, desc: Parameters<WasiHost['state']['fds']['add']>[0]): number {
  let nfd: number;
  try {
    nfd = h.state.fds.add(desc);
  } catch (err) {
    file.close();
    throw err;
  }
  h.memory.u32(out, nfd);
  return E.SUCCESS;
}
