import { describe, expect, it } from 'vitest';

import { CLOCK, E } from '../../src/runtime/wasi/constants.js';
import { ProcExit } from '../../src/runtime/wasi/process.js';

import { Guest } from './helpers/guest.js';

describe('args and environ', () => {
  it('args_sizes_get counts arguments and NUL-terminated bytes', async () => {
    const g = await Guest.create({ args: ['prog', 'héllo', ''] });
    const c = g.alloc(4), s = g.alloc(4);
    expect(g.call('args_sizes_get', c, s)).toBe(E.SUCCESS);
    expect(g.u32(c)).toBe(3);
    expect(g.u32(s)).toBe(5 + 7 + 1);
    expect(g.call('args_sizes_get', 0xfffffff0, s)).toBe(E.FAULT);
  });

  it('args_get writes pointers and NUL-terminated strings', async () => {
    const g = await Guest.create({ args: ['prog', 'héllo'] });
    const ptrs = g.alloc(8), buf = g.alloc(64);
    expect(g.call('args_get', ptrs, buf)).toBe(E.SUCCESS);
    expect(g.u32(ptrs)).toBe(buf);
    expect(g.text(g.u32(ptrs), 4)).toBe('prog');
    expect(g.u8at(buf + 4)).toBe(0);
    expect(g.text(g.u32(ptrs + 4), 6)).toBe('héllo');
    expect(g.call('args_get', ptrs, 0x7fffffff)).toBe(E.FAULT);
  });

  it('environ_sizes_get and environ_get expose exactly the granted variables', async () => {
    const g = await Guest.create({ env: { A: '1', PATH_INFO: '/x' } });
    const c = g.alloc(4), s = g.alloc(4);
    expect(g.call('environ_sizes_get', c, s)).toBe(E.SUCCESS);
    expect(g.u32(c)).toBe(2);
    expect(g.u32(s)).toBe(4 + 13);
    const ptrs = g.alloc(8), buf = g.alloc(64);
    expect(g.call('environ_get', ptrs, buf)).toBe(E.SUCCESS);
    expect(g.text(g.u32(ptrs), 3)).toBe('A=1');
    expect(g.text(g.u32(ptrs + 4), 12)).toBe('PATH_INFO=/x');
    expect(g.call('environ_get', 0xffffffff, buf)).toBe(E.FAULT);
  });
});

describe('clocks', () => {
  it('clock_res_get reports resolutions and rejects unknown clocks', async () => {
    const g = await Guest.create();
    const out = g.alloc(8);
    expect(g.call('clock_res_get', CLOCK.MONOTONIC, out)).toBe(E.SUCCESS);
    expect(g.u64(out)).toBe(1n);
    expect(g.call('clock_res_get', CLOCK.PROCESS_CPUTIME, out)).toBe(E.SUCCESS);
    expect(g.call('clock_res_get', 9, out)).toBe(E.INVAL);
  });

  it('clock_time_get reads real clocks in nanoseconds', async () => {
    const g = await Guest.create();
    const out = g.alloc(8);
    expect(g.call('clock_time_get', CLOCK.REALTIME, 1n, out)).toBe(E.SUCCESS);
    const ms = Number(g.u64(out) / 1_000_000n);
    expect(Math.abs(ms - Date.now())).toBeLessThan(1000);
    expect(g.call('clock_time_get', CLOCK.MONOTONIC, 0n, out)).toBe(E.SUCCESS);
    const a = g.u64(out);
    g.call('clock_time_get', CLOCK.MONOTONIC, 0n, out);
    expect(g.u64(out)).toBeGreaterThanOrEqual(a);
    expect(g.call('clock_time_get', CLOCK.THREAD_CPUTIME, 0n, out)).toBe(E.SUCCESS);
    expect(g.call('clock_time_get', 4, 0n, out)).toBe(E.INVAL);
    expect(g.call('clock_time_get', CLOCK.REALTIME, 0n, 0xfffffffc)).toBe(E.FAULT);
  });

  it('a frozen clock is reproducible', async () => {
    const g = await Guest.create({ clock: 'frozen' });
    const out = g.alloc(8);
    g.call('clock_time_get', CLOCK.REALTIME, 0n, out);
    expect(g.u64(out)).toBe(1_704_067_200_000_000_000n);
    g.call('clock_time_get', CLOCK.MONOTONIC, 0n, out);
    expect(g.u64(out)).toBe(0n);
  });
});

describe('random, sched_yield, proc_exit, proc_raise', () => {
  it('random_get fills the buffer; seeded sources repeat', async () => {
    const g = await Guest.create({ random: { seed: 42 } });
    const a = g.alloc(32);
    expect(g.call('random_get', a, 32)).toBe(E.SUCCESS);
    const first = g.u8.slice(a, a + 32);
    expect(first.some((b) => b !== 0)).toBe(true);
    const g2 = await Guest.create({ random: { seed: 42 } });
    const b = g2.alloc(32);
    g2.call('random_get', b, 32);
    expect(g2.u8.slice(b, b + 32)).toEqual(first);
    const real = await Guest.create();
    const c = real.alloc(70000);
    expect(real.call('random_get', c, 70000)).toBe(E.SUCCESS);
    expect(real.call('random_get', 0xffffff00, 512)).toBe(E.FAULT);
  });

  it('a trace names each call and its errno', async () => {
    const lines: string[] = [];
    const g = await Guest.create({ trace: (l) => lines.push(l) });
    g.call('clock_res_get', 9, g.alloc(8));
    expect(lines).toEqual([expect.stringMatching(/^clock_res_get\(9, \d+\) = EINVAL$/)]);
  });

  it('sched_yield succeeds', async () => {
    const g = await Guest.create();
    expect(g.call('sched_yield')).toBe(E.SUCCESS);
  });

  it('proc_exit unwinds with the exit code', async () => {
    const g = await Guest.create();
    let caught: unknown;
    try {
      g.call('proc_exit', 7);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ProcExit);
    expect((caught as ProcExit).code).toBe(7);
  });

  it('proc_raise ignores harmless signals, terminates on fatal ones, rejects unknown numbers', async () => {
    const g = await Guest.create();
    expect(g.call('proc_raise', 0)).toBe(E.SUCCESS);
    expect(g.call('proc_raise', 16)).toBe(E.SUCCESS);
    expect(g.call('proc_raise', 31)).toBe(E.INVAL);
    expect(() => g.call('proc_raise', 15)).toThrow(ProcExit);
  });
});
