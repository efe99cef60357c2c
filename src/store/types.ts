/**
 * The store is an ordered key-value space with one global, monotonically increasing revision, shaped
 * like etcd's so that an etcd backend can implement it without touching callers: every write bumps the
 * revision; each key remembers the revision that created it and the one that last changed it; writes
 * can be made conditional on a key's mod revision (compare-and-swap); watchers receive every change
 * after a given revision, in order; history before the compacted revision is gone.
 */
export interface KeyValue {
  key: string;
  /** The stored document, as JSON text. */
  value: string;
  createRevision: number;
  modRevision: number;
  /** How many times the key was written since it was created (1 on create). */
  version: number;
}

export type WatchEventType = 'put' | 'delete';

export interface WatchEvent {
  type: WatchEventType;
  /** For 'delete', the key with the value it had, and modRevision set to the deleting revision. */
  kv: KeyValue;
  prevKv?: KeyValue;
  revision: number;
}

/**
 * A guard makes a write depend on another key: the write happens only while that key's modRevision
 * equals this one (0 = the key must not exist). A leader passes its lease's key and revision, so a
 * leader that lost the lease while paused cannot write afterwards (fencing).
 */
export interface WriteGuard {
  key: string;
  modRevision: number;
}

/** Conditions on a write, checked atomically with it; all given ones must hold. */
export interface WriteCondition {
  /** The written key's current modRevision must equal this (0 = the key must not exist). */
  expectModRevision?: number;
  guard?: WriteGuard;
}

/**
 * Why a write did not happen: `'guard'` when the guard key had moved on (whatever the written key's own
 * state), `'condition'` otherwise (a stale or missing key, or a create of an existing one).
 */
export type WriteFailure = 'guard' | 'condition';

export type WriteResult =
  | { ok: true; revision: number; kv: KeyValue; prevKv?: KeyValue }
  | { ok: false; revision: number; current?: KeyValue; reason: WriteFailure };

export interface RangeOptions {
  /** Return at most this many keys. */
  limit?: number;
  /** Start strictly after this key (for paging). */
  startAfter?: string;
  /**
   * Read the keys as they were at this revision (etcd's `revision` on a range). Throws CompactedError
   * when the revision is at or below the compacted one, and a RangeError when it is newer than the store.
   */
  revision?: number;
}

export interface RangeResult {
  items: KeyValue[];
  /** The store revision the read was served at (the requested one for a read at a revision). */
  revision: number;
  more: boolean;
}

export interface Watcher {
  close(): void;
}

export interface WatchOptions {
  /** Deliver events with revision > afterRevision. Omit to get only future events. */
  afterRevision?: number;
  onEvent: (ev: WatchEvent) => void;
  /** Called once if the watch ends on the store's side (store closed, watcher fell too far behind). */
  onClose?: (err?: Error) => void;
}

export interface Store {
  /** The newest revision (0 for an empty store). */
  revision(): Promise<number>;
  /** The oldest revision still available to watchers; events at or below it are gone. */
  compactedRevision(): Promise<number>;
  get(key: string): Promise<KeyValue | undefined>;
  range(prefix: string, opts?: RangeOptions): Promise<RangeResult>;
  put(key: string, value: string, cond?: WriteCondition): Promise<WriteResult>;
  delete(key: string, cond?: WriteCondition): Promise<WriteResult>;
  /**
   * Starts a watch on every key under prefix. Throws CompactedError when afterRevision is older than
   * the compacted revision, so the caller can answer 410 Gone and the client re-lists.
   */
  watch(prefix: string, opts: WatchOptions): Promise<Watcher>;
  /** Drops history at or below revision. */
  compact(revision: number): Promise<void>;
  close(): Promise<void>;
}
