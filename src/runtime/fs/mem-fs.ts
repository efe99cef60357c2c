import { E, FILETYPE } from '../wasi/constants.js';

import { type DirEntry, type Entry, type FsBackend, FsError, type OpenFile, type OpenFlags, type Stat, type TimeSpec } from './types.js';

/** One inode of the in-memory filesystem; hard links share the node. */
class MemNode {
  data = new Uint8Array(0);
  size = 0;
  readonly children: Map<string, MemNode> | null;
  nlink = 1n;
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
  constructor(readonly ino: bigint, readonly filetype: number, now: bigint, readonly target = '') {
    this.children = filetype === FILETYPE.DIRECTORY ? new Map() : null;
    this.atim = this.mtim = this.ctim = now;
  }
}

/** Files larger than this (bytes) are refused with EFBIG: scratch space is for small data. */
const MAX_FILE = 1 << 30;

/**
 * MemFs is scratch space with no host access: a tree of nodes in the sandbox's own heap, gone when
 * the sandbox is. It keeps nanosecond times exactly as the guest sets them.
 */
export class MemFs implements FsBackend<MemNode> {
  readonly readOnly = false;
  readonly root: MemNode;
  private nextIno = 1n;
  constructor(private readonly now: () => bigint = () => BigInt(Date.now()) * 1_000_000n) {
    this.root = this.node(FILETYPE.DIRECTORY);
  }

  private node(filetype: number, target = ''): MemNode {
    return new MemNode(this.nextIno++, filetype, this.now(), target);
  }

  private dir(dir: MemNode): Map<string, MemNode> {
    if (!dir.children) throw new FsError(E.NOTDIR);
    return dir.children;
  }

  private add(dir: MemNode, name: string, n: MemNode): void {
    const kids = this.dir(dir);
    if (kids.has(name)) throw new FsError(E.EXIST);
    kids.set(name, n);
    dir.mtim = dir.ctim = this.now();
  }

  lookup(dir: MemNode, name: string): Entry<MemNode> | null {
    const n = this.dir(dir).get(name);
    return n ? { node: n, filetype: n.filetype } : null;
  }

  readlink(node: MemNode): string {
    if (node.filetype !== FILETYPE.SYMBOLIC_LINK) throw new FsError(E.INVAL);
    return node.target;
  }

  stat(n: MemNode): Stat {
    const size = n.children ? BigInt(n.children.size) : n.filetype === FILETYPE.SYMBOLIC_LINK ? BigInt(n.target.length) : BigInt(n.size);
    return { dev: 0n, ino: n.ino, filetype: n.filetype, nlink: n.nlink, size, atim: n.atim, mtim: n.mtim, ctim: n.ctim };
  }

  readdir(dir: MemNode): DirEntry[] {
    return [...this.dir(dir)].map(([name, n]) => ({ name, ino: n.ino, filetype: n.filetype }));
  }

  open(node: MemNode, flags: OpenFlags): OpenFile {
    if (node.filetype !== FILETYPE.REGULAR_FILE) throw new FsError(node.children ? E.ISDIR : E.LOOP);
    if (flags.truncate) this.resize(node, 0);
    return this.handle(node);
  }

  create(dir: MemNode, name: string, _flags: OpenFlags): OpenFile {
    const n = this.node(FILETYPE.REGULAR_FILE);
    this.add(dir, name, n);
    return this.handle(n);
  }

  mkdir(dir: MemNode, name: string): void {
    this.add(dir, name, this.node(FILETYPE.DIRECTORY));
  }

  rmdir(dir: MemNode, name: string): void {
    const kids = this.dir(dir);
    const n = kids.get(name);
    if (!n) throw new FsError(E.NOENT);
    if (!n.children) throw new FsError(E.NOTDIR);
    if (n.children.size) throw new FsError(E.NOTEMPTY);
    kids.delete(name);
    dir.mtim = dir.ctim = this.now();
  }

