import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Runtime, RuntimeError } from '../../src/runtime/index.js';

import { componentHeader, gcModule, memory64Module, programs } from './helpers/programs.js';
import { commandWat, helloWat, wat2wasm } from './helpers/wat.js';

const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const enc = (s: string) => new TextEncoder().encode(s);

describe('Runtime limits and bad input', () => {
  let rt: Runtime;
  const warnings: Array<[object, string | undefined]> = [];
  const digests: Record<string, string> = {};
  beforeAll(async () => {
    rt = new Runtime({ workers: 2, logger: { warn: (o, m) => warnings.push([o, m]) } });
    for (const [name, wat] of Object.entries({ ...programs, hello: helloWat('hi\n') })) {
      if (name === 'foreign' || name === 'reactor') continue;
      digests[name] = (await rt.compile(await wat2wasm(wat))).digest;
    }
  });
  afterAll(async () => {
    await rt.close();
  });

  it('an infinite loop hits its deadline, its worker is replaced, and nothing else stalls', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const t0 = Date.now();
    let loopEnded = false;
    const looping = rt.invoke(digests.loop!, { args: [], env: {}, limits: { timeoutMs: 4000 } }).catch((e) => {
      loopEnded = true;
      return e;
    });
    await new Promise((r) => setTimeout(r, 100));
    // The other worker keeps serving while the loop spins.
    const other = await rt.invoke(digests.hello!, { args: [], env: {} });
    expect(dec(other.stdout)).toBe('hi\n');
    expect(loopEnded).toBe(false);
    const err = await looping;
    clearInterval(timer);
    expect(err).toBeInstanceOf(RuntimeError);
    expect(err.code).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(10_000);
    // The caller's event loop kept running during the loop.
    expect(ticks).toBeGreaterThan(10);
    expect(warnings.some(([, m]) => m?.includes('deadline'))).toBe(true);
    // Both workers serve again afterwards (one of them is the replacement).
    const after = await Promise.all([1, 2, 3, 4].map(() => rt.invoke(digests.hello!, { args: [], env: {} })));
    expect(after.every((r) => dec(r.stdout) === 'hi\n')).toBe(true);
  });

  it('a function looping on every worker it may use still leaves one for other functions', async () => {
    const rt3 = new Runtime({ workers: 3 });
    try {
      const loop = (await rt3.compile(await wat2wasm(programs.loop))).digest;
      const hello = (await rt3.compile(await wat2wasm(helloWat('still here\n')))).digest;
      const ended: number[] = [];
      const runaway = [1, 2, 3].map(() =>
        rt3.invoke(loop, { args: [], env: {}, poolKey: 'ns/runaway', limits: { timeoutMs: 4000 } }).catch((e) => {
          ended.push(Date.now());
          return e;
        }),
      );
      await new Promise((r) => setTimeout(r, 200));
      const r = await rt3.invoke(hello, { args: [], env: {}, poolKey: 'ns/other' });
      expect(new TextDecoder().decode(r.stdout)).toBe('still here\n');
      // Served while the runaway function still held its workers, not after its deadlines freed them.
      expect(ended).toEqual([]);
      expect((await Promise.all(runaway)).map((e) => e.code)).toEqual(['timeout', 'timeout', 'timeout']);
    } finally {
      await rt3.close();
    }
  });

  it('a guest sleeping in poll_oneoff is stopped at its deadline too', async () => {
    const t0 = Date.now();
    const err = await rt.invoke(digests.sleep!, { args: [], env: {}, limits: { timeoutMs: 300 } }).catch((e) => e);
    expect(err.code).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(5000);
    await expect(rt.invoke(digests.hello!, { args: [], env: {} })).resolves.toMatchObject({ exitCode: 0 });
  });

  it('queues beyond the concurrency limit, then refuses with overloaded', async () => {
    const req = { args: [], env: {}, poolKey: 'ns/busy', limits: { timeoutMs: 300, concurrency: 1, queue: 1 } };
    const a = rt.invoke(digests.loop!, req).catch((e) => e);
    const b = rt.invoke(digests.loop!, req).catch((e) => e);
    const c = await rt.invoke(digests.loop!, req).catch((e) => e);
    expect(c.code).toBe('overloaded');
    expect((await a).code).toBe('timeout');
    expect((await b).code).toBe('timeout');
  });

  it('refuses to grow memory past the limit (a 4 GiB allocation fails inside the guest)', async () => {
    const r = await rt.invoke(digests.grow4g!, { args: [], env: {} });
    expect(r.exitCode).toBe(1);
    const pages = await rt.invoke(digests.growAll!, { args: [], env: {}, limits: { memoryBytes: 10 * 65536 } });
    expect(pages.exitCode).toBe(10);
  });

  it('refuses modules whose declared minimum memory exceeds the limit', async () => {
    const err = await rt.invoke(digests.bigMin!, { args: [], env: {}, limits: { memoryBytes: 1 << 20 } }).catch((e) => e);
    expect(err.code).toBe('memory_limit');
    expect(err.message).toContain('minimum memory');
    await expect(rt.invoke(digests.bigMin!, { args: [], env: {} })).resolves.toMatchObject({ exitCode: 0 });
  });

  it('stops an output flood at the output limit', async () => {
    const err = await rt.invoke(digests.flood!, { args: [], env: {}, limits: { maxOutputBytes: 1 << 20 } }).catch((e) => e);
    expect(err.code).toBe('output_limit');
  });

  it('reports traps with the trap message and keeps serving', async () => {
    const err = await rt.invoke(digests.trap!, { args: [], env: {} }).catch((e) => e);
    expect(err.code).toBe('trap');
    expect(err.message).toContain('unreachable');
    await expect(rt.invoke(digests.hello!, { args: [], env: {} })).resolves.toMatchObject({ exitCode: 0 });
    const deep = await rt.invoke(digests.recurse!, { args: [], env: {} }).catch((e) => e);
    expect(deep.code).toBe('trap');
    expect(deep.message).toMatch(/call stack/i);
  });

  it('passes stdin, args and env, and nothing else', async () => {
    const cat = await rt.invoke(digests.cat!, { args: [], env: {}, stdin: enc('x'.repeat(10000) + 'end') });
    expect(dec(cat.stdout)).toBe('x'.repeat(10000) + 'end');
    const r = await rt.invoke(digests.argsEnv!, { args: ['prog', 'a b'], env: { REQUEST_METHOD: 'GET' }, capabilities: { env: { FROM_CAPS: '1' } } });
    expect(dec(r.stdout).split('\0')).toEqual(['prog', 'a b', '']);
    expect(dec(r.stderr).split('\0').sort()).toEqual(['', 'FROM_CAPS=1', 'REQUEST_METHOD=GET']);
  });

  it('traces every WASI call to stderr when asked', async () => {
    const r = await rt.invoke(digests.hello!, { args: [], env: {}, trace: true });
    expect(dec(r.stdout)).toBe('hi\n');
    expect(dec(r.stderr).trim().split('\n')).toEqual(['[wasi] fd_write(1, 0, 1, 8) = ok', '[wasi] proc_exit(0) -> unwinds (exit 0)']);
    const quiet = await rt.invoke(digests.hello!, { args: [], env: {} });
    expect(quiet.stderr.length).toBe(0);
  });

  it('refuses huge argv and environments', async () => {
    const err = await rt.invoke(digests.argsEnv!, { args: ['x'.repeat(2 << 20)], env: {} }).catch((e) => e);
    expect(err.code).toBe('invalid_options');
    const err2 = await rt.invoke(digests.argsEnv!, { args: [], env: { BIG: 'y'.repeat(2 << 20) } }).catch((e) => e);
    expect(err2.code).toBe('invalid_options');
  });

  it('resets a reused instance to its initial state', async () => {
    const runs = [];
    for (let i = 0; i < 6; i++) runs.push((await rt.invoke(digests.counter!, { args: [], env: {} })).exitCode);
    expect(runs).toEqual([16, 16, 16, 16, 16, 16]);
  });

  it('grants preopened host directories and memfs scratch space', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-rt-'));
    try {
      writeFileSync(join(dir, 'in.txt'), 'data');
      // The dirs capability is validated before anything runs.
      const err = await rt.invoke(digests.hello!, { args: [], env: {}, capabilities: { dirs: [{ host: join(dir, 'missing'), guest: '/' }] } }).catch((e) => e);
      expect(err.code).toBe('invalid_options');
      const ok = await rt.invoke(digests.hello!, { args: [], env: {}, capabilities: { dirs: [{ host: dir, guest: '/data', readOnly: true }], memfs: true } });
      expect(ok.exitCode).toBe(0);
      expect(readFileSync(join(dir, 'in.txt'), 'utf8')).toBe('data');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('logs a refused escape attempt and returns EPERM to the guest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-esc-'));
    try {
      // Exit code: the errno path_open returned for "../etc/passwd" beneath the preopen (fd 3).
      const wat = commandWat({
        imports: ['path_open', 'proc_exit'],
        data: '(data (i32.const 200) "../etc/passwd")',
        start: '(call $proc_exit (call $path_open (i32.const 3) (i32.const 1) (i32.const 200) (i32.const 13) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 100)))',
      });
      const info = await rt.compile(await wat2wasm(wat));
      const before = warnings.length;
      const r = await rt.invoke(info.digest, { args: [], env: {}, capabilities: { dirs: [{ host: dir, guest: '/data' }] }, poolKey: 'ns/escaper' });
      expect(r.exitCode).toBe(63);
      expect(r.notes).toEqual([expect.stringContaining('"../etc/passwd"')]);
      const logged = warnings.slice(before).map(([o, m]) => ({ ...(o as object), m }));
      expect(logged).toEqual([expect.objectContaining({ poolKey: 'ns/escaper', m: expect.stringContaining('"../etc/passwd"') })]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('enforces the bytes-written quota through the runtime', async () => {
    const info = await rt.compile(await wat2wasm(commandWat({
      imports: ['path_open', 'fd_write', 'proc_exit'],
      data: '(data (i32.const 200) "f") (data (i32.const 300) "0123456789")',
      start: `(drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 200) (i32.const 1) (i32.const 1) (i64.const 0x40) (i64.const 0) (i32.const 0) (i32.const 100)))
        (i32.store (i32.const 0) (i32.const 300)) (i32.store (i32.const 4) (i32.const 10))
        (drop (call $fd_write (i32.load (i32.const 100)) (i32.const 0) (i32.const 1) (i32.const 8)))
        (call $proc_exit (call $fd_write (i32.load (i32.const 100)) (i32.const 0) (i32.const 1) (i32.const 8)))`,
    })));
    const r = await rt.invoke(info.digest, { args: [], env: {}, capabilities: { memfs: '/' }, limits: { maxWriteBytes: 15 } });
    expect(r.exitCode).toBe(0);
    const r2 = await rt.invoke(info.digest, { args: [], env: {}, capabilities: { memfs: '/' }, limits: { maxWriteBytes: 10 } });
    expect(r2.exitCode).toBe(19);
  });

  it('refuses bad modules with coded errors', async () => {
    await expect(rt.compile(enc('not wasm at all'))).rejects.toMatchObject({ code: 'not_wasm' });
    await expect(rt.compile(componentHeader)).rejects.toMatchObject({ code: 'unsupported_feature' });
    const m64 = await rt.compile(memory64Module).catch((e) => e);
    expect(m64.code).toBe('unsupported_feature');
    expect(m64.message).toContain('memory64');
    const gc = await rt.compile(gcModule).catch((e) => e);
    expect(gc.code).toBe('unsupported_feature');
    expect(gc.message).toContain('garbage collection (wasm-gc)');
    const foreign = await rt.compile(await wat2wasm(programs.foreign)).catch((e) => e);
    expect(foreign.code).toBe('missing_imports');
    expect(foreign.details).toEqual(['env.emscripten_notify', 'wasi_snapshot_preview1.no_such_call']);
    expect(foreign.message).toContain('env.emscripten_notify');
    const broken = await rt.compile(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x01, 0x05, 0x01])).catch((e) => e);
    expect(['invalid_module', 'unsupported_feature']).toContain(broken.code);
    const reactor = await rt.compile(await wat2wasm(programs.reactor));
    await expect(rt.invoke(reactor.digest, { args: [], env: {} })).rejects.toMatchObject({ code: 'not_a_command' });
  });

  it('validates limits', async () => {
    await expect(rt.invoke(digests.hello!, { args: [], env: {}, limits: { timeoutMs: -1 } })).rejects.toMatchObject({ code: 'invalid_options' });
  });
});
