import { describe, expect, it } from 'vitest';

import { IdleHistogram } from '../../src/autoscaling/forecast/index.js';

const MIN = 60_000;

describe('IdleHistogram (the idle-time window for rarely called Functions)', () => {
  it('puts a narrow window around a regular idle time, far cheaper than keeping a replica all along', () => {
    const h = new IdleHistogram();
    for (let i = 0; i < 50; i++) h.add((19.2 + (i % 5) * 0.3) * MIN);
    const w = h.window({ holdMs: 90_000, keepAliveMs: 10 * MIN })!;
    expect(w.samples).toBe(50);
    expect(w.fromMs).toBeGreaterThan(15 * MIN);
    expect(w.fromMs).toBeLessThanOrEqual(19 * MIN);
    expect(w.toMs).toBeGreaterThanOrEqual(21 * MIN);
    expect(w.toMs).toBeLessThan(25 * MIN);
  });

  it('is never worse than the reference keep-alive on the recorded idle times, and falls back to it when idle times have no shape', () => {
    const h = new IdleHistogram();
    for (let i = 0; i < 200; i++) h.add(((i * 37) % 230) * MIN + 30_000);
    const w = h.window({ holdMs: 90_000, keepAliveMs: 10 * MIN })!;
    // Uniform idle times: nothing beats keeping the replica ten minutes after each request.
    expect(w).toMatchObject({ fromMs: 0, toMs: 10 * MIN });
  });

  it('drops the window when every call comes within the reactive hold', () => {
    const h = new IdleHistogram();
    for (let i = 0; i < 50; i++) h.add(20_000 + i * 100);
    expect(h.window({ holdMs: 90_000, keepAliveMs: 10 * MIN })).toBeUndefined();
  });

  it('keeps a replica right after each request when calls come close together', () => {
    const h = new IdleHistogram();
    for (let i = 0; i < 100; i++) h.add((2 + (i % 3)) * MIN);
    const w = h.window({ holdMs: 90_000, keepAliveMs: 10 * MIN })!;
    // Warm again before the earliest next call (two minutes), until after the latest (five).
    expect(w.fromMs).toBeLessThanOrEqual(2 * MIN);
    expect(w.toMs).toBeGreaterThanOrEqual(5 * MIN);
  });

  it('says nothing from too few idle periods', () => {
    const h = new IdleHistogram();
    for (let i = 0; i < 5; i++) h.add(20 * MIN);
    expect(h.window({ holdMs: 90_000, keepAliveMs: 10 * MIN })).toBeUndefined();
  });

  it('round-trips through its text form, refuses garbage quietly, and stays bounded', () => {
    const h = new IdleHistogram();
    for (let i = 0; i < 10_000; i++) h.add((i % 300) * MIN);
    expect(h.samples).toBeLessThanOrEqual(4096);
    const back = IdleHistogram.decode(h.encode());
    expect(back.encode()).toBe(h.encode());
    expect(IdleHistogram.decode('{"v":1,"bins":{"3":1e300,"-1":4,"x":2},"oob":-5}').samples).toBe(0);
    expect(IdleHistogram.decode('not json').samples).toBe(0);
  });
});
