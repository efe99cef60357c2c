import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { SqliteStore, StoreCorruptError, StoreUnavailableError } from '../../src/store/index.js';
import { sqliteError } from '../../src/store/sqlite.js';
import { BIN, REPO, startSkiff } from '../helpers/skiff-process.js';

const PAGE = 4096;

/** upExit runs `skiff up` on a data dir and resolves with its exit code and stderr, or fails after `ms`. */
function upExit(dataDir: string, ms = 30_000): Promise<{ code: number | null; stderr: string; elapsedMs: number }> {
  const t0 = Date.now();
  const proc = spawn(process.execPath, [BIN, 'up', '--data-dir', dataDir, '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`skiff up did not exit within ${ms} ms; stderr:\n${stderr}`));
    }, ms);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, elapsedMs: Date.now() - t0 });
    });
  });
}

/** scramble overwrites the start of every page from `firstPage` on, leaving the file's header page intact. */
function scramble(file: string, firstPage: number): void {
  const fd = openSync(file, 'r+');
  try {
    const size = fstatSync(fd).size;
    for (let off = firstPage * PAGE; off < size; off += PAGE) writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, off);
  } finally {
    closeSync(fd);
  }
}

describe('a corrupt state.db', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'skiff-integrity-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('overwritten with garbage: skiff up exits 2 at once, naming the file and what to do', { timeout: 60_000 }, async () => {
    const dataDir = tmp();
    const db = join(dataDir, 'state.db');
    writeFileSync(db, randomBytes(64 * 1024));
    const r = await upExit(dataDir);
    expect(r.code).toBe(2);
    // Nothing but the store's open ran: the process did not start serving first.
    expect(r.stderr).not.toMatch(/skiff ready/);
    expect(r.stderr).toContain(db);
    expect(r.stderr).toMatch(/damaged/);
    expect(r.stderr).toMatch(/restore the file from a backup/);
    expect(r.stderr).toMatch(/move it aside/);
    expect(r.stderr).not.toMatch(/internal error|at .*\.js:\d+/);
  });

  it('with damaged pages after a valid run: skiff up exits 2 instead of serving raw SQLite errors', { timeout: 120_000 }, async () => {
    const s = await startSkiff({ timeoutMs: 60_000 });
    const token = readFileSync(join(s.dataDir, 'token'), 'utf8').trim();
    try {
      const url = `${s.api}/apis/skiff.dev/v1/namespaces/default/services`;
      for (let i = 0; i < 30; i++) {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ apiVersion: 'skiff.dev/v1', kind: 'Service', metadata: { name: `svc-${i}`, annotations: { pad: 'x'.repeat(2000) } }, spec: { endpoints: [{ address: '192.0.2.10', port: 10000 + i }] } }),
        });
        expect(res.status).toBe(201);
      }
    } finally {
      expect(await s.stop('SIGTERM')).toBe(0);
    }
    const db = join(s.dataDir, 'state.db');
    scramble(db, 1);
    const r = await upExit(s.dataDir);
    rmSync(s.dataDir, { recursive: true, force: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(db);
    expect(r.stderr).toMatch(/damaged.*restore the file from a backup, or move it aside/);
  });

  it('found by a read or write while running: the store raises StoreCorruptError and the API answers 503', { timeout: 120_000 }, async () => {
    const path = join(tmp(), 'state.db');
    // More data than SQLite's page cache holds, so reads after the damage go to the file.
    let store = new SqliteStore(path, { sync: 'normal' });
    for (let i = 0; i < 2500; i++) {
      const name = `s${String(i).padStart(5, '0')}`;
      const obj = { apiVersion: 'skiff.dev/v1', kind: 'Service', metadata: { name, namespace: 'default', annotations: { pad: 'v'.repeat(2000) } }, spec: { endpoints: [{ address: '192.0.2.10', port: 80 }] } };
      await store.put(`/registry/services/default/${name}`, JSON.stringify(obj));
    }
    await store.close();
    store = new SqliteStore(path, { sync: 'normal' });
    scramble(path, 2);
    const err = await store.range('/registry/').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCorruptError);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as StoreCorruptError).code).toBe('store_corrupt');
    expect((err as Error).message).toContain(path);

    const server = new ApiServer({ resources: new ResourceService(store, builtinKinds()), logger: pino({ level: 'silent' }), version: 't', token: 't' });
    const { port } = await server.listen('127.0.0.1', 0);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/apis/skiff.dev/v1/namespaces/default/services`, { headers: { authorization: 'Bearer t' } });
      expect(res.status).toBe(503);
      const body = (await res.json()) as { message: string };
      expect(body.message).toMatch(/damaged/);
      expect(body.message).not.toMatch(/SqliteError|at .*\.js:\d+/);
    } finally {
      await server.close();
      await store.close();
    }
  });
});

describe('SQLite errors map to the store error classes', () => {
  const sqlite = (code: string) => Object.assign(new Error(`sqlite says ${code}`), { code });
  const file = '/data/state.db';

  it.each([
    ['SQLITE_CORRUPT', StoreCorruptError, /state\.db is damaged/],
    ['SQLITE_CORRUPT_INDEX', StoreCorruptError, /damaged/],
    ['SQLITE_NOTADB', StoreCorruptError, /damaged/],
    ['SQLITE_IOERR_SHORT_READ', StoreUnavailableError, /I\/O error on \/data\/state\.db/],
    ['SQLITE_IOERR', StoreUnavailableError, /I\/O error/],
    ['SQLITE_FULL', StoreUnavailableError, /store is full.*nothing was changed/],
    ['SQLITE_CANTOPEN', StoreUnavailableError, /cannot be opened.*may read and write it/],
    ['SQLITE_READONLY_DBMOVED', StoreUnavailableError, /read-only/],
    ['SQLITE_BUSY', StoreUnavailableError, /in use by another Skiff process/],
    ['SQLITE_BUSY_SNAPSHOT', StoreUnavailableError, /in use/],
    ['SQLITE_MISUSE', StoreUnavailableError, /SQLITE_MISUSE/],
  ])('%s', (code, cls, message) => {
    const e = sqliteError(sqlite(code), 'the write was not stored', file);
    expect(e).toBeInstanceOf(cls);
    expect(e.message).toMatch(/^the write was not stored: /);
    expect(e.message).toMatch(message);
    expect(e.message).toContain(file);
    expect((e as Error & { cause?: unknown }).cause).toBeInstanceOf(Error);
  });

  it('leaves errors that are not from SQLite alone', () => {
    const plain = new TypeError('boom');
    expect(sqliteError(plain, 'x', file)).toBe(plain);
    const already = new StoreUnavailableError('closed');
    expect(sqliteError(already, 'x', file)).toBe(already);
  });
});
