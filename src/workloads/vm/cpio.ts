import { type FileHandle, open } from 'node:fs/promises';

/** File type bits of a cpio `mode` (the same as st_mode's). */
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;

/** CpioEntry is the metadata of one archive member; `name` is relative, without a leading `/`. */
export interface CpioEntry {
  name: string;
  /** Type bits and permissions, as st_mode. */
  mode: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch. */
  mtime?: number;
  rdevMajor?: number;
  rdevMinor?: number;
}

const FLUSH_BYTES = 1 << 20;
const COPY_CHUNK = 1 << 20;

/**
 * CpioWriter writes a `newc` (SVR4, no CRC) cpio archive, the format the Linux kernel unpacks as an
 * initramfs. Every member gets its own inode number and one link: hard links in the source become
 * copies, which the kernel's unpacker never has to match up.
 *
 * @example
 * const w = await CpioWriter.create('/tmp/initrd.cpio');
 * await w.directory({ name: 'bin', mode: 0o755 });
 * await w.file({ name: 'bin/hello', mode: 0o755 }, Buffer.from('#!/bin/sh\necho hi\n'));
 * await w.close();
 */
export class CpioWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private offset = 0;
  private ino = 1;
  private closed = false;

  private constructor(private readonly fh: FileHandle) {}

  /** create opens (truncating) the archive file at `path`. */
  static async create(path: string, mode = 0o600): Promise<CpioWriter> {
    return new CpioWriter(await open(path, 'w', mode));
  }

  /** bytes is the archive's length so far. */
  get bytes(): number {
    return this.offset;
  }

  directory(e: CpioEntry): Promise<void> {
    return this.member({ ...e, mode: S_IFDIR | (e.mode & 0o7777) }, 0, 2);
  }

  async file(e: CpioEntry, data: Buffer): Promise<void> {
    await this.member({ ...e, mode: S_IFREG | (e.mode & 0o7777) }, data.length, 1);
    await this.push(data);
    await this.pad();
  }

  /** fileFrom copies `size` bytes of the host file at `source` as the member's content. */
  async fileFrom(e: CpioEntry, source: string, size: number): Promise<void> {
    await this.member({ ...e, mode: S_IFREG | (e.mode & 0o7777) }, size, 1);
    const src = await open(source, 'r');
    try {
      let done = 0;
      while (done < size) {
        const chunk = Buffer.allocUnsafe(Math.min(COPY_CHUNK, size - done));
        const { bytesRead } = await src.read(chunk, 0, chunk.length, done);
        if (bytesRead === 0) throw new Error(`${source} shrank while it was being archived (expected ${size} bytes, got ${done})`);
        await this.push(bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead));
        done += bytesRead;
      }
    } finally {
      await src.close();
    }
    await this.pad();
  }

  async symlink(e: CpioEntry, target: string): Promise<void> {
    const data = Buffer.from(target);
    await this.member({ ...e, mode: S_IFLNK | 0o777 }, data.length, 1);
    await this.push(data);
    await this.pad();
  }

  charDevice(e: CpioEntry): Promise<void> {
    return this.member({ ...e, mode: S_IFCHR | (e.mode & 0o7777) }, 0, 1);
  }

  /** close writes the trailer, flushes and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.member({ name: 'TRAILER!!!', mode: 0 }, 0, 1, 0);
    await this.flush();
    this.closed = true;
    await this.fh.close();
  }

  /** abort closes the file without a trailer (the caller removes it). */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    await this.fh.close();
  }

  private async member(e: CpioEntry, size: number, nlink: number, ino = this.ino++): Promise<void> {
    if (e.name.startsWith('/') || e.name.includes('\0')) throw new Error(`cpio member name ${JSON.stringify(e.name)} must be relative and contain no NUL`);
    const name = Buffer.from(e.name + '\0');
    const fields = [ino, e.mode, e.uid ?? 0, e.gid ?? 0, nlink, e.mtime ?? 0, size, 0, 0, e.rdevMajor ?? 0, e.rdevMinor ?? 0, name.length, 0];
    const header = '070701' + fields.map((n) => (n >>> 0).toString(16).padStart(8, '0')).join('');
    await this.push(Buffer.from(header, 'latin1'));
    await this.push(name);
    await this.pad();
  }

  private async pad(): Promise<void> {
    const rest = this.offset % 4;
    if (rest) await this.push(Buffer.alloc(4 - rest));
  }

  private async push(b: Buffer): Promise<void> {
    this.pending.push(b);
    this.pendingBytes += b.length;
    this.offset += b.length;
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (!this.pending.length) return;
    const all = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    let done = 0;
    while (done < all.length) done += (await this.fh.write(all, done, all.length - done)).bytesWritten;
  }
}
