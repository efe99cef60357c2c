import { describe, expect, it } from 'vitest';

import { type RunSpec,SandboxHost } from '../../src/runtime/sandbox.js';
import { Wasm } from '../../src/runtime/wasm-api.js';

import { commandWat, wat2wasm } from './helpers/wat.js';

const spec = (over: Partial<RunSpec> = {}): RunSpec => ({
  args: ['t'], env: {}, dirs: [], clock: 'real', random: 'real', maxOutputBytes: 1 << 20, memoryBytes: 1 << 24, ...over,
});
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** iovec writes an iovec (buf, len) at `at`. */
const iovec = (at: number, buf: number, len: number) => `(i32.store (i32.const ${at}) (i32.const ${buf})) (i32.store (i32.const ${at + 4}) (i32.const ${len}))`;

// Four pieces to stdout (short, empty, long, short), then to stderr a list whose second entry points
// outside memory: the first call writes 104 bytes, the second fails with EFAULT and writes nothing.
// The exit code is the second call's errno; nwritten of the first lands at 0x8 and is echoed to stderr.
const program = commandWat({
  imports: ['fd_write', 'proc_exit'],
  data: `(data (i32.const 0x100) "abc") (data (i32.const 0x200) "${'x'.repeat(100)}")`,
  start: `
    ${iovec(0x10, 0x100, 3)} ${iovec(0x18, 0x300, 0)} ${iovec(0x20, 0x200, 100)} ${iovec(0x28, 0x100, 1)}
    (drop (call $fd_write (i32.const 1) (i32.const 0x10) (i32.const 4) (i32.const 0x8)))
    ${iovec(0x40, 0x100, 3)} ${iovec(0x48, 0xfffffff0, 4)}
    (i32.store8 (i32.const 0x60) (i32.load8_u (i32.const 0x8)))
    ${iovec(0x50, 0x60, 1)}
    (drop (call $fd_write (i32.const 2) (i32.const 0x50) (i32.const 1) (i32.const 0xc)))
    (call $proc_exit (call $fd_write (i32.const 2) (i32.const 0x40) (i32.const 2) (i32.const 0xc)))`,
});

describe('fd_write to captured output', () => {
  it('copies every piece in order, counts them, and writes nothing from a list with a bad pointer', async () => {
    const mod = new Wasm.Module(await wat2wasm(program));
    const host = new SandboxHost();
    for (let i = 0; i < 2; i++) {
      const out = host.run('k', mod, true, spec());
      expect(out.ok).toBe(true);
      if (!out.ok) return;
      expect(dec(out.stdout)).toBe(`abc${'x'.repeat(100)}a`);
      expect([...out.stderr]).toEqual([104]);
      expect(out.exitCode).toBe(21); // EFAULT
    }
  });

  it('stops at the output limit', async () => {
    const mod = new Wasm.Module(await wat2wasm(program));
    const out = new SandboxHost().run('k', mod, true, spec({ maxOutputBytes: 50 }));
    expect(out.ok).toBe(false);
    if (!out.ok) expect(out.code).toBe('output_limit');
  });
});

describe('args and environment with encoders shared across a host\'s instances', () => {
  it('gives each run its own args and environment, on fresh and reused instances of several modules', async () => {
    const { programs } = await import('./helpers/programs.js');
    const a = new Wasm.Module(await wat2wasm(programs.argsEnv));
    const b = new Wasm.Module(await wat2wasm(programs.argsEnv));
    const host = new SandboxHost(2);
    for (let i = 0; i < 6; i++) {
      const mod = i % 2 === 0 ? a : b;
      const env: Record<string, string> = i % 3 === 0 ? { RUN: String(i), WIDE: 'ünï' } : { RUN: String(i) };
      const out = host.run(i % 2 === 0 ? 'a' : 'b', mod, true, spec({ args: [`prog${i}`, 'x'.repeat(i)], env }));
      expect(out.ok).toBe(true);
      if (!out.ok) return;
      expect(dec(out.stdout)).toBe(`prog${i}\0${'x'.repeat(i)}\0`);
      expect(dec(out.stderr)).toBe(i % 3 === 0 ? `RUN=${i}\0WIDE=ünï\0` : `RUN=${i}\0`);
    }
  });
});
