import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

import Database from 'better-sqlite3';

import { CompactedError, FutureRevisionError, StoreCorruptError, StoreUnavailableError } from './errors.js';
import type { KeyValue, RangeOptions, RangeResult, Store, Watcher, WatchEvent, WatchOptions, WriteCondition, WriteResult } from './types.js';
import { prefixEnd,WatchHub } from './watch-hub.js';

export interface SqliteStoreOptions {
  /** 'full' fsyncs the WAL on every commit (survives power loss); 'normal' survives a killed process only. */
  sync?: 'full' | 'normal';
  /** Cap on the database file size; writes beyond it fail like a full disk would. */
  maxBytes?: number;
}

const PUT = 0;
const DEL = 1;

interface LogRow {
  revision: number;
  key: string;
  type: number;
  value: string;
  create_revision: number;
  version: number;
  prev_value: string | null;
  prev_mod_revision: number | null;
  prev_version: number | null;
}

interface KvRow {
  key: string;
  value: string;
  create_revision: number;
  mod_revision: number;
  version: number;
}

/**
 * SqliteStore is the default, embedded backend (`sqlite://PATH`): one SQLite file in WAL mode.
 * Table `kv` holds the current value of each key; table `log` holds every change in revision order
 * for watchers (its AUTOINCREMENT sequence is the global revision, so it never goes back even after
 * compaction deletes old rows). Each write is one SQLite transaction and is committed before the
 * promise resolves, so an acknowledged write survives the process being killed.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly hub = new WatchHub();
  private rev: number;
  private compacted: number;
  private closed = false;
  private readonly stmts;
  private readonly putTxn: (key: string, value: string, cond: WriteCondition) => WriteResult;
  private readonly delTxn: (key: string, cond: WriteCondition) => WriteResult;

  constructor(readonly path: string, opts: SqliteStoreOptions = {}) {
    mkdirSync(dirname(path), { recursive: true });
    let opened: Database.Database | undefined;
    try {
      this.db = opened = new Database(path, { timeout: 200 });
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${opts.sync === 'normal' ? 'NORMAL' : 'FULL'}`);
      if (opts.maxBytes) this.db.pragma(`max_page_count = ${Math.max(16, Math.floor(opts.maxBytes / (this.db.pragma('page_size', { simple: true }) as number)))}`);
      // One Skiff process owns a data dir: a second one fails fast instead of corrupting expectations.
      this.db.pragma('locking_mode = EXCLUSIVE');
      // A damaged file is refused at start, before anything is written to it, rather than found by
      // the first read that happens to touch a bad page.
      checkIntegrity(this.db, path);
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, create_revision INTEGER NOT NULL,
          mod_revision INTEGER NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS log (revision INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, type INTEGER NOT NULL,
          value TEXT NOT NULL, create_revision INTEGER NOT NULL, version INTEGER NOT NULL,
          prev_value TEXT, prev_mod_revision INTEGER, prev_version INTEGER);
        CREATE INDEX IF NOT EXISTS log_key ON log (key, revision);
        CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      `);
      // Taking the exclusive lock happens on first write; do it now so a second process fails at start.
      this.db.exec('BEGIN IMMEDIATE; COMMIT;');
      this.stmts = {
        get: this.db.prepare<[string], KvRow>('SELECT * FROM kv WHERE key = ?'),
        range: this.db.prepare<[string, string, string, number], KvRow>('SELECT * FROM kv WHERE key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ?'),
        upsert: this.db.prepare('INSERT INTO kv (key, value, create_revision, mod_revision, version) VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision, version = excluded.version'),
        del: this.db.prepare('DELETE FROM kv WHERE key = ?'),
        log: this.db.prepare('INSERT INTO log (key, type, value, create_revision, version, prev_value, prev_mod_revision, prev_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
        // The keys as they were at a revision: unchanged rows of kv, plus, for each key changed since,
        // the previous value its first later log entry kept (none when that entry created the key).
        rangeAt: this.db.prepare<{ at: number; start: string; end: string; after: string; limit: number }, KvRow>(`
          SELECT key, value, create_revision, mod_revision, version FROM kv WHERE key >= :start AND key < :end AND key > :after AND mod_revision <= :at
          UNION ALL
          SELECT l.key, l.prev_value, l.create_revision, l.prev_mod_revision, l.prev_version
            FROM (SELECT key, MIN(revision) AS first FROM log WHERE revision > :at AND key >= :start AND key < :end AND key > :after GROUP BY key) f
            JOIN log l ON l.revision = f.first WHERE l.prev_value IS NOT NULL
          ORDER BY key LIMIT :limit`),
        history: this.db.prepare<[number, string, string], LogRow>('SELECT * FROM log WHERE revision > ? AND key >= ? AND key < ? ORDER BY revision'),
        seq: this.db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'log'"),
        getMeta: this.db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE name = ?'),
        setMeta: this.db.prepare('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value'),
        compact: this.db.prepare('DELETE FROM log WHERE revision <= ?'),
      };
      this.rev = this.stmts.seq.get()?.seq ?? 0;
      this.compacted = this.stmts.getMeta.get('compacted')?.value ?? 0;
    } catch (err) {
      const e = sqliteError(err, 'cannot open the store', path);
      try {
        // The handle may hold the file's lock; a failed open must not keep it.
        opened?.close();
      } catch {
        // closing a half-opened handle is best effort
      }
      throw e;
    }

    this.putTxn = this.db.transaction((key: string, value: string, cond: WriteCondition): WriteResult => {
      const prev = this.readKv(key);
      if (this.guardFails(cond)) return { ok: false, revision: this.rev, current: prev, reason: 'guard' };
      if (cond.expectModRevision !== undefined && (prev?.modRevision ?? 0) !== cond.expectModRevision) {
        return { ok: false, revision: this.rev, current: prev, reason: 'condition' };
      }
      const version = (prev?.version ?? 0) + 1;
      const info = this.stmts.log.run(key, PUT, value, prev?.createRevision ?? 0, version, prev?.value ?? null, prev?.modRevision ?? null, prev?.version ?? null);
      const revision = Number(info.lastInsertRowid);
      const createRevision = prev?.createRevision ?? revision;
      this.stmts.upsert.run(key, value, createRevision, revision, version);
      return { ok: true, revision, kv: { key, value, createRevision, modRevision: revision, version }, prevKv: prev };
    });
    this.delTxn = this.db.transaction((key: string, cond: WriteCondition): WriteResult => {
      const prev = this.readKv(key);
      if (this.guardFails(cond)) return { ok: false, revision: this.rev, current: prev, reason: 'guard' };
      if (!prev || (cond.expectModRevision !== undefined && prev.modRevision !== cond.expectModRevision)) {
        return { ok: false, revision: this.rev, current: prev, reason: 'condition' };
      }
      const info = this.stmts.log.run(key, DEL, prev.value, prev.createRevision, prev.version, prev.value, prev.modRevision, prev.version);
      const revision = Number(info.lastInsertRowid);
      this.stmts.del.run(key);
      return { ok: true, revision, kv: { ...prev, modRevision: revision }, prevKv: prev };
    });
  }

  async revision(): Promise<number> {
    return this.rev;
  }

  async compactedRevision(): Promise<number> {
    return this.compacted;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.check();
    return this.read(() => this.readKv(key));
  }

  async range(prefix: string, opts: RangeOptions = {}): Promise<RangeResult> {
    this.check();
    const limit = opts.limit && opts.limit > 0 ? opts.limit : -1;
    const at = opts.revision;
    if (at !== undefined && at > this.rev) throw new FutureRevisionError(at, this.rev);
    if (at !== undefined && at < this.compacted) throw new CompactedError(at, this.compacted);
    const end = prefixEnd(prefix);
    const after = opts.startAfter ?? '';
    const max = limit === -1 ? -1 : limit + 1;
    const rows = this.read(() => (at === undefined || at === this.rev ? this.stmts.range.all(prefix, end, after, max) : this.stmts.rangeAt.all({ at, start: prefix, end, after, limit: max })));
    const more = limit !== -1 && rows.length > limit;
    return { items: (more ? rows.slice(0, limit) : rows).map(toKv), revision: at ?? this.rev, more };
  }

  async put(key: string, value: string, cond: WriteCondition = {}): Promise<WriteResult> {
    this.check();
    const res = this.write(() => this.putTxn(key, value, cond));
    if (res.ok) {
      this.rev = res.revision;
      this.hub.publish({ type: 'put', kv: res.kv, prevKv: res.prevKv, revision: res.revision });
    }
    return res;
  }

  async delete(key: string, cond: WriteCondition = {}): Promise<WriteResult> {
    this.check();
    const res = this.write(() => this.delTxn(key, cond));
    if (res.ok) {
      this.rev = res.revision;
      this.hub.publish({ type: 'delete', kv: res.kv, prevKv: res.prevKv, revision: res.revision });
    }
    return res;
  }

  async watch(prefix: string, opts: WatchOptions): Promise<Watcher> {
    this.check();
    const after = opts.afterRevision;
    if (after !== undefined && after < this.compacted) throw new CompactedError(after, this.compacted);
    const history = after === undefined || after >= this.rev ? [] : this.read(() => this.stmts.history.all(after, prefix, prefixEnd(prefix))).map(toEvent);
    return this.hub.subscribe(prefix, opts, history);
  }

  async compact(revision: number): Promise<void> {
    this.check();
    const upTo = Math.min(revision, this.rev);
    if (upTo <= this.compacted) return;
    this.write(() =>
      this.db.transaction(() => {
        this.stmts.compact.run(upTo);
        this.stmts.setMeta.run('compacted', upTo);
      })(),
    );
    this.compacted = upTo;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hub.closeAll();
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // the WAL is replayed on the next open anyway
    }
    this.db.close();
  }

  /** Called inside the write's transaction, so the guard key cannot move between the check and the write. */
  private guardFails(cond: WriteCondition): boolean {
    return cond.guard !== undefined && (this.readKv(cond.guard.key)?.modRevision ?? 0) !== cond.guard.modRevision;
  }

  private readKv(key: string): KeyValue | undefined {
    const row = this.stmts.get.get(key);
    return row ? toKv(row) : undefined;
  }

  private read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw sqliteError(err, 'the store could not be read', this.path);
    }
  }

  private write<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw sqliteError(err, 'the write was not stored', this.path);
    }
  }

  private check(): void {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
  }
}

