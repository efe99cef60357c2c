import { type FsBackend, FsError, type OpenFile } from '../fs/types.js';

import { E } from './constants.js';

/** Stream is a byte stream the host grants as stdio: reads return 0 at end of input. */
export interface Stream {
  read?(buf: Uint8Array): number;
  write?(buf: Uint8Array): number;
  /**
   * Optional: write `len` bytes of `mem` from `start`, all of them (or throw). fd_write uses it to copy
   * straight out of guest memory without a view per iovec (a WAGI response is often a dozen pieces).
   */
  writeRange?(mem: Uint8Array, start: number, len: number): void;
  /** bytes that can be read without blocking; 0 means end of input or nothing pending. */
  available?(): number;
  /** A terminal is reported as a character device (libc's isatty); anything else as an unknown stream. */
  isTerminal?: boolean;
}

/** SocketLike is a connected stream socket or a listener the host granted to the guest. */
export interface SocketLike {
  /** accept returns the next pending connection, or null when none is waiting (EAGAIN). */
  accept?(): SocketLike | null;
  /** recv fills buf; returns bytes read, 0 at end of stream, or -1 when nothing is pending (EAGAIN). */
  recv?(buf: Uint8Array, peek: boolean): number;
  send?(buf: Uint8Array): number;
  shutdown(read: boolean, write: boolean): void;
  /** readable: data or a connection pending (or the peer hung up). */
  readable(): boolean;
  close(): void;
}

/** Mount is one preopened tree: a backend and whether the guest may change it. */
export interface Mount {
  guest: string;
  backend: FsBackend<unknown>;
  readOnly: boolean;
}

interface DescriptorBase {
  filetype: number;
  rightsBase: bigint;
  rightsInheriting: bigint;
  fdflags: number;
}

/** An open regular file (or other non-directory node opened by path). */
export interface FileDescriptor extends DescriptorBase {
  kind: 'file';
  file: OpenFile;
  position: bigint;
  mount: Mount;
}

/** A directory: its mount and the chain of directories from the mount root (needed to honour `..`). */
export interface DirDescriptor extends DescriptorBase {
  kind: 'dir';
  mount: Mount;
  stack: unknown[];
  /** Set for preopens: the guest path `fd_prestat_dir_name` reports. */
  preopen?: string;
}

export interface StreamDescriptor extends DescriptorBase {
  kind: 'stream';
  stream: Stream;
}

export interface SocketDescriptor extends DescriptorBase {
  kind: 'socket';
  socket: SocketLike;
}

/** Descriptor is one entry of a sandbox's descriptor table. */
export type Descriptor = FileDescriptor | DirDescriptor | StreamDescriptor | SocketDescriptor;

/**
 * FdTable maps descriptor numbers to descriptors for one sandbox, hands out the lowest free number,
 * and enforces the descriptor quota (EMFILE).
 */
export class FdTable {
  private readonly slots: Array<Descriptor | undefined> = [];
  private count = 0;
  constructor(private readonly maxOpen: number) {}

  get(fd: number): Descriptor {
    const d = fd >= 0 ? this.slots[fd] : undefined;
    if (!d) throw new FsError(E.BADF);
    return d;
  }

  /**
   * require returns the descriptor after checking it holds every right in `rights`. A missing right is
   * EBADF, as POSIX reports writing to a read-only descriptor and as the official wasi-testsuite expects.
   */
  require(fd: number, rights: bigint): Descriptor {
    const d = this.get(fd);
    if ((d.rightsBase & rights) !== rights) throw new FsError(E.BADF);
    return d;
  }

  add(d: Descriptor): number {
    if (this.count >= this.maxOpen) throw new FsError(E.MFILE);
    let fd = 0;
    while (this.slots[fd]) fd++;
    this.slots[fd] = d;
    this.count++;
    return fd;
  }

  /** set places a descriptor at a fixed number (stdio, preopens). */
  set(fd: number, d: Descriptor): void {
    if (!this.slots[fd]) this.count++;
    this.slots[fd] = d;
  }

  remove(fd: number): Descriptor {
    const d = this.get(fd);
    this.slots[fd] = undefined;
    this.count--;
    return d;
  }

  /** renumber moves `from` onto `to`, closing whatever `to` held. */
  renumber(from: number, to: number): Descriptor | undefined {
    const d = this.get(from);
    const old = this.get(to);
    if (from === to) return undefined;
    this.slots[to] = d;
    this.slots[from] = undefined;
    this.count--;
    return old;
  }

  /** all lists open descriptors (used to close everything when the sandbox ends). */
  all(): Descriptor[] {
    const out: Descriptor[] = [];
    for (const d of this.slots) if (d !== undefined) out.push(d);
    return out;
  }
}
