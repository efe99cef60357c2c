import type { KeyValue, RangeOptions, RangeResult, Store, Watcher, WatchOptions, WriteCondition, WriteResult } from './types.js';

/** The store operations counted by {@link InstrumentedStore}. */
export type StoreOperation = 'get' | 'range' | 'put' | 'delete' | 'watch' | 'compact';

/** StoreStats are the counters an {@link InstrumentedStore} keeps. */
export class StoreStats {
  /** `OPERATION ok|error` → calls. */
  readonly operations = new Map<string, number>();
  /** Writes refused because their condition (a resourceVersion precondition) did not hold. */
  conflicts = 0;
  /** Watches open now, and events delivered to watchers (one per watcher per event). */
  watchers = 0;
  watchEvents = 0;
  compactions = 0;

  count(op: StoreOperation, ok: boolean): void {
    const k = `${op} ${ok ? 'ok' : 'error'}`;
    this.operations.set(k, (this.operations.get(k) ?? 0) + 1);
  }
}

/**
 * InstrumentedStore counts the operations of any backend behind the Store interface, so the count is
 * the same for SQLite, etcd and memory. The revision and the compacted revision are not counted
 * here: an exporter asks the store for them at scrape time.
 */
export class InstrumentedStore implements Store {
  readonly stats = new StoreStats();

  constructor(readonly inner: Store) {}

  revision(): Promise<number> {
    return this.inner.revision();
  }

  compactedRevision(): Promise<number> {
    return this.inner.compactedRevision();
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.counted('get', this.inner.get(key));
  }

  range(prefix: string, opts?: RangeOptions): Promise<RangeResult> {
    return this.counted('range', this.inner.range(prefix, opts));
  }

  async put(key: string, value: string, cond?: WriteCondition): Promise<WriteResult> {
    const r = await this.counted('put', this.inner.put(key, value, cond));
    if (!r.ok) this.stats.conflicts++;
    return r;
  }

  async delete(key: string, cond?: WriteCondition): Promise<WriteResult> {
    const r = await this.counted('delete', this.inner.delete(key, cond));
    if (!r.ok) this.stats.conflicts++;
    return r;
  }

  async watch(prefix: string, opts: WatchOptions): Promise<Watcher> {
    const stats = this.stats;
    let counted = false;
    let ended = false;
    const closed = () => {
      if (ended) return;
      ended = true;
      if (counted) stats.watchers--;
    };
    const w = await this.counted(
      'watch',
      this.inner.watch(prefix, {
        ...opts,
        onEvent: (ev) => {
          stats.watchEvents++;
          opts.onEvent(ev);
        },
        onClose: (err) => {
          closed();
          opts.onClose?.(err);
        },
      }),
    );
    // A watch can end while it starts (its replay failed a watcher): then it never counts as open.
    if (!ended) {
      counted = true;
      stats.watchers++;
    }
    return {
      close: () => {
        closed();
        w.close();
      },
    };
  }

  async compact(revision: number): Promise<void> {
    await this.counted('compact', this.inner.compact(revision));
    this.stats.compactions++;
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async counted<T>(op: StoreOperation, p: Promise<T>): Promise<T> {
    try {
      const v = await p;
      this.stats.count(op, true);
      return v;
    } catch (err) {
      this.stats.count(op, false);
      throw err;
    }
  }
}
