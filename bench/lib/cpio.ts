import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * NewcArchive builds a cpio `newc` archive in memory, the format the Linux kernel unpacks as an
 * initramfs. Only what a benchmark's initramfs needs: directories, regular files, symbolic links.
 */
export class NewcArchive {
  private readonly parts: Buffer[] = [];
  private ino = 1;

  /** dir adds a directory. */
  dir(name: string, mode = 0o755): this {
    return this.entry(name, 0o040000 | mode, Buffer.alloc(0));
  }

  /** file adds a regular file. */
  file(name: string, data: Buffer | string, mode = 0o644): this {
    return this.entry(name, 0o100000 | mode, Buffer.from(data));
  }

  /** symlink adds a symbolic link to `target`. */
  symlink(name: string, target: string): this {
    return this.entry(name, 0o120000 | 0o777, Buffer.from(target));
  }

  /** tree adds a host directory's contents under `prefix` (directories, files and links; anything else is skipped). */
  tree(hostDir: string, prefix = ''): this {
    for (const n of readdirSync(hostDir).sort()) {
      const host = join(hostDir, n);
      const name = prefix ? `${prefix}/${n}` : n;
      const st = lstatSync(host);
      if (st.isDirectory()) {
        this.dir(name, st.mode & 0o7777);
        this.tree(host, name);
      } else if (st.isFile()) this.file(name, readFileSync(host), st.mode & 0o7777);
      else if (st.isSymbolicLink()) this.symlink(name, readlinkSync(host));
    }
    return this;
  }

  /** bytes ends the archive (the `TRAILER!!!` entry) and returns it. */
  bytes(): Buffer {
    this.entry('TRAILER!!!', 0, Buffer.alloc(0), 0);
    return Buffer.concat(this.parts);
  }

  private entry(name: string, mode: number, data: Buffer, ino = this.ino++): this {
    const nameBytes = Buffer.from(`${name}\0`);
    const fields = [ino, mode, 0, 0, mode >>> 12 === 0o04 ? 2 : 1, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
    const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`, 'latin1');
    this.parts.push(header, nameBytes, pad(header.length + nameBytes.length), data, pad(data.length));
    return this;
  }
}

function pad(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}
