import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { Informer } from '../../src/api/informer.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { MemoryStore, type RangeOptions, type RangeResult, StoreUnavailableError, type Watcher, type WatchOptions } from '../../src/store/index.js';

/** A store that can end its watches with an error and refuse lists for a while, as etcd does when it is down. */
class OutageStore extends MemoryStore {
  down = false;
  lists = 0;
  private readonly closers: Array<() => void> = [];

  override async range(prefix: string, opts?: RangeOptions): Promise<RangeResult> {
    this.lists++;
    if (this.down) throw new StoreUnavailableError('no etcd member answered');
    return super.range(prefix, opts);
  }

  override async watch(prefix: string, opts: WatchOptions): Promise<Watcher> {
    const w = await super.watch(prefix, opts);
    this.closers.push(() => {
      w.close();
      opts.onClose?.(new StoreUnavailableError('the etcd watch could not be resumed'));
    });
    return w;
  }

  breakWatches(): void {
    for (const c of this.closers.splice(0)) c();
  }
}

let informer: Informer | undefined;
afterEach(() => informer?.stop());

describe('Informer through a store outage', () => {
  it('keeps listing again until the store answers, then catches up on what changed meanwhile', async () => {
    const store = new OutageStore();
    const resources = new ResourceService(store, builtinKinds());
    const ns = resources.kind('Namespace');
    await resources.create(ns, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'before' } });
    informer = new Informer(resources, ns, pino({ level: 'silent' }));
    await informer.start();
    expect(informer.get('before')).toBeDefined();

    store.down = true;
    store.breakWatches();
    // Written behind the informer's back (another node, while this one could not reach the store).
    await resources.create(ns, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'during' } });
    const listsBefore = store.lists;
    await expect.poll(() => store.lists - listsBefore, { timeout: 5_000, interval: 50 }).toBeGreaterThanOrEqual(2);
    expect(informer.get('during')).toBeUndefined();

    store.down = false;
    await expect.poll(() => informer!.get('during'), { timeout: 10_000, interval: 50 }).toBeDefined();
    // Watching again: later changes arrive without another outage.
    await resources.create(ns, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'after' } });
    await expect.poll(() => informer!.get('after'), { timeout: 2_000, interval: 20 }).toBeDefined();
  });
});
