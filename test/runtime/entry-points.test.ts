import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

import { MemFs } from '../../src/runtime/fs/mem-fs.js';
import { type InvokeRequest, type InvokeResult,Runtime, RuntimeError } from '../../src/runtime/index.js';
import { SandboxHost } from '../../src/runtime/sandbox.js';

import { programs } from './helpers/programs.js';
import { commandWat, helloWat, wat2wasm } from './helpers/wat.js';

const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Creates a directory in its in-memory /tmp and exits with the errno (0 on success). */
const mkdirWat = commandWat({
  imports: ['path_create_directory', 'proc_exit'],
  data: '(data (i32.const 16) "d")',
  start: '(call $proc_exit (call $path_create_directory (i32.const 3) (i32.const 16) (i32.const 1)))',
});

type Attempt = InvokeResult | RuntimeError | undefined;

/** now calls tryInline and checks the contract every caller relies on: it neither throws nor returns a promise. */
function now(rt: Runtime, digest: string, req: InvokeRequest): Attempt {
  let value: Attempt;
  expect(() => (value = rt.tryInline(digest, req))).not.toThrow();
  expect(value).not.toBeInstanceOf(Promise);
  return value;
}

/**
 * attempt repeats tryInline until it actually ran the guest on this thread, cleanly or not: a first
 * worker run resolves the module's variant and starts its metered build, which compiles in the background.
 */
async function attempt(rt: Runtime, digest: string, req: InvokeRequest): Promise<{ value: Attempt; ran: 'clean' | 'discarded' }> {
  await rt.invoke(digest, req).catch(() => undefined);
  for (let i = 0; i < 400; i++) {
    const { runs, retries } = rt.inlineStats;
    const value = now(rt, digest, req);
    if (rt.inlineStats.runs > runs) return { value, ran: 'clean' };
    if (rt.inlineStats.retries > retries) return { value, ran: 'discarded' };
    await sleep(5);
  }
  throw new Error('tryInline never ran the guest');
}

