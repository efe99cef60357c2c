import { afterEach,beforeEach, describe, expect, it } from 'vitest';

import { CompactedError } from './errors.js';
import type { Store, WatchEvent } from './types.js';

/**
 * runStoreSuite is the behaviour every backend must have. Each backend's test file calls it with a
 * factory; a new backend (etcd) passes by running the same suite.
 */
/** settle waits until cond holds (remote backends deliver watch events asynchronously), at most 3 s. */
async function settle(cond: () => boolean): Promise<void> {
  const end = Date.now() + 3000;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

export function runStoreSuite(name: string, open: () => Promise<Store> | Store, opts: { skip?: boolean } = {}): void {
  describe.skipIf(!!opts.skip)(`store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    it('starts empty, at a non-negative revision that writes then raise', async () => {
      // A shared backend (etcd) starts at its cluster's revision, an embedded one at 0.
      const rev = await store.revision();
      expect(Number.isInteger(rev) && rev >= 0).toBe(true);
      expect((await store.range('')).items).toEqual([]);
      const w = await store.put('/first', 'x');
      expect(w.ok && w.revision).toBe(rev + 1);
    });

    it('puts and gets with create/mod revisions and versions', async () => {
      const a = await store.put('/a', '1');
      expect(a.ok).toBe(true);
      const b = await store.put('/a', '2');
      if (!a.ok || !b.ok) throw new Error('writes failed');
      expect(b.revision).toBe(a.revision + 1);
      const kv = await store.get('/a');
      expect(kv).toEqual({ key: '/a', value: '2', createRevision: a.revision, modRevision: b.revision, version: 2 });
      expect(b.prevKv?.value).toBe('1');
      expect(await store.get('/missing')).toBeUndefined();
    });

    it('refuses a create when the key exists and an update with a stale mod revision', async () => {
      const first = await store.put('/k', 'x', { expectModRevision: 0 });
      expect(first.ok).toBe(true);
      const again = await store.put('/k', 'y', { expectModRevision: 0 });
      expect(again.ok).toBe(false);
      if (again.ok || !first.ok) throw new Error('unexpected');
      expect(again.current?.value).toBe('x');
      const stale = await store.put('/k', 'z', { expectModRevision: first.revision - 1 });
      expect(stale.ok).toBe(false);
      const fresh = await store.put('/k', 'z', { expectModRevision: first.revision });
      expect(fresh.ok).toBe(true);
      expect((await store.get('/k'))?.value).toBe('z');
    });

    it('deletes, conditionally too, and a deleted key can be created again', async () => {
      const w = await store.put('/d', '1');
      if (!w.ok) throw new Error('write failed');
      expect((await store.delete('/d', { expectModRevision: w.revision + 5 })).ok).toBe(false);
      const del = await store.delete('/d', { expectModRevision: w.revision });
      expect(del.ok).toBe(true);
      expect(await store.get('/d')).toBeUndefined();
      expect((await store.delete('/d')).ok).toBe(false);
      const again = await store.put('/d', '2', { expectModRevision: 0 });
      if (!again.ok) throw new Error('recreate failed');
      expect(again.kv.version).toBe(1);
      expect(again.kv.createRevision).toBe(again.revision);
    });

    it('writes under a guard only while the guard key keeps its mod revision', async () => {
      const lease = await store.put('/lease', 'a');
      if (!lease.ok) throw new Error('write failed');
      const guard = { key: '/lease', modRevision: lease.revision };
      const held = await store.put('/g/x', '1', { guard });
      expect(held.ok).toBe(true);
      expect((await store.delete('/g/x', { guard })).ok).toBe(true);
      await store.put('/g/y', '1');
      // Another holder renews the lease: writes fenced by the old revision must all fail on the guard.
      const moved = await store.put('/lease', 'b');
      if (!moved.ok) throw new Error('write failed');
      const put = await store.put('/g/x', '2', { guard });
      expect(put).toMatchObject({ ok: false, reason: 'guard' });
      const del = await store.delete('/g/y', { guard });
      expect(del).toMatchObject({ ok: false, reason: 'guard' });
      expect(await store.get('/g/x')).toBeUndefined();
      expect((await store.get('/g/y'))?.value).toBe('1');
      expect(await store.revision()).toBe(moved.revision);
      expect((await store.put('/g/x', '3', { guard: { key: '/lease', modRevision: moved.revision } })).ok).toBe(true);
    });

    it('treats a guard with mod revision 0 as "the guard key must not exist"', async () => {
      expect((await store.put('/g/a', '1', { guard: { key: '/absent', modRevision: 0 } })).ok).toBe(true);
      await store.put('/absent', 'now here');
      expect(await store.put('/g/a', '2', { guard: { key: '/absent', modRevision: 0 } })).toMatchObject({ ok: false, reason: 'guard' });
      const stale = await store.put('/g/a', '2', { guard: { key: '/gone', modRevision: 7 } });
      expect(stale).toMatchObject({ ok: false, reason: 'guard' });
      expect((await store.get('/g/a'))?.value).toBe('1');
    });

    it('checks a guard together with the expected mod revision and says which one failed', async () => {
      const lease = await store.put('/lease', 'a');
      const w = await store.put('/g/k', '1');
      if (!lease.ok || !w.ok) throw new Error('write failed');
      const guard = { key: '/lease', modRevision: lease.revision };
      const stale = await store.put('/g/k', '2', { guard, expectModRevision: w.revision - 1 });
      expect(stale).toMatchObject({ ok: false, reason: 'condition' });
      if (stale.ok) throw new Error('unexpected');
      expect(stale.current?.value).toBe('1');
      expect(await store.put('/g/k', '2', { guard, expectModRevision: 0 })).toMatchObject({ ok: false, reason: 'condition' });
      expect(await store.delete('/g/missing', { guard })).toMatchObject({ ok: false, reason: 'condition' });
      const both = await store.put('/g/k', '2', { guard, expectModRevision: w.revision });
      if (!both.ok) throw new Error('guarded update failed');
      await store.put('/lease', 'b');
      // Both conditions broken: the guard is the one reported, since the writer is no longer entitled at all.
      expect(await store.put('/g/k', '3', { guard, expectModRevision: w.revision })).toMatchObject({ ok: false, reason: 'guard' });
      expect(await store.delete('/g/k', { guard, expectModRevision: both.revision })).toMatchObject({ ok: false, reason: 'guard' });
      expect((await store.get('/g/k'))?.value).toBe('2');
      expect(await store.put('/g/k', '3', { expectModRevision: w.revision })).toMatchObject({ ok: false, reason: 'condition' });
    });

    it('ranges over a prefix in key order, with paging', async () => {
      for (const k of ['/r/b', '/r/a', '/r/c', '/s/a', '/q']) await store.put(k, k);
      const all = await store.range('/r/');
      expect(all.items.map((i) => i.key)).toEqual(['/r/a', '/r/b', '/r/c']);
      expect(all.more).toBe(false);
      expect(all.revision).toBe(await store.revision());
      const page1 = await store.range('/r/', { limit: 2 });
      expect(page1.items.map((i) => i.key)).toEqual(['/r/a', '/r/b']);
      expect(page1.more).toBe(true);
      const page2 = await store.range('/r/', { limit: 2, startAfter: '/r/b' });
      expect(page2.items.map((i) => i.key)).toEqual(['/r/c']);
      expect(page2.more).toBe(false);
    });

    it('reads a prefix as it was at an older revision, until that revision is compacted', async () => {
      await store.put('/v/a', 'a1');
      const b = await store.put('/v/b', 'b1');
      await store.put('/v/d', 'd1');
      if (!b.ok) throw new Error('write failed');
      const at = (await store.revision());
      // After the snapshot: a change, a delete, a create, a delete and re-create, and a key outside the prefix.
      await store.put('/v/a', 'a2');
      await store.delete('/v/b');
      await store.put('/v/c', 'c1');
      await store.delete('/v/d');
      await store.put('/v/d', 'd2');
      await store.put('/w/x', 'x');
      const then = await store.range('/v/', { revision: at });
      expect(then.revision).toBe(at);
      expect(then.items.map((i) => [i.key, i.value])).toEqual([['/v/a', 'a1'], ['/v/b', 'b1'], ['/v/d', 'd1']]);
      expect(then.items[1]).toMatchObject({ modRevision: b.revision, createRevision: b.revision, version: 1 });
      const paged = await store.range('/v/', { revision: at, startAfter: '/v/a', limit: 1 });
      expect(paged.items.map((i) => i.value)).toEqual(['b1']);
      expect(paged.more).toBe(true);
      const now = await store.range('/v/', { revision: await store.revision() });
      expect(now.items.map((i) => i.value)).toEqual(['a2', 'c1', 'd2']);
      await expect(store.range('/v/', { revision: (await store.revision()) + 5 })).rejects.toThrow(/newer than|future/);
      await store.compact(at + 1);
      await expect(store.range('/v/', { revision: at })).rejects.toBeInstanceOf(CompactedError);
    });

    it('watches replay history after a revision, then deliver live events in order', async () => {
      const w1 = await store.put('/w/1', 'a');
      await store.put('/other', 'x');
      await store.put('/w/2', 'b');
      await store.delete('/w/1');
      if (!w1.ok) throw new Error('write failed');
      const seen: WatchEvent[] = [];
      const watcher = await store.watch('/w/', { afterRevision: w1.revision, onEvent: (e) => seen.push(e) });
      await store.put('/w/3', 'c');
      await store.put('/other', 'y');
      await settle(() => seen.length >= 3);
      watcher.close();
      await store.put('/w/4', 'd');
      await new Promise((r) => setTimeout(r, 50));
      expect(seen.map((e) => `${e.type} ${e.kv.key}`)).toEqual(['put /w/2', 'delete /w/1', 'put /w/3']);
      const revs = seen.map((e) => e.revision);
      expect([...revs].sort((a, b) => a - b)).toEqual(revs);
      const del = seen[1]!;
      expect(del.kv.value).toBe('a');
      expect(del.prevKv?.modRevision).toBe(w1.revision);
    });

    it('a watch without a revision gets only future events', async () => {
      await store.put('/f/old', '1');
      const seen: string[] = [];
      const w = await store.watch('/f/', { onEvent: (e) => seen.push(e.kv.key) });
      await store.put('/f/new', '2');
      await settle(() => seen.length >= 1);
      w.close();
      expect(seen).toEqual(['/f/new']);
    });

    it('refuses to watch compacted history and keeps revisions monotonic', async () => {
      for (let i = 0; i < 5; i++) await store.put(`/c/${i}`, String(i));
      const rev = await store.revision();
      await store.compact(rev - 1);
      expect(await store.compactedRevision()).toBe(rev - 1);
      await expect(store.watch('/c/', { afterRevision: rev - 3, onEvent: () => {} })).rejects.toBeInstanceOf(CompactedError);
      const seen: number[] = [];
      const w = await store.watch('/c/', { afterRevision: rev - 1, onEvent: (e) => seen.push(e.revision) });
      await settle(() => seen.length >= 1);
      w.close();
      expect(seen).toEqual([rev]);
      const next = await store.put('/c/x', 'x');
      if (!next.ok) throw new Error('write failed');
      expect(next.revision).toBe(rev + 1);
    });

    it('ends watches when closed', async () => {
      let closed = false;
      await store.watch('/', { onEvent: () => {}, onClose: () => (closed = true) });
      await store.close();
      expect(closed).toBe(true);
      await expect(store.get('/x')).rejects.toThrow(/closed/);
      store = await open();
    });
  });
}
