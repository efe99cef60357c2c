import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Runtime, RuntimeError } from '../../src/runtime/index.js';

import { helloWat, wat2wasm } from './helpers/wat.js';

const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('Runtime API', () => {
  let rt: Runtime;
  beforeAll(() => {
    rt = new Runtime({ workers: 2 });
  });
  afterAll(async () => {
    await rt.close();
  });

  it('compiles once per digest and runs a command in a worker', async () => {
    const bytes = await wat2wasm(helloWat('Hello, world\n', 3));
    const info = await rt.compile(bytes);
    expect(info.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(info.size).toBe(bytes.length);
    expect(info.capabilities).toEqual(['stdout', 'exit']);
    const again = await rt.compile(bytes);
    expect(again).toBe(info);
    const res = await rt.invoke(info.digest, { args: ['hello'], env: {} });
    expect(res.exitCode).toBe(3);
    expect(dec(res.stdout)).toBe('Hello, world\n');
    // Second run reuses the warm instance and must behave the same.
    const res2 = await rt.invoke(info.digest, { args: ['hello'], env: {} });
    expect(dec(res2.stdout)).toBe('Hello, world\n');
  });

  it('rejects unknown digests', async () => {
    await expect(rt.invoke('sha256:00', { args: [], env: {} })).rejects.toMatchObject({ code: 'unknown_module' });
  });

  it('refuses bytes that are not wasm', async () => {
    const err = await rt.compile(new TextEncoder().encode('#!/bin/sh\necho hi\n')).catch((e) => e);
    expect(err).toBeInstanceOf(RuntimeError);
    expect(err.code).toBe('not_wasm');
  });
});
