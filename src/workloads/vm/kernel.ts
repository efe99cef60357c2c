import { createHash } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import { startWorker } from '../../util/worker.js';

const LZ4_LEGACY_MAGIC = 0x184c2102;
const LZ4_LEGACY_BLOCK = 8 << 20;
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08]);
const PT_NOTE = 4;
const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/**
 * lz4Block decompresses one LZ4 block (the format inside the kernel's legacy LZ4 frame).
 * Hand-written because Node has no LZ4 and the Debian cloud kernel is LZ4-compressed.
 */
export function lz4Block(src: Buffer, out: Buffer, outPos: number): number {
  let i = 0;
  let o = outPos;
  while (i < src.length) {
    const token = src[i++]!;
    let lit = token >> 4;
    if (lit === 15) {
      let b: number;
      do lit += b = src[i++]!;
      while (b === 255);
    }
    src.copy(out, o, i, i + lit);
    i += lit;
    o += lit;
    if (i >= src.length) break;
    const offset = src[i]! | (src[i + 1]! << 8);
    i += 2;
    if (offset === 0 || offset > o - outPos) throw new Error('corrupt LZ4 block: bad match offset');
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do len += b = src[i++]!;
      while (b === 255);
    }
    len += 4;
    // Matches may overlap their own output (offset < len): copy byte by byte then.
    if (offset >= len) {
      out.copy(out, o, o - offset, o - offset + len);
      o += len;
    } else {
      for (let k = 0; k < len; k++, o++) out[o] = out[o - offset]!;
    }
  }
  return o - outPos;
}

function lz4Legacy(buf: Buffer, start: number): Buffer | undefined {
  let p = start + 4;
  const chunks: Buffer[] = [];
  while (p + 4 <= buf.length) {
    const size = buf.readUInt32LE(p);
    if (size === LZ4_LEGACY_MAGIC) {
      p += 4;
      continue;
    }
    if (size === 0 || size > buf.length - p - 4 || size > LZ4_LEGACY_BLOCK * 2) break;
    const out = Buffer.allocUnsafe(LZ4_LEGACY_BLOCK);
    let n: number;
    try {
      n = lz4Block(buf.subarray(p + 4, p + 4 + size), out, 0);
    } catch {
      break;
    }
    chunks.push(out.subarray(0, n));
    p += 4 + size;
  }
  return chunks.length ? Buffer.concat(chunks) : undefined;
}

/** hasPvhNote says whether an ELF64 image has the Xen PVH entry note QEMU needs to boot it directly. */
export function hasPvhNote(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  for (let h = 0; h < phnum; h++) {
    const ph = phoff + h * phentsize;
    if (ph + 56 > elf.length || elf.readUInt32LE(ph) !== PT_NOTE) continue;
    let p = Number(elf.readBigUInt64LE(ph + 8));
    const end = p + Number(elf.readBigUInt64LE(ph + 32));
    while (p + 12 <= end && end <= elf.length) {
      const namesz = elf.readUInt32LE(p);
      const descsz = elf.readUInt32LE(p + 4);
      const type = elf.readUInt32LE(p + 8);
      const name = elf.toString('latin1', p + 12, p + 12 + Math.max(0, namesz - 1));
      if (name === 'Xen' && type === XEN_ELFNOTE_PHYS32_ENTRY) return true;
      p += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3);
    }
  }
  return false;
}

/**
 * extractVmlinux finds the compressed kernel inside a bzImage (LZ4 legacy frame or gzip) and returns
 * the ELF vmlinux when it can be booted through PVH, or undefined.
 */
export function extractVmlinux(bzImage: Buffer): Buffer | undefined {
  const candidates: (() => Buffer | undefined)[] = [];
  const lz4 = Buffer.alloc(4);
  lz4.writeUInt32LE(LZ4_LEGACY_MAGIC);
  for (let at = bzImage.indexOf(lz4); at >= 0; at = bzImage.indexOf(lz4, at + 1)) candidates.push(() => lz4Legacy(bzImage, at));
  for (let at = bzImage.indexOf(GZIP_MAGIC); at >= 0; at = bzImage.indexOf(GZIP_MAGIC, at + 1)) {
    candidates.push(() => {
      try {
        return gunzipSync(bzImage.subarray(at));
      } catch {
        return undefined;
      }
    });
  }
  for (const c of candidates) {
    const elf = c();
    if (elf && hasPvhNote(elf)) return elf;
  }
  return undefined;
}

/**
 * bootableKernel returns the kernel QEMU should load: a cached uncompressed vmlinux under `cacheDir`
 * when `kernel` is a bzImage it can unpack (microvm then enters it through PVH, skipping the
 * real-mode setup and the in-guest decompression, which are slow under TCG), else `kernel` itself.
 */
export async function bootableKernel(kernel: string, cacheDir: string): Promise<{ path: string; pvh: boolean }> {
  const st = await stat(kernel);
  const key = createHash('sha256').update(JSON.stringify([kernel, st.size, st.mtimeMs])).digest('hex').slice(0, 16);
  const out = join(cacheDir, `vmlinux-${basename(kernel).replace(/^vmlinuz-/, '')}-${key}`);
  if (await stat(out).then((s) => s.isFile(), () => false)) return { path: out, pvh: true };
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const tmp = `${out}.${process.pid}.${Date.now()}.tmp`;
  try {
    const ok = await new Promise<boolean>((resolve, reject) => {
      const w = startWorker(import.meta.url, 'kernel-worker', { kernel, out: tmp });
      w.once('message', (m: { ok: boolean }) => resolve(m.ok));
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`kernel unpacking worker exited with code ${code}`)));
    });
    if (!ok) return { path: kernel, pvh: false };
    await rename(tmp, out);
  } finally {
    await rm(tmp, { force: true });
  }
  return { path: out, pvh: true };
}
