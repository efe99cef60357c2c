import { describe, expect, it } from 'vitest';

import { InstrumentedStore, MemoryStore } from './index.js';
import { runStoreSuite } from './store-suite.js';

// The decorator must be a Store like any backend: the shared contract suite runs through it.
runStoreSuite('instrumented memory', () => new InstrumentedStore(new MemoryStore()));

describe('InstrumentedStore', () => {
  it('counts operations by result, conflicts, open watchers, delivered events and compactions', async () => {
    const s = new InstrumentedStore(new MemoryStore());
    await s.put('/a', '1');
    await s.put('/a', '2', { expectModRevision: 99 });
    await s.get('/a');
    await s.range('/');
    const seen: string[] = [];
    const w1 = await s.watch('/', { onEvent: (e) => seen.push(e.kv.key) });
    const w2 = await s.watch('/a', { onEvent: (e) => seen.push(e.kv.key) });
    expect(s.stats.watchers).toBe(2);
    await s.put('/a', '3');
    await s.put('/b', '1');
    await s.delete('/b');
    expect(seen).toEqual(['/a', '/a', '/b', '/b']);
    expect(s.stats.watchEvents).toBe(4);
    w1.close();
    w1.close();
    expect(s.stats.watchers).toBe(1);
    await s.compact(2);
    await expect(s.watch('/', { afterRevision: 1, onEvent: () => {} })).rejects.toThrow();
    expect(s.stats.watchers).toBe(1);
    w2.close();
    expect(s.stats.watchers).toBe(0);
    expect(Object.fromEntries(s.stats.operations)).toEqual({ 'put ok': 4, 'get ok': 1, 'range ok': 1, 'watch ok': 2, 'watch error': 1, 'delete ok': 1, 'compact ok': 1 });
    expect(s.stats.conflicts).toBe(1);
    expect(s.stats.compactions).toBe(1);
    await s.close();
  });
});
