import { describe, expect, it } from 'vitest';

import { Runtime } from '../../src/runtime/index.js';

import { programs } from './helpers/programs.js';
import { helloWat, wat2wasm } from './helpers/wat.js';

const dec = (b: Uint8Array) => new TextDecoder().decode(b);

// The pool may post a job to a worker behind a job of the same function that just started; these
// check that such a job is never lost or failed by what runs ahead of it.
describe('WorkerPool: jobs waiting behind another on a worker', () => {
  it('a job waiting behind a looping job of the same function is run elsewhere after the deadline', async () => {
    const rt = new Runtime({ workers: 1, inline: false });
    try {
      const loop = (await rt.compile(await wat2wasm(programs.loop))).digest;
      const hello = (await rt.compile(await wat2wasm(helloWat('hi\n')))).digest;
      // Warm the worker up with the module so the second job can be queued on it.
      await rt.invoke(hello, { args: [], env: {}, poolKey: 'ns/f' });
      const looping = rt.invoke(loop, { args: [], env: {}, poolKey: 'ns/f', limits: { timeoutMs: 400 } }).catch((e) => e);
      // Let the loop reach its worker first (its first invoke resolves the compiled variant asynchronously).
      await new Promise((r) => setImmediate(r));
      // Its own deadline (250 ms) is shorter than the loop's: it counts from when it starts, not from when it was queued.
      const t0 = Date.now();
      const quick = await rt.invoke(hello, { args: [], env: {}, poolKey: 'ns/f', limits: { timeoutMs: 250 } });
      expect(quick.exitCode).toBe(0);
      expect(dec(quick.stdout)).toBe('hi\n');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
      expect(await looping).toMatchObject({ code: 'timeout' });
    } finally {
      await rt.close();
    }
  });

  it('serves a burst of one function with every request answered once', async () => {
    const rt = new Runtime({ workers: 3, inline: false });
    try {
      const hello = (await rt.compile(await wat2wasm(helloWat('ok\n')))).digest;
      const results = await Promise.all(Array.from({ length: 300 }, () => rt.invoke(hello, { args: [], env: {}, poolKey: 'ns/burst' })));
      expect(results.every((r) => r.exitCode === 0 && dec(r.stdout) === 'ok\n')).toBe(true);
    } finally {
      await rt.close();
    }
  });
});
