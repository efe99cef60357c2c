import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStoreSuite } from './store-suite.js';
import { MemoryStore, SqliteStore, openStore, StoreConfigError } from './index.js';

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
