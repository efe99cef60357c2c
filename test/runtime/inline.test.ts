import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { type InvokeRequest, type InvokeResult,Runtime, RuntimeError } from '../../src/runtime/index.js';

import { programs } from './helpers/programs.js';
import { commandWat } from './helpers/wat.js';
import { helloWat, wat2wasm } from './helpers/wat.js';

const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** Writes `text` to stderr, spins `iterations` times, then prints "done" and exits 0. */
function spinWat(text: string, iterations: number): string {
  const bytes = [...new TextEncoder().encode(text)].map((b) => '\\' + b.toString(16).padStart(2, '0')).join('');
  return commandWat({
    imports: ['fd_write'],
    data: `(data (i32.const 64) "${bytes}") (data (i32.const 512) "done\\0a")`,
    extra: '(global $i (mut i32) (i32.const 0))',
    start: `(i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const ${bytes.length / 3}))
      (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
      (block $b (loop $l (br_if $b (i32.ge_u (global.get $i) (i32.const ${iterations}))) (global.set $i (i32.add (global.get $i) (i32.const 1))) (br $l)))
      (i32.store (i32.const 0) (i32.const 512)) (i32.store (i32.const 4) (i32.const 5))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))`,
  });
}

/** run is what a request path does with the runtime's two entry points: the inline attempt, then a worker when it declined. */
function run(rt: Runtime, digest: string, req: InvokeRequest): Promise<InvokeResult> {
  const now = rt.tryInline(digest, req);
  if (now === undefined) return rt.invoke(digest, req);
  return now instanceof RuntimeError ? Promise.reject(now) : Promise.resolve(now);
}

