import { readSync } from 'node:fs';

/**
 * readFully reads up to `size` bytes from the start of an open file (the size fstat gave), stopping
 * early if the file shrank meanwhile; what it returns is what was actually read.
 */
export function readFully(fd: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}
