import pino from 'pino';
import { describe, expect, it } from 'vitest';

import { Controller } from '../../src/controllers/runtime/index.js';

describe('controller stats', () => {
  it('counts reconciles, failures and their time, and shows the queue depth', async () => {
    let failFirst = true;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const ctl = new Controller({
      name: 'counted',
      logger: pino({ level: 'silent' }),
      workers: 1,
      keys: () => ['a', 'b', 'c'],
      reconcile: async (key) => {
        await gate;
        if (key === 'b' && failFirst) {
          failFirst = false;
          throw new Error('not yet');
        }
      },
    });
    expect(ctl.name).toBe('counted');
    ctl.start();
    // One key is being reconciled (held at the gate), the other two wait in the queue.
    await expect.poll(() => ctl.queue.length, { timeout: 2_000 }).toBe(2);
    release();
    await expect.poll(() => ctl.stats.reconciles - ctl.stats.errors, { timeout: 5_000 }).toBe(3);
    await ctl.stop();
    expect(ctl.stats.errors).toBe(1);
    expect(ctl.stats.reconciles).toBe(4);
    expect(ctl.stats.duration.count).toBe(4);
    expect(ctl.queue.length).toBe(0);
  });
});
