import type { KeyValue, RangeOptions, RangeResult, Store, Watcher, WatchOptions, WriteCondition, WriteGuard, WriteResult } from '../store/index.js';

import { FenceConditionError, LeaseLostError, NotLeaderError } from './errors.js';

/** What a FencedStore needs from the elector: the current fence, undefined when not leading. */
export interface FenceSource {
  fence(): WriteGuard | undefined;
}

/**
 * FencedStore is the store of the controllers that must run once per cluster: every put and delete
 * carries the leader's current fence, so it lands only while this node still holds the leader lease at
 * the revision it last wrote. Not leading, it refuses writes with NotLeaderError; a write the store
 * refuses on the fence throws LeaseLostError, since callers written against Store would read an
 * `ok: false` as an ordinary conflict. Reads and watches pass through.
 *
 * @example
 * const store = new FencedStore(inner, elector);
 * await store.put('/registry/...', json); // throws LeaseLostError after another node took over
 */
export class FencedStore implements Store {
  /** Writes refused because this node did not lead or had lost the lease (`skiff_leader_fenced_writes_refused_total`). */
  refused = 0;

  constructor(
    private readonly inner: Store,
    private readonly fences: FenceSource,
  ) {}

  revision(): Promise<number> {
    return this.inner.revision();
  }

  compactedRevision(): Promise<number> {
    return this.inner.compactedRevision();
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.inner.get(key);
  }

  range(prefix: string, opts?: RangeOptions): Promise<RangeResult> {
    return this.inner.range(prefix, opts);
  }

  put(key: string, value: string, cond: WriteCondition = {}): Promise<WriteResult> {
    return this.fenced(cond, (c) => this.inner.put(key, value, c));
  }

  delete(key: string, cond: WriteCondition = {}): Promise<WriteResult> {
    return this.fenced(cond, (c) => this.inner.delete(key, c));
  }

  watch(prefix: string, opts: WatchOptions): Promise<Watcher> {
    return this.inner.watch(prefix, opts);
  }

  compact(revision: number): Promise<void> {
    return this.inner.compact(revision);
  }

  /** The inner store is shared with the rest of the process, which closes it. */
  async close(): Promise<void> {}

  private async fenced(cond: WriteCondition, write: (c: WriteCondition) => Promise<WriteResult>): Promise<WriteResult> {
    if (cond.guard) throw new FenceConditionError();
    let fence = this.fences.fence();
    for (;;) {
      if (!fence) {
        this.refused++;
        throw new NotLeaderError('this node does not lead the cluster: writes of once-per-cluster controllers are made by the leader only');
      }
      const res = await write({ ...cond, guard: fence });
      if (res.ok || res.reason !== 'guard') return res;
      // A renew of our own moves the lease's revision under a write in flight: retry with the new
      // fence, which is safe since the renew proved we still held the lease.
      const next = this.fences.fence();
      if (!next || (next.key === fence.key && next.modRevision === fence.modRevision)) {
        this.refused++;
        throw new LeaseLostError(fence.key, fence.modRevision);
      }
      fence = next;
    }
  }
}