function toKv(r: KvRow): KeyValue {
  return { key: r.key, value: r.value, createRevision: r.create_revision, modRevision: r.mod_revision, version: r.version };
}

function toEvent(r: LogRow): WatchEvent {
  const prevKv: KeyValue | undefined =
    r.prev_value === null ? undefined : { key: r.key, value: r.prev_value, createRevision: r.create_revision, modRevision: r.prev_mod_revision!, version: r.prev_version! };
  if (r.type === DEL) {
    return { type: 'delete', kv: { ...prevKv!, modRevision: r.revision }, prevKv, revision: r.revision };
  }
  const createRevision = r.create_revision === 0 ? r.revision : r.create_revision;
  return { type: 'put', kv: { key: r.key, value: r.value, createRevision, modRevision: r.revision, version: r.version }, prevKv, revision: r.revision };
}

/** Problems quick_check reports that are quoted in the error (it names pages and rows, never values). */
const QUICK_CHECK_QUOTED = 3;

/**
 * checkIntegrity runs `PRAGMA quick_check` (the b-tree structure of every page, without the slower
 * index-to-table cross-checks of integrity_check) and throws StoreCorruptError when it finds damage.
 */
function checkIntegrity(db: Database.Database, path: string): void {
  const rows = db.pragma('quick_check') as Array<{ quick_check: string }>;
  const problems = rows
    .flatMap((r) => r.quick_check.split('\n'))
    .map((line) => line.trim())
    .filter((line) => line !== '' && line !== 'ok' && !/^\*\*\* in database/.test(line));
  if (problems.length === 0) return;
  const shown = problems.slice(0, QUICK_CHECK_QUOTED).map((p) => p.slice(0, 160)).join('; ');
  const detail = `quick_check found ${problems.length} problem${problems.length === 1 ? '' : 's'}: ${shown}`;
  throw new StoreCorruptError(path, `cannot open the store: ${corruptMessage(path, detail)}`);
}

