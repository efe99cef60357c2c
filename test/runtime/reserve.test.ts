import { afterAll, describe, expect, it } from 'vitest';

import { DEFAULT_LIMITS, Runtime, RuntimeError } from '../../src/runtime/index.js';

import { programs } from './helpers/programs.js';
import { helloWat, wat2wasm } from './helpers/wat.js';

const MEM = DEFAULT_LIMITS.memoryBytes;
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('warm reservations (a Wasm Function\'s replicas)', () => {
  const rt = new Runtime({ workers: 2, inline: { busyAbove: 2 } });
  afterAll(() => rt.close());

  it('instantiates the reserved instances ahead, so the first run after a scale-up starts warm', async () => {
    const digest = (await rt.compile(await wat2wasm(helloWat('hi\n')))).digest;
    expect(await rt.reserve('ns/a', digest, MEM, 3)).toBe(3);
    expect(rt.warmInstances('ns/a')).toBe(3);
    const res = rt.tryInline(digest, { args: [], env: {}, poolKey: 'ns/a' });
    expect(res).not.toBeInstanceOf(RuntimeError);
    expect(res).toBeDefined();
    expect((res as { warm?: boolean }).warm).toBe(true);
    expect(dec((res as { stdout: Uint8Array }).stdout)).toBe('hi\n');
    // The instance went back after the clean run: still three waiting.
    expect(rt.warmInstances('ns/a')).toBe(3);
  });

  it('drops every warm instance at zero: the next run instantiates (a cold start) from the cached compiled module', async () => {
    const digest = (await rt.compile(await wat2wasm(programs.counter))).digest;
    expect(await rt.reserve('ns/b', digest, MEM, 2)).toBe(2);
    expect(await rt.reserve('ns/b', digest, MEM, 0)).toBe(0);
    expect(rt.warmInstances('ns/b')).toBe(0);
    const res = rt.tryInline(digest, { args: [], env: {}, poolKey: 'ns/b' }) as { warm?: boolean; exitCode: number };
    expect(res.exitCode).toBe(16);
    expect(res.warm).toBe(false);
    // A reservation is made at once now that the builds are at hand.
    expect(rt.tryReserve('ns/b', digest, MEM, 1)).toBe(1);
  });

  it('adds up the reservations of Functions sharing a module, and scales down to what is left', async () => {
    const digest = (await rt.compile(await wat2wasm(helloWat('shared\n')))).digest;
    await rt.reserve('ns/one', digest, MEM, 2);
    await rt.reserve('ns/two', digest, MEM, 3);
    expect(rt.warmInstances('ns/two')).toBe(3);
    rt.release('ns/two');
    expect(rt.reservation('ns/two')).toBe(0);
    expect(rt.warmInstances('ns/one')).toBe(2);
  });
});