describe("the runtime's two entry points", () => {
  const warnings: string[] = [];
  // busyAbove > 1: whether the calling thread is saturated is not what these tests are about. A small
  // fuel budget keeps the looping guest's inline attempt short.
  const rt = new Runtime({ workers: 2, inline: { fuel: 100_000, busyAbove: 2 }, logger: { warn: (_o, m) => warnings.push(m ?? '') } });
  afterAll(() => rt.close());
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('tryInline returns the finished result itself for a guest that runs cleanly here', async () => {
    const hello = (await rt.compile(await wat2wasm(helloWat('here\n', 7)))).digest;
    const { value, ran } = await attempt(rt, hello, { args: [], env: {}, poolKey: 'ep/hello' });
    expect(ran).toBe('clean');
    expect(value).not.toBeInstanceOf(RuntimeError);
    expect((value as InvokeResult).exitCode).toBe(7);
    expect(dec((value as InvokeResult).stdout)).toBe('here\n');
  });

  it('invoke runs on a worker even when the guest could run here, and always answers with a promise', async () => {
    const hello = (await rt.compile(await wat2wasm(helloWat('there\n')))).digest;
    const req: InvokeRequest = { args: [], env: {}, poolKey: 'ep/worker' };
    expect((await attempt(rt, hello, req)).ran).toBe('clean');
    const runs = rt.inlineStats.runs;
    const p = rt.invoke(hello, req);
    expect(p).toBeInstanceOf(Promise);
    expect(dec((await p).stdout)).toBe('there\n');
    expect(rt.inlineStats.runs).toBe(runs);
    // Its failures are rejections, never throws.
    const bad = rt.invoke(hello, { args: [], env: {}, limits: { memoryBytes: -1 } });
    expect(bad).toBeInstanceOf(Promise);
    await expect(bad).rejects.toMatchObject({ code: 'invalid_options' });
  });

  it('tryInline declines a guest that traps here; the worker run reports the trap', async () => {
    const trap = (await rt.compile(await wat2wasm(programs.trap))).digest;
    const req: InvokeRequest = { args: [], env: {}, poolKey: 'ep/trap' };
    const { value, ran } = await attempt(rt, trap, req);
    expect(ran).toBe('discarded');
    expect(value).toBeUndefined();
    await expect(rt.invoke(trap, req)).rejects.toMatchObject({ code: 'trap' });
  });

  it('tryInline declines a guest that runs out of fuel here, within the fuel budget; the worker run meets the deadline', async () => {
    const loop = (await rt.compile(await wat2wasm(programs.loop))).digest;
    const req: InvokeRequest = { args: [], env: {}, poolKey: 'ep/loop', limits: { timeoutMs: 200 } };
    const t0 = performance.now();
    const { value, ran } = await attempt(rt, loop, req);
    expect(ran).toBe('discarded');
    expect(value).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(5000);
    await expect(rt.invoke(loop, req)).rejects.toMatchObject({ code: 'timeout' });
  });

  it('tryInline declines a guest whose syscall hits a host error here, and says so in the log; the worker run decides', async () => {
    const mkdir = (await rt.compile(await wat2wasm(mkdirWat))).digest;
    const req: InvokeRequest = { args: [], env: {}, poolKey: 'ep/mkdir', capabilities: { memfs: true } };
    // The injected bug exists on this thread only: the workers' hosts are sound.
    vi.spyOn(MemFs.prototype, 'mkdir').mockImplementation(() => {
      throw new TypeError('injected host bug');
    });
    const { value, ran } = await attempt(rt, mkdir, req);
    expect(ran).toBe('discarded');
    expect(value).toBeUndefined();
    expect(warnings.some((w) => w.includes('host error'))).toBe(true);
    expect((await rt.invoke(mkdir, req)).exitCode).toBe(0);
  });

  it('tryInline declines, without throwing, when the sandbox itself throws', async () => {
    const hello = (await rt.compile(await wat2wasm(helloWat('sound\n')))).digest;
    const req: InvokeRequest = { args: [], env: {}, poolKey: 'ep/broken-host' };
    await rt.invoke(hello, req);
    vi.spyOn(SandboxHost.prototype, 'run').mockImplementation(() => {
      throw new Error('escaped the sandbox');
    });
    const { value, ran } = await attempt(rt, hello, req);
    expect(ran).toBe('discarded');
    expect(value).toBeUndefined();
    expect(warnings.some((w) => w.includes('failed in the host'))).toBe(true);
    vi.restoreAllMocks();
    expect(dec((await rt.invoke(hello, req)).stdout)).toBe('sound\n');
  });

  it('tryInline returns a request that cannot run as a RuntimeError value', async () => {
    const hello = (await rt.compile(await wat2wasm(helloWat('x\n')))).digest;
    await rt.invoke(hello, { args: [], env: {} });
    const badLimits = now(rt, hello, { args: [], env: {}, limits: { memoryBytes: -1 } });
    expect(badLimits).toBeInstanceOf(RuntimeError);
    expect(badLimits).toMatchObject({ code: 'invalid_options', message: expect.stringContaining('limits.memoryBytes') });
    const hugeEnv = now(rt, hello, { args: [], env: { BIG: 'x'.repeat(2 * 1024 * 1024) } });
    expect(hugeEnv).toMatchObject({ code: 'invalid_options', message: expect.stringContaining('ARG_MAX') });
  });

  it('tryInline declines what only a worker may run, and a module it has no variant of yet', async () => {
    const hello = (await rt.compile(await wat2wasm(helloWat('w\n')))).digest;
    expect(now(rt, 'sha256:00', { args: [], env: {} })).toBeUndefined();
    await expect(rt.invoke('sha256:00', { args: [], env: {} })).rejects.toMatchObject({ code: 'unknown_module' });
    // Not run on a worker yet at this memory cap: its compiled variant is not at hand without waiting.
    expect(now(rt, hello, { args: [], env: {}, limits: { memoryBytes: 4 * 1024 * 1024 } })).toBeUndefined();
    await attempt(rt, hello, { args: [], env: {}, poolKey: 'ep/w' });
    const runs = rt.inlineStats.runs;
    expect(now(rt, hello, { args: [], env: {}, poolKey: 'ep/w', capabilities: { dirs: [{ host: '/nonexistent', guest: '/d' }] } })).toBeUndefined();
    expect(now(rt, hello, { args: [], env: {}, poolKey: 'ep/w', trace: true })).toBeUndefined();
    expect(now(rt, hello, { args: [], env: {}, poolKey: 'ep/w', stdio: 'inherit' })).toBeUndefined();
    expect(rt.inlineStats.runs).toBe(runs);
  });

  it('tryInline declines a function that has no free concurrency slot', async () => {
    const hello = (await rt.compile(await wat2wasm(helloWat('slot\n')))).digest;
    const sleeper = (await rt.compile(await wat2wasm(programs.sleep))).digest;
    const limits = { concurrency: 1, timeoutMs: 400 };
    await attempt(rt, hello, { args: [], env: {}, poolKey: 'ep/slot', limits });
    // The sleeping guest holds the function's only slot on a worker until its deadline.
    const held = rt.invoke(sleeper, { args: [], env: {}, poolKey: 'ep/slot', limits }).catch((e) => e);
    await sleep(50);
    expect(now(rt, hello, { args: [], env: {}, poolKey: 'ep/slot', limits })).toBeUndefined();
    expect(await held).toMatchObject({ code: 'timeout' });
    expect(dec((now(rt, hello, { args: [], env: {}, poolKey: 'ep/slot', limits }) as InvokeResult).stdout)).toBe('slot\n');
  });

  it('with inline runs turned off, tryInline declines everything', async () => {
    const off = new Runtime({ workers: 1, inline: false });
    try {
      const hello = (await off.compile(await wat2wasm(helloWat('off\n')))).digest;
      for (let i = 0; i < 3; i++) {
        expect(dec((await off.invoke(hello, { args: [], env: {} })).stdout)).toBe('off\n');
        expect(now(off, hello, { args: [], env: {}, limits: { memoryBytes: -1 } })).toBeUndefined();
        expect(now(off, hello, { args: [], env: {} })).toBeUndefined();
      }
    } finally {
      await off.close();
    }
  });
});
