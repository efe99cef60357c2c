import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

import { BlobError, BlobStore } from './index.js';

const hexOf = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const fresh = (maxBytes?: number) => new BlobStore({ dir: join(mkdtempSync(join(tmpdir(), 'skiff-blobs-')), 'blobs'), maxBytes });

async function* slowly(parts: Uint8Array[], fail?: Error): AsyncIterable<Uint8Array> {
  for (const p of parts) {
    await new Promise((r) => setTimeout(r, 1));
    yield p;
  }
  if (fail) throw fail;
}

describe('BlobStore', () => {
  it('stores bytes under their digest, reads them back, and says whether they were new', async () => {
    const s = fresh();
    const bytes = Buffer.from('\0asm module bytes');
    const hex = hexOf(bytes);
    expect(await s.has(hex)).toBeUndefined();
    expect(await s.put(hex, slowly([bytes.subarray(0, 4), bytes.subarray(4)]))).toEqual({ created: true, size: bytes.length });
    expect(await s.put(hex, bytes)).toEqual({ created: false, size: bytes.length });
    expect(Buffer.from(await s.get(hex)).equals(bytes)).toBe(true);
    expect(await s.has(hex)).toEqual({ size: bytes.length });
    expect(readFileSync(s.pathOf(hex)).equals(bytes)).toBe(true);
    expect(await s.list()).toEqual([hex]);
    expect(readdirSync(join(s.root, 'tmp'))).toEqual([]);
  });

  it('keeps nothing when the digest differs, the blob is too large, or the upload breaks off', async () => {
    const s = fresh(8);
    const other = hexOf('something else');
    await expect(s.put(other, Buffer.from('1234'))).rejects.toMatchObject({ code: 'blob_digest_mismatch' });
    const big = Buffer.from('123456789');
    await expect(s.put(hexOf(big), slowly([big.subarray(0, 5), big.subarray(5)]))).rejects.toMatchObject({ code: 'blob_too_large' });
    const part = Buffer.from('1234');
    await expect(s.put(hexOf(part), slowly([part], new Error('client went away')))).rejects.toMatchObject({ code: 'blob_io' });
    expect(await s.list()).toEqual([]);
    expect(readdirSync(join(s.root, 'tmp'))).toEqual([]);
    for (const bad of ['', 'ABC', '../../etc/passwd', 'a'.repeat(63), 'g'.repeat(64)]) {
      await expect(s.put(bad, part)).rejects.toBeInstanceOf(BlobError);
      expect(() => s.pathOf(bad)).toThrow(/not a sha256 digest/);
    }
  });

  it('detects a blob damaged on disk, refuses to serve it and removes it so an upload can replace it', async () => {
    const s = fresh();
    const bytes = Buffer.from('original module bytes');
    const hex = hexOf(bytes);
    await s.put(hex, bytes);
    writeFileSync(s.pathOf(hex), 'tampered module bytes');
    const err = await s.get(hex).catch((e: unknown) => e as BlobError);
    expect(err).toBeInstanceOf(BlobError);
    expect((err as BlobError).code).toBe('blob_corrupt');
    expect((err as BlobError).message).not.toContain('tampered');
    expect(await s.has(hex)).toBeUndefined();
    expect((await s.put(hex, bytes)).created).toBe(true);
    expect(Buffer.from(await s.get(hex)).equals(bytes)).toBe(true);
    await expect(s.get(hexOf('never stored'))).rejects.toMatchObject({ code: 'blob_not_found' });
  });

  it('sweeps unreferenced blobs past the grace period and leftover temporary files, keeping referenced and recent ones', async () => {
    const s = fresh();
    const blobs = ['kept: referenced', 'kept: recent', 'removed: old'].map((t) => ({ t, hex: hexOf(t) }));
    for (const b of blobs) await s.put(b.hex, Buffer.from(b.t));
    const hourAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(s.pathOf(blobs[0]!.hex), hourAgo, hourAgo);
    utimesSync(s.pathOf(blobs[2]!.hex), hourAgo, hourAgo);
    writeFileSync(join(s.root, 'tmp', 'leftover'), 'x');
    utimesSync(join(s.root, 'tmp', 'leftover'), hourAgo, hourAgo);
    const removed = await s.sweep(new Set([blobs[0]!.hex]), 3600_000);
    expect(removed).toEqual([blobs[2]!.hex]);
    expect((await s.list()).sort()).toEqual([blobs[0]!.hex, blobs[1]!.hex].sort());
    expect(existsSync(join(s.root, 'tmp', 'leftover'))).toBe(false);
    // Asking for a blob restarts its clock: an apply that follows a lookup never finds it swept.
    utimesSync(s.pathOf(blobs[1]!.hex), hourAgo, hourAgo);
    await s.has(blobs[1]!.hex);
    expect(await s.sweep(new Set(), 3600_000)).toEqual([blobs[0]!.hex]);
  });

  it('keeps an acknowledged blob when the process is killed right after, and nothing of an upload killed midway', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'skiff-blobs-kill-')), 'blobs');
    const bytes = Buffer.alloc(4 * 1024 * 1024, 7);
    const hex = hexOf(bytes);
    const partialHex = hexOf('a blob that never finishes');
    const store = resolve(import.meta.dirname, 'index.ts');
    // The child acknowledges one upload, then starts another that never ends; it is killed with SIGKILL.
    const script = `
      const { BlobStore } = await import(${JSON.stringify(store)});
      const s = new BlobStore({ dir: ${JSON.stringify(dir)} });
      await s.put(${JSON.stringify(hex)}, Buffer.alloc(${bytes.length}, 7));
      process.stdout.write('acked\\n');
      void s.put(${JSON.stringify(partialHex)}, (async function* () { yield Buffer.from('a blob'); await new Promise(() => {}); })());
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolveAck, reject) => {
      const timer = setTimeout(() => reject(new Error('the child did not acknowledge in time')), 20_000);
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('acked')) {
          clearTimeout(timer);
          resolveAck();
        }
      });
      child.on('exit', () => reject(new Error('the child exited early')));
    });
    await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const s = new BlobStore({ dir });
    expect(Buffer.from(await s.get(hex)).equals(bytes)).toBe(true);
    expect(await s.has(partialHex)).toBeUndefined();
    expect(readdirSync(join(dir, 'tmp')).length).toBe(1);
    await s.sweep(new Set(), 0);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    expect(await s.list()).toEqual([]);
  }, 30_000);
});
