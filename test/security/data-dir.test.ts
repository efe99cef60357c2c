import { chmodSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { ensureDataDir, ensureToken } from '../../src/server/data-dir.js';

describe('the data directory another account could prepare', () => {
  const base = mkdtempSync(join(tmpdir(), 'skiff-datadir-'));

  it('is created 0700 with a 0600 token', () => {
    const dir = join(base, 'fresh');
    ensureDataDir(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const token = ensureToken(dir, 'token');
    expect(token.length).toBeGreaterThan(30);
    expect(statSync(join(dir, 'token')).mode & 0o777).toBe(0o600);
    expect(ensureToken(dir, 'token')).toBe(token);
  });

  it('refuses a directory that group or others may write, saying how to fix it', () => {
    const dir = join(base, 'shared');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    expect(() => ensureDataDir(dir)).toThrow(/other accounts may write to it \(mode 777\); run chmod 700/);
    chmodSync(dir, 0o700);
    expect(() => ensureDataDir(dir)).not.toThrow();
  });

  it('refuses a path that is not a directory', () => {
    const file = join(base, 'file');
    writeFileSync(file, 'x');
    expect(() => ensureDataDir(file)).toThrow(/data directory/);
  });

  it('tightens a token file others could read', () => {
    const dir = join(base, 'loose');
    ensureDataDir(dir);
    writeFileSync(join(dir, 'token'), 'secret-token\n', { mode: 0o644 });
    chmodSync(join(dir, 'token'), 0o644);
    expect(ensureToken(dir, 'token')).toBe('secret-token');
    expect(statSync(join(dir, 'token')).mode & 0o777).toBe(0o600);
  });

  it.runIf(process.getuid?.() === 0)('refuses a directory owned by another account', async () => {
    const { chownSync } = await import('node:fs');
    const dir = join(base, 'theirs');
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, 65534, 65534);
    expect(() => ensureDataDir(dir)).toThrow(/belongs to another account \(uid 65534\)/);
  });
});