  unlink(dir: MemNode, name: string): void {
    const kids = this.dir(dir);
    const n = kids.get(name);
    if (!n) throw new FsError(E.NOENT);
    if (n.children) throw new FsError(E.ISDIR);
    kids.delete(name);
    n.nlink--;
    n.ctim = dir.mtim = dir.ctim = this.now();
  }

  symlink(target: string, dir: MemNode, name: string): void {
    this.add(dir, name, this.node(FILETYPE.SYMBOLIC_LINK, target));
  }

  link(node: MemNode, dir: MemNode, name: string): void {
    if (node.children) throw new FsError(E.PERM);
    this.add(dir, name, node);
    node.nlink++;
    node.ctim = this.now();
  }

  rename(fromDir: MemNode, fromName: string, toDir: MemNode, toName: string): void {
    const src = this.dir(fromDir).get(fromName);
    if (!src) throw new FsError(E.NOENT);
    const dstKids = this.dir(toDir);
    const dst = dstKids.get(toName);
    if (dst === src) return;
    if (src.children && this.contains(src, toDir)) throw new FsError(E.INVAL);
    if (dst) {
      if (src.children && !dst.children) throw new FsError(E.NOTDIR);
      if (!src.children && dst.children) throw new FsError(E.ISDIR);
      if (dst.children && dst.children.size) throw new FsError(E.NOTEMPTY);
      dst.nlink--;
    }
    this.dir(fromDir).delete(fromName);
    dstKids.set(toName, src);
    const now = this.now();
    src.ctim = fromDir.mtim = toDir.mtim = now;
  }

  /** contains tells whether `inner` is `outer` or lies beneath it (moving a directory into itself is EINVAL). */
  private contains(outer: MemNode, inner: MemNode): boolean {
    if (outer === inner) return true;
    for (const child of outer.children?.values() ?? []) if (child.children && this.contains(child, inner)) return true;
    return false;
  }

  setTimes(n: MemNode, atim: TimeSpec, mtim: TimeSpec): void {
    const now = this.now();
    if (atim !== null) n.atim = atim === 'now' ? now : atim;
    if (mtim !== null) n.mtim = mtim === 'now' ? now : mtim;
    n.ctim = now;
  }

  sameNode(a: MemNode, b: MemNode): boolean {
    return a === b;
  }

  private resize(n: MemNode, size: number): void {
    if (size > MAX_FILE) throw new FsError(E.FBIG);
    if (size > n.data.length) {
      const grown = new Uint8Array(Math.max(size, Math.min(MAX_FILE, n.data.length * 2)));
      grown.set(n.data.subarray(0, n.size));
      n.data = grown;
    } else if (size < n.size) {
      n.data.fill(0, size, n.size);
    }
    n.size = size;
    n.mtim = n.ctim = this.now();
  }

  private handle(n: MemNode): OpenFile {
    return {
      read: (buf, position) => {
        if (position >= BigInt(n.size)) return 0;
        const pos = Number(position);
        const len = Math.min(buf.length, n.size - pos);
        buf.set(n.data.subarray(pos, pos + len));
        n.atim = this.now();
        return len;
      },
      write: (buf, position) => {
        const end = position + BigInt(buf.length);
        if (end > BigInt(MAX_FILE)) throw new FsError(E.FBIG);
        if (Number(end) > n.size) this.resize(n, Number(end));
        n.data.set(buf, Number(position));
        n.mtim = n.ctim = this.now();
        return buf.length;
      },
      stat: () => this.stat(n),
      truncate: (size) => {
        if (size > BigInt(MAX_FILE)) throw new FsError(E.FBIG);
        this.resize(n, Number(size));
      },
      setTimes: (a, m) => this.setTimes(n, a, m),
      allocate: (offset, len) => {
        const end = offset + len;
        if (end > BigInt(MAX_FILE)) throw new FsError(E.FBIG);
        if (Number(end) > n.size) this.resize(n, Number(end));
      },
      sync: () => {},
      close: () => {},
    };
  }
}
