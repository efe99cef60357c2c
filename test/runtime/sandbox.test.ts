import { describe, expect, it } from 'vitest';

import { GLOBAL_EXPORT_PREFIX,parseLayout, rewrite } from '../../src/runtime/binary.js';
import { capabilitiesOf, inspectModule, unknownImportsOf } from '../../src/runtime/inspect.js';
import { ModuleCache } from '../../src/runtime/module-cache.js';
import { type RunSpec,SandboxHost } from '../../src/runtime/sandbox.js';
import { Wasm } from '../../src/runtime/wasm-api.js';

import { commandWat, helloWat, wat2wasm } from './helpers/wat.js';

const spec = (over: Partial<RunSpec> = {}): RunSpec => ({
  args: ['t'], env: {}, dirs: [], clock: 'real', random: 'real', maxOutputBytes: 1 << 20, memoryBytes: 1 << 24, ...over,
});

describe('binary rewriting', () => {
  it('caps the memory maximum and exports mutable globals', async () => {
    const bytes = await wat2wasm(commandWat({ imports: [], memory: '2 1000', extra: '(global (mut i32) (i32.const 1)) (global i32 (i32.const 2)) (global (mut i64) (i64.const -5))', start: 'nop' }));
    const layout = parseLayout(bytes);
    expect(layout.memories).toEqual([{ min: 2, max: 1000, shared: false, memory64: false }]);
    expect(layout.mutableGlobals).toEqual([0, 2]);
    const out = rewrite(bytes, layout, 10, true);
    expect(parseLayout(out).memories[0]!.max).toBe(10);
    const mod = await Wasm.compile(out);
    const names = Wasm.Module.exports(mod).map((e) => e.name);
    expect(names).toEqual(['memory', '_start', `${GLOBAL_EXPORT_PREFIX}0`, `${GLOBAL_EXPORT_PREFIX}2`]);
    const inst = new Wasm.Instance(mod, {});
    // From JS a refused grow throws; inside the guest memory.grow returns -1 (see runtime-limits).
    expect(() => (inst.exports.memory as { grow(n: number): number }).grow(9)).toThrow(RangeError);
    expect((inst.exports.memory as { grow(n: number): number }).grow(8)).toBe(2);
  });

  it('adds an export section when a module has none, in the right place', async () => {
    const bytes = await wat2wasm('(module (memory 1) (global (mut i32) (i32.const 7)) (func (result i32) (global.get 0)) (data (i32.const 0) "x"))');
    const out = rewrite(bytes, parseLayout(bytes), 4, true);
    const inst = new Wasm.Instance(await Wasm.compile(out), {});
    expect((inst.exports[`${GLOBAL_EXPORT_PREFIX}0`] as { value: number }).value).toBe(7);
  });
});

describe('inspect', () => {
  it('derives capabilities from imports and names unknown imports', async () => {
    const imports = [
      { module: 'wasi_snapshot_preview1', name: 'fd_write', kind: 'function' },
      { module: 'wasi_snapshot_preview1', name: 'path_open', kind: 'function' },
      { module: 'wasi_snapshot_preview1', name: 'sock_accept', kind: 'function' },
      { module: 'env', name: 'x', kind: 'function' },
    ];
    expect(capabilitiesOf(imports)).toEqual(['stdout', 'dirs', 'sockets']);
    expect(unknownImportsOf(imports)).toEqual(['env.x']);
    const info = await inspectModule(await wat2wasm(helloWat('x')));
    expect(info.isCommand).toBe(true);
    expect(info.capabilities).toEqual(['stdout', 'exit']);
    expect(info.memories[0]).toMatchObject({ min: 1, max: null });
  });

  it('compiles once per digest and once per memory cap', async () => {
    const cache = new ModuleCache(256);
    const bytes = await wat2wasm(helloWat('x'));
    const a = await cache.compile(bytes);
    expect(await cache.compile(bytes)).toBe(a);
    const v1 = await cache.variant(a.digest, 1 << 20);
    expect(await cache.variant(a.digest, 1 << 20)).toBe(v1);
    expect((await cache.variant(a.digest, 2 << 20)).key).not.toBe(v1.key);
  });
});

