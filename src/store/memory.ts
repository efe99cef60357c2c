import { CompactedError, FutureRevisionError, StoreUnavailableError } from './errors.js';
import type { KeyValue, RangeOptions, RangeResult, Store, Watcher, WatchEvent, WatchOptions, WriteCondition, WriteResult } from './types.js';
import { WatchHub } from './watch-hub.js';

/**
 * MemoryStore keeps everything in process memory (`memory://`): for tests and throwaway runs.
 * It has exactly the semantics of the durable backends, minus durability.
 */
export class MemoryStore implements Store {
  private readonly kvs = new Map<string, KeyValue>();
  private readonly history: WatchEvent[] = [];
  private rev = 0;
  private compacted = 0;
  private closed = false;
  private readonly hub = new WatchHub();

  async revision(): Promise<number> {
    return this.rev;
  }

  async compactedRevision(): Promise<number> {
    return this.compacted;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.check();
    return this.kvs.get(key);
  }

  async range(prefix: string, opts: RangeOptions = {}): Promise<RangeResult> {
    this.check();
    const at = opts.revision;
    const kvs = at === undefined || at === this.rev ? this.kvs : this.snapshot(at);
    const keys = [...kvs.keys()].filter((k) => k.startsWith(prefix) && (opts.startAfter === undefined || k > opts.startAfter)).sort();
    const limit = opts.limit && opts.limit > 0 ? opts.limit : keys.length;
    return { items: keys.slice(0, limit).map((k) => kvs.get(k)!), revision: at ?? this.rev, more: keys.length > limit };
  }

  /** snapshot rebuilds the key space at an older revision by undoing the history after it, newest first. */
  private snapshot(at: number): Map<string, KeyValue> {
    if (at > this.rev) throw new FutureRevisionError(at, this.rev);
    if (at < this.compacted) throw new CompactedError(at, this.compacted);
    const out = new Map(this.kvs);
    for (let i = this.history.length - 1; i >= 0 && this.history[i]!.revision > at; i--) {
      const ev = this.history[i]!;
      if (ev.prevKv) out.set(ev.kv.key, ev.prevKv);
      else out.delete(ev.kv.key);
    }
    return out;
  }

  async put(key: string, value: string, cond: WriteCondition = {}): Promise<WriteResult> {
    this.check();
    const prev = this.kvs.get(key);
    if (this.guardFails(cond)) return { ok: false, revision: this.rev, current: prev, reason: 'guard' };
    if (cond.expectModRevision !== undefined && (prev?.modRevision ?? 0) !== cond.expectModRevision) {
      return { ok: false, revision: this.rev, current: prev, reason: 'condition' };
    }
    const revision = ++this.rev;
    const kv: KeyValue = { key, value, createRevision: prev?.createRevision ?? revision, modRevision: revision, version: (prev?.version ?? 0) + 1 };
    this.kvs.set(key, kv);
    this.record({ type: 'put', kv, prevKv: prev, revision });
    return { ok: true, revision, kv, prevKv: prev };
  }

  async delete(key: string, cond: WriteCondition = {}): Promise<WriteResult> {
    this.check();
    const prev = this.kvs.get(key);
    if (this.guardFails(cond)) return { ok: false, revision: this.rev, current: prev, reason: 'guard' };
    if (!prev || (cond.expectModRevision !== undefined && prev.modRevision !== cond.expectModRevision)) {
      return { ok: false, revision: this.rev, current: prev, reason: 'condition' };
    }
    const revision = ++this.rev;
    this.kvs.delete(key);
    const kv = { ...prev, modRevision: revision };
    this.record({ type: 'delete', kv, prevKv: prev, revision });
    return { ok: true, revision, kv, prevKv: prev };
  }

  async watch(prefix: string, opts: WatchOptions): Promise<Watcher> {
    this.check();
    const after = opts.afterRevision;
    if (after !== undefined && after < this.compacted) throw new CompactedError(after, this.compacted);
    const replay = after === undefined ? [] : this.history.filter((e) => e.revision > after);
    return this.hub.subscribe(prefix, opts, replay);
  }

  async compact(revision: number): Promise<void> {
    this.check();
    const upTo = Math.min(revision, this.rev);
    if (upTo <= this.compacted) return;
    let i = 0;
    while (i < this.history.length && this.history[i]!.revision <= upTo) i++;
    this.history.splice(0, i);
    this.compacted = upTo;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hub.closeAll();
  }

  private guardFails(cond: WriteCondition): boolean {
    return cond.guard !== undefined && (this.kvs.get(cond.guard.key)?.modRevision ?? 0) !== cond.guard.modRevision;
  }

  private record(ev: WatchEvent): void {
    this.history.push(ev);
    this.hub.publish(ev);
  }

  private check(): void {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
  }
}
