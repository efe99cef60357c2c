import { describe, expect,it } from 'vitest';

import { WorkQueue } from '../../src/controllers/runtime/work-queue.js';

describe('WorkQueue', () => {
  it('dedupes queued keys and never hands out a key twice at once', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    const k = await q.get();
    expect(k).toBe('a');
    q.add('a'); // while processing: remembered, not queued twice
    expect(q.length).toBe(1);
    expect(await q.get()).toBe('b');
    q.done('a');
    expect(await q.get()).toBe('a');
  });

  it('backs off exponentially per key and forgets on success', () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100 });
    expect([1, 2, 3, 4, 5].map(() => q.addRateLimited('k'))).toEqual([10, 20, 40, 80, 100]);
    expect(q.retries('k')).toBe(5);
    q.forget('k');
    expect(q.addRateLimited('k')).toBe(10);
    q.shutdown();
  });

  it('releases waiting getters on shutdown', async () => {
    const q = new WorkQueue();
    const p = q.get();
    q.shutdown();
    expect(await p).toBeUndefined();
  });
});