describe('SandboxHost', () => {
  it('reuses a warm instance, resets memory and globals, and never leaks a previous request', async () => {
    const wat = commandWat({
      imports: ['proc_exit', 'args_sizes_get'],
      extra: '(global $g (mut i32) (i32.const 0))',
      // Exit code: what a previous run left in memory at 60000, plus the global; then leave traces.
      start: `(call $args_sizes_get (i32.const 0) (i32.const 4)) drop
        (i32.add (i32.load (i32.const 60000)) (global.get $g))
        (i32.store (i32.const 60000) (i32.const 99)) (global.set $g (i32.const 7))
        (call $proc_exit)`,
    });
    const mod = await Wasm.compile(rewrite(await wat2wasm(wat), parseLayout(await wat2wasm(wat)), 256, true));
    const host = new SandboxHost();
    const runs = [1, 2, 3].map(() => host.run('k', mod, true, spec()));
    expect(runs.map((r) => r.ok && r.exitCode)).toEqual([0, 0, 0]);
    expect(runs.map((r) => r.ok && r.reused)).toEqual([false, true, true]);
  });

  it('discards an instance after a trap and after memory growth', async () => {
    const trap = await Wasm.compile(await wat2wasm(commandWat({ imports: [], start: 'unreachable' })));
    const host = new SandboxHost();
    const r1 = host.run('t', trap, true, spec());
    expect(r1.ok).toBe(false);
    const grow = await Wasm.compile(await wat2wasm(commandWat({ imports: [], start: '(drop (memory.grow (i32.const 1)))' })));
    const a = host.run('g', grow, true, spec());
    const b = host.run('g', grow, true, spec());
    expect(a.ok && b.ok && !a.reused && !b.reused).toBe(true);
  });

  it('reports an instantiate time well under a millisecond once warm', async () => {
    const mod = await Wasm.compile(await wat2wasm(helloWat('hi')));
    const host = new SandboxHost();
    const times: number[] = [];
    for (let i = 0; i < 300; i++) {
      const r = host.run('h', mod, true, spec());
      if (r.ok) times.push(r.instantiateUs);
    }
    times.sort((x, y) => x - y);
    expect(times[150]!).toBeLessThan(1000);
  });
});

describe('excessGrants', () => {
  it('warns about grants the module cannot use, and only those', async () => {
    const { excessGrants } = await import('../../src/runtime/index.js');
    expect(excessGrants(['stdout'], { dirs: [{}], env: { A: '1' }, clock: 'frozen', random: 'real', memfs: true })).toHaveLength(5);
    expect(excessGrants(['stdout', 'dirs', 'env', 'clocks', 'random'], { dirs: [{}], env: { A: '1' }, clock: 'frozen', random: 'real', memfs: true })).toEqual([]);
    expect(excessGrants(['stdout'], { env: {} })).toEqual([]);
  });
});

describe('LruSet', () => {
  it('evicts the least recently touched key beyond its cap', async () => {
    const { LruSet } = await import('../../src/runtime/pool/lru-set.js');
    const l = new LruSet(2);
    expect(l.touch('a')).toBeUndefined();
    expect(l.touch('b')).toBeUndefined();
    expect(l.touch('a')).toBeUndefined();
    expect(l.touch('c')).toBe('b');
    expect(l.has('a') && l.has('c') && !l.has('b')).toBe(true);
  });
});

describe('WorkerPool', () => {
  it('fails waiting callers, instead of hanging, when workers cannot start', async () => {
    const { WorkerPool } = await import('../../src/runtime/pool/worker-pool.js');
    const warnings: string[] = [];
    const pool = new WorkerPool(1, { warn: (_o, m) => warnings.push(m ?? '') }, new URL('file:///nonexistent/skiff-worker.js'));
    const mod = await Wasm.compile(await wat2wasm(helloWat('x')));
    const t0 = Date.now();
    const err = await pool.run({ key: 'k', digest: 'k', module: mod, maxPages: 1, minPages: 1, reusable: true }, spec(), 5000).catch((e) => e);
    expect(err.code).toBe('worker_failed');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(warnings.length).toBeGreaterThanOrEqual(3);
    await expect(pool.run({ key: 'k', digest: 'k', module: mod, maxPages: 1, minPages: 1, reusable: true }, spec(), 5000)).rejects.toMatchObject({ code: 'worker_failed' });
    await pool.close();
  });
});