function corruptMessage(path: string, detail: string): string {
  return `${path} is damaged (${detail}); stop Skiff, then restore the file from a backup, or move it aside together with its -wal and -shm files to start with an empty store`;
}

/**
 * sqliteError maps a SQLite failure to the store's error classes with a message that says what to do:
 * damage → StoreCorruptError; a full disk, an I/O error, a file that cannot be opened or written, or a
 * lock held elsewhere → StoreUnavailableError (the API answers 503). `what` says what failed. A failed
 * write has been rolled back, so nothing acknowledged before it is lost.
 */
export function sqliteError(err: unknown, what: string, path: string): Error {
  if (err instanceof StoreUnavailableError) return err;
  const code = (err as { code?: string })?.code ?? '';
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return new StoreCorruptError(path, `${what}: ${corruptMessage(path, code)}`, err);
  if (code.startsWith('SQLITE_FULL')) return new StoreUnavailableError(`${what}: the store is full (no space left on the disk holding ${path}, or the configured size limit reached); free space in the data directory and retry (nothing was changed)`, err);
  if (code.startsWith('SQLITE_IOERR')) return new StoreUnavailableError(`${what}: the disk reported an I/O error on ${path} (${code}); check the disk and the data directory, then retry (nothing was changed)`, err);
  if (code.startsWith('SQLITE_CANTOPEN')) return new StoreUnavailableError(`${what}: ${path} cannot be opened (${code}); check that the data directory exists and that the Skiff process may read and write it`, err);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return new StoreUnavailableError(`${what}: ${path} is in use by another Skiff process; stop it or choose another --data-dir`, err);
  if (code.startsWith('SQLITE_READONLY')) return new StoreUnavailableError(`${what}: ${path} is read-only; check the data directory's permissions`, err);
  if (code.startsWith('SQLITE_')) return new StoreUnavailableError(`${what}: ${path}: ${(err as Error).message} (${code})`, err);
  return err instanceof Error ? err : new Error(String(err));
}
