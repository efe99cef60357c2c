/**
 * The small interface every file backend of the WASI host implements (a host directory beneath a
 * preopen, an in-memory filesystem). Backends know nothing about WASI rights or descriptors: they
 * look up one name at a time, and path resolution (symlinks, `..`, staying beneath the preopen) is
 * done once, for every backend, in `resolve.ts`. Failures are thrown as {@link FsError} with a WASI errno.
 */

/**
 * FsError carries a WASI errno out of a backend or the resolver. A refusal the operator should hear
 * about (something led outside a mount, a FIFO or device was refused) also carries a `note`, which the
 * host adds to the sandbox's notes (logged as a warning); notes name guest paths, never host contents.
 */
export class FsError extends Error {
  readonly errno: number;
  readonly note?: string;
  constructor(errno: number, message?: string, note?: string) {
    super(message ?? `errno ${errno}`);
    this.errno = errno;
    if (note !== undefined) this.note = note;
  }
}

/** Notes kept per run: a guest repeating a refused call must neither grow the host's memory nor flood the log. */
const MAX_NOTES = 32;
/** Longest note kept, in characters (notes quote guest-chosen paths). */
const MAX_NOTE_CHARS = 300;

/** addNote records a refusal in a run's notes: at most {@link MAX_NOTES}, then one line saying more were dropped. */
export function addNote(notes: string[], note: string): void {
  if (notes.length < MAX_NOTES) notes.push(note.length > MAX_NOTE_CHARS ? `${note.slice(0, MAX_NOTE_CHARS)}…` : note);
  else if (notes.length === MAX_NOTES) notes.push(`further refusals in this run were not recorded (more than ${MAX_NOTES})`);
}

/** Stat mirrors the WASI `filestat` record; times are nanoseconds since the epoch. */
export interface Stat {
  dev: bigint;
  ino: bigint;
  filetype: number;
  nlink: bigint;
  size: bigint;
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}

/** A directory entry as `fd_readdir` reports it (the resolver adds `.` and `..`). */
export interface DirEntry {
  name: string;
  ino: bigint;
  filetype: number;
}

/** Entry is what a lookup found: an opaque node reference and its type (symlinks are not followed). */
export interface Entry<N> {
  node: N;
  filetype: number;
}

/** A time to set: nanoseconds, the current time, or leave unchanged. */
export type TimeSpec = bigint | 'now' | null;

/** OpenFile is an open regular file (or anything readable/writable that a backend opened). */
export interface OpenFile {
  read(buf: Uint8Array, position: bigint): number;
  write(buf: Uint8Array, position: bigint): number;
  stat(): Stat;
  truncate(size: bigint): void;
  setTimes(atim: TimeSpec, mtim: TimeSpec): void;
  allocate(offset: bigint, len: bigint): void;
  sync(): void;
  close(): void;
}

/** OpenFlags asks a backend to open an existing node. */
export interface OpenFlags {
  read: boolean;
  write: boolean;
  truncate: boolean;
}

/**
 * FsBackend is one filesystem tree. `N` is the backend's node reference (a host path, an in-memory
 * node). Every name passed in is a single path component: never empty, never `.`, `..` or containing `/`.
 */
export interface FsBackend<N = unknown> {
  readonly readOnly: boolean;
  readonly root: N;
  /** lookup finds `name` in directory `dir` without following a final symlink; null when absent. */
  lookup(dir: N, name: string): Entry<N> | null;
  readlink(node: N): string;
  stat(node: N): Stat;
  readdir(dir: N): DirEntry[];
  open(node: N, flags: OpenFlags): OpenFile;
  /** create makes a new empty regular file (failing with EXIST if the name is taken) and opens it. */
  create(dir: N, name: string, flags: OpenFlags): OpenFile;
  mkdir(dir: N, name: string): void;
  rmdir(dir: N, name: string): void;
  unlink(dir: N, name: string): void;
  symlink(target: string, dir: N, name: string): void;
  link(node: N, dir: N, name: string): void;
  rename(fromDir: N, fromName: string, toDir: N, toName: string): void;
  /** setTimes changes a node's times; when the node is a symlink it changes the link itself. */
  setTimes(node: N, atim: TimeSpec, mtim: TimeSpec): void;
  /** sameNode tells whether two references name the same node (used to refuse moving a directory into itself). */
  sameNode(a: N, b: N): boolean;
}
