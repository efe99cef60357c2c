import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect,it } from 'vitest';

import { MemoryStore, openStore, SqliteStore, StoreUnavailableError } from './index.js';
import { runStoreSuite } from './store-suite.js';

runStoreSuite('memory', () => new MemoryStore());
runStoreSuite('sqlite', () => new SqliteStore(join(mkdtempSync(join(tmpdir(), 'skiff-store-')), 'state.db')));

describe('sqlite store durability', () => {
  it('keeps data, revision and compaction point across reopen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-store-'));
    const path = join(dir, 'state.db');
    let s = new SqliteStore(path);
    for (let i = 0; i < 10; i++) await s.put(`/k/${i}`, String(i));
    await s.compact(10);
    await s.delete('/k/9');
    await s.close();
    s = new SqliteStore(path);
    expect(await s.revision()).toBe(11);
    expect(await s.compactedRevision()).toBe(10);
    expect((await s.range('/k/')).items).toHaveLength(9);
    const w = await s.put('/k/new', 'x');
    expect(w.ok && w.revision).toBe(12);
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a second process-level owner of the same file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-store-'));
    const path = join(dir, 'state.db');
    const a = new SqliteStore(path);
    expect(() => new SqliteStore(path)).toThrow(/in use by another Skiff process/);
    await a.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('sqlite store when full', () => {
  it('refuses the write that does not fit with a clear error and keeps everything acknowledged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-store-'));
    const s = new SqliteStore(join(dir, 'state.db'), { maxBytes: 256 * 1024 });
    const big = 'x'.repeat(20_000);
    let stored = 0;
    let error: unknown;
    for (let i = 0; i < 100; i++) {
      try {
        await s.put(`/big/${i}`, big);
        stored++;
      } catch (err) {
        error = err;
        break;
      }
    }
    expect(stored).toBeGreaterThan(0);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toMatch(/store is full.*nothing was changed/);
    expect((await s.range('/big/')).items).toHaveLength(stored);
    await s.close();
    // Once there is room again (here: a larger limit), everything acknowledged is there and writes go on.
    const again = new SqliteStore(join(dir, 'state.db'), { maxBytes: 16 * 1024 * 1024 });
    expect((await again.range('/big/')).items).toHaveLength(stored);
    expect((await again.put('/after', 'ok')).ok).toBe(true);
    await again.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('openStore', () => {
  it('picks a backend by scheme and never echoes the endpoint in errors', async () => {
    expect(await openStore('memory://', '/nonexistent')).toBeInstanceOf(MemoryStore);
    
    try {
      await openStore('bogus://user:secret@host', '/x');
    } catch (err) {
      expect(String((err as Error).message)).not.toContain('secret');
    }
    await expect(openStore('not a url', '/x')).rejects.toThrow(/not a URL/);
  });
});