/** invokeUntilInline repeats an invocation until it ran inline (the metered build compiles in the background). */
async function invokeUntilInline(rt: Runtime, digest: string, req: InvokeRequest) {
  for (let i = 0; i < 200; i++) {
    const before = rt.inlineStats.runs;
    const res = await run(rt, digest, req);
    if (rt.inlineStats.runs > before) return res;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('the invocation never ran inline');
}

describe('inline runs on the calling thread', () => {
  // busyAbove > 1: these tests are about what runs inline, not about when the calling thread is too busy.
  const rt = new Runtime({ workers: 2, inline: { cooldownMs: 60_000, busyAbove: 2 } });
  afterAll(() => rt.close());

  it('serves a short function on the calling thread with the same output and fresh state each time', async () => {
    const hello = (await rt.compile(await wat2wasm(helloWat('hi\n')))).digest;
    const res = await invokeUntilInline(rt, hello, { args: [], env: {}, poolKey: 'ns/hello' });
    expect(dec(res.stdout)).toBe('hi\n');
    const counter = (await rt.compile(await wat2wasm(programs.counter))).digest;
    await invokeUntilInline(rt, counter, { args: [], env: {}, poolKey: 'ns/counter' });
    const runs = rt.inlineStats.runs;
    for (let i = 0; i < 3; i++) expect((await run(rt, counter, { args: [], env: {}, poolKey: 'ns/counter' })).exitCode).toBe(16);
    expect(rt.inlineStats.runs).toBe(runs + 3);
  });

  it('stops a looping guest within its fuel, retries it on a worker where the deadline applies, then keeps it there', async () => {
    const loop = (await rt.compile(await wat2wasm(programs.loop))).digest;
    const hello = (await rt.compile(await wat2wasm(helloWat('warm\n')))).digest;
    // Let the loop's metered build exist before the measured call: warm it up under another key.
    await invokeUntilInline(rt, hello, { args: [], env: {}, poolKey: 'ns/warm' });
    run(rt, loop, { args: [], env: {}, poolKey: 'ns/probe', limits: { timeoutMs: 100 } }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const retries = rt.inlineStats.retries;
    // The calling thread is held for the fuel budget only (milliseconds), not for the deadline.
    const t0 = performance.now();
    const p = run(rt, loop, { args: [], env: {}, poolKey: 'ns/loop', limits: { timeoutMs: 300 } });
    const heldMs = performance.now() - t0;
    expect(heldMs).toBeLessThan(150);
    await expect(p).rejects.toMatchObject({ code: 'timeout' });
    expect(rt.inlineStats.retries).toBe(retries + 1);
    // On its cool-down the next call goes straight to a worker: no second inline attempt.
    await expect(run(rt, loop, { args: [], env: {}, poolKey: 'ns/loop', limits: { timeoutMs: 100 } })).rejects.toMatchObject({ code: 'timeout' });
    expect(rt.inlineStats.retries).toBe(retries + 1);
  });

  it('retries a guest that sleeps on a worker, where the sleep works', async () => {
    const sleepy = (await rt.compile(await wat2wasm(commandWat({
      imports: ['poll_oneoff', 'fd_write'],
      data: '(data (i32.const 512) "slept\\0a")',
      start: `(i32.store8 (i32.const 8) (i32.const 0)) (i32.store (i32.const 16) (i32.const 1)) (i64.store (i32.const 24) (i64.const 20000000))
        (drop (call $poll_oneoff (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))
        (i32.store (i32.const 300) (i32.const 512)) (i32.store (i32.const 304) (i32.const 6))
        (drop (call $fd_write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 308)))`,
    })))).digest;
    const retries = rt.inlineStats.retries;
    const started = performance.now();
    let res;
    // The first calls may run on a worker while the metered build compiles; one of them is tried inline.
    for (let i = 0; i < 50 && rt.inlineStats.retries === retries; i++) res = await run(rt, sleepy, { args: [], env: {}, poolKey: 'ns/sleepy' });
    expect(rt.inlineStats.retries).toBe(retries + 1);
    expect(dec(res!.stdout)).toBe('slept\n');
    expect(performance.now() - started).toBeGreaterThanOrEqual(20);
  });

  it('shows nothing of a discarded inline run: output comes from the worker run alone', async () => {
    // 3 million iterations need more fuel than an inline run gets.
    const spin = (await rt.compile(await wat2wasm(spinWat('once\n', 3_000_000)))).digest;
    const retries = rt.inlineStats.retries;
    let res;
    for (let i = 0; i < 50 && rt.inlineStats.retries === retries; i++) res = await run(rt, spin, { args: [], env: {}, poolKey: 'ns/spin' });
    expect(rt.inlineStats.retries).toBe(retries + 1);
    expect(dec(res!.stderr)).toBe('once\n');
    expect(dec(res!.stdout)).toBe('done\n');
  });

  it('moves a guest that makes the host copy too many bytes to a worker', async () => {
    // random_get over 17 MiB: more guest memory than an inline run may have the host touch (16 MiB).
    const heavy = (await rt.compile(await wat2wasm(commandWat({
      imports: ['random_get', 'fd_write'],
      memory: '280',
      data: '(data (i32.const 512) "filled\\0a")',
      start: `(drop (call $random_get (i32.const 1024) (i32.const 17825792)))
        (i32.store (i32.const 300) (i32.const 512)) (i32.store (i32.const 304) (i32.const 7))
        (drop (call $fd_write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 308)))`,
    })))).digest;
    const retries = rt.inlineStats.retries;
    let res;
    for (let i = 0; i < 50 && rt.inlineStats.retries === retries; i++) res = await run(rt, heavy, { args: [], env: {}, poolKey: 'ns/heavy' });
    expect(rt.inlineStats.retries).toBe(retries + 1);
    expect(dec(res!.stdout)).toBe('filled\n');
  });

  it('moves a guest that grows its memory past what an inline run may touch to a worker, with the same answer', async () => {
    const grower = (await rt.compile(await wat2wasm(programs.growAll))).digest;
    const req: InvokeRequest = { args: [], env: {}, poolKey: 'ns/grow', limits: { memoryBytes: 32 * 1024 * 1024 } };
    const retries = rt.inlineStats.retries;
    let res;
    for (let i = 0; i < 50 && rt.inlineStats.retries === retries; i++) res = await run(rt, grower, req);
    expect(rt.inlineStats.retries).toBe(retries + 1);
    // 32 MiB is 512 pages: the whole cap, reached on the worker (an inline run stops after about 16 MiB).
    expect(res!.exitCode).toBe(512);
  });

  it('sends a function whose runs cost a lot of fuel on average to the workers, judged on fuel, not time', async () => {
    // About 50,000 units a run: the moving average passes 20,000 on the fourth inline run.
    const busy = (await rt.compile(await wat2wasm(spinWat('', 50_000)))).digest;
    const req: InvokeRequest = { args: [], env: {}, poolKey: 'ns/busy' };
    await invokeUntilInline(rt, busy, req);
    const runs = rt.inlineStats.runs;
    for (let i = 0; i < 10; i++) expect(dec((await run(rt, busy, req)).stdout)).toBe('done\n');
    expect(rt.inlineStats.runs).toBe(runs + 3);
  });

  it('reports a trap exactly as a worker run does', async () => {
    const trap = (await rt.compile(await wat2wasm(programs.trap))).digest;
    for (let i = 0; i < 5; i++) {
      await expect(run(rt, trap, { args: [], env: {}, poolKey: 'ns/trap' })).rejects.toMatchObject({ code: 'trap' });
      await new Promise((r) => setTimeout(r, 5));
    }
  });

  it('never runs a function with host directories inline', async () => {
    const hello = (await rt.compile(await wat2wasm(helloWat('dirs\n')))).digest;
    const dir = mkdtempSync(join(tmpdir(), 'skiff-inline-'));
    const req: InvokeRequest = { args: [], env: {}, poolKey: 'ns/dirs', capabilities: { dirs: [{ host: dir, guest: '/data' }] } };
    const runs = rt.inlineStats.runs;
    for (let i = 0; i < 10; i++) {
      expect(dec((await run(rt, hello, req)).stdout)).toBe('dirs\n');
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(rt.inlineStats.runs).toBe(runs);
  });

  it('while the calling thread is saturated, sends functions that cost more than a hand-off to the workers and keeps cheap ones inline', async () => {
    // Lower thresholds than the defaults keep the test short: a sample also covers idle time before the busy spell.
    const own = new Runtime({ workers: 1, inline: { busyAbove: 0.6, busyBelow: 0.3 } });
    try {
      const cheap = (await own.compile(await wat2wasm(helloWat('cheap\n')))).digest;
      // About 12,000 units a run: above the default offload cost (5,000), below the average that sends a function away for good (20,000).
      const medium = (await own.compile(await wat2wasm(spinWat('', 12_000)))).digest;
      const cheapReq: InvokeRequest = { args: [], env: {}, poolKey: 'ns/cheap' };
      const mediumReq: InvokeRequest = { args: [], env: {}, poolKey: 'ns/medium' };
      // Idle first (the sample covers the last 50 ms), so the metered builds can be used.
      await new Promise((r) => setTimeout(r, 120));
      await invokeUntilInline(own, cheap, cheapReq);
      await invokeUntilInline(own, medium, mediumReq);
      // The moving average starts from zero: a few runs bring it near the function's real cost.
      for (let i = 0; i < 8; i++) await run(own, medium, mediumReq);
      // Hold this thread's event loop for over a sample: it now counts as saturated.
      const until = performance.now() + 200;
      while (performance.now() < until) { /* busy */ }
      let runs = own.inlineStats.runs;
      for (let i = 0; i < 3; i++) expect(dec((await run(own, medium, mediumReq)).stdout)).toBe('done\n');
      expect(own.inlineStats.runs).toBe(runs);
      for (let i = 0; i < 3; i++) expect(dec((await run(own, cheap, cheapReq)).stdout)).toBe('cheap\n');
      expect(own.inlineStats.runs).toBe(runs + 3);
      // Idle again: the medium function runs inline again.
      await new Promise((r) => setTimeout(r, 150));
      runs = own.inlineStats.runs;
      await run(own, medium, mediumReq);
      expect(own.inlineStats.runs).toBe(runs + 1);
    } finally {
      await own.close();
    }
  });

  it('can be turned off', async () => {
    const off = new Runtime({ workers: 1, inline: false });
    try {
      const hello = (await off.compile(await wat2wasm(helloWat('off\n')))).digest;
      for (let i = 0; i < 5; i++) expect(dec((await run(off, hello, { args: [], env: {} })).stdout)).toBe('off\n');
      expect(off.inlineStats).toEqual({ runs: 0, retries: 0 });
    } finally {
      await off.close();
    }
  });
});
