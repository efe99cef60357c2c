import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it, vi } from 'vitest';

import { HostFs } from '../../src/runtime/fs/host-fs.js';
import { MemFs } from '../../src/runtime/fs/mem-fs.js';
import { BULK_BYTES_PER_UNIT, meter } from '../../src/runtime/meter.js';
import { type RunSpec,SandboxHost } from '../../src/runtime/sandbox.js';
import { E, OFLAGS } from '../../src/runtime/wasi/constants.js';
import { BudgetSpent, GuestMemoryFault, GuestUnwind, HostError, WouldBlock } from '../../src/runtime/wasi/faults.js';
import type { Stream } from '../../src/runtime/wasi/fd-table.js';
import { Wasm } from '../../src/runtime/wasm-api.js';

import { Guest } from './helpers/guest.js';
import { commandWat, wat2wasm } from './helpers/wat.js';

const spec = (over: Partial<RunSpec> = {}): RunSpec => ({
  args: ['t'], env: {}, dirs: [], clock: 'real', random: 'real', maxOutputBytes: 1 << 20, memoryBytes: 1 << 24, ...over,
});

/** throwing is a stdout stream whose write fails the way a host bug would. */
function throwing(err: unknown): Stream {
  return { write: () => { throw err; }, writeRange: () => { throw err; } };
}

/** thrown runs fn and returns what it threw (undefined if it returned). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('guest memory faults', () => {
  it('answers an out-of-bounds pointer or length with EFAULT, and nothing else does', async () => {
    const g = await Guest.create();
    const out = g.alloc(4);
    // 4 pages of memory: a result pointer past the end, an iovec array past the end, an iovec whose buffer is past the end.
    expect(g.call('args_sizes_get', 4 * 65536 - 2, out)).toBe(E.FAULT);
    expect(g.call('fd_write', 1, 4 * 65536 - 4, 1, out)).toBe(E.FAULT);
    const [iov] = g.iovs(['x']);
    g.dv.setUint32(iov + 4, 0xffffff00, true);
    expect(g.call('fd_write', 1, iov, 1, out)).toBe(E.FAULT);
    expect(g.call('random_get', 0xfffffff0, 64)).toBe(E.FAULT);
  });

  it('throws GuestMemoryFault from GuestMemory, naming the range', async () => {
    const g = await Guest.create();
    const err = thrown(() => g.host.memory.check(4 * 65536 - 2, 4));
    expect(err).toBeInstanceOf(GuestMemoryFault);
    expect((err as GuestMemoryFault).errno).toBe(E.FAULT);
    expect((err as Error).message).toContain('outside its 262144-byte memory');
  });
});

describe('budgets', () => {
  it('unwinds with BudgetSpent, a WouldBlock, when the byte budget is spent (not an errno)', async () => {
    const g = await Guest.create({ byteBudget: 8 });
    const [iov, n] = g.iovs(['four']);
    const out = g.alloc(4);
    expect(g.call('fd_write', 1, iov, n, out)).toBe(E.SUCCESS);
    const err = thrown(() => g.call('random_get', g.alloc(16), 16));
    expect(err).toBeInstanceOf(BudgetSpent);
    expect(err).toBeInstanceOf(WouldBlock);
    expect(err).toBeInstanceOf(GuestUnwind);
  });

  it('unwinds with WouldBlock when a thread that may not block is asked to sleep', async () => {
    const g = await Guest.create({ mayBlock: false });
    const sub = g.alloc(48), ev = g.alloc(32), n = g.alloc(4);
    // One relative clock subscription (type 0) on the monotonic clock for 1 ms.
    g.dv.setUint8(sub + 8, 0);
    g.dv.setUint32(sub + 16, 1, true);
    g.dv.setBigUint64(sub + 24, 1_000_000n, true);
    const err = thrown(() => g.call('poll_oneoff', sub, ev, 1, n));
    expect(err).toBeInstanceOf(WouldBlock);
    expect(err).not.toBeInstanceOf(BudgetSpent);
  });

  it('keeps the run outcome for a spent byte budget: timeout, then a worker may run it', async () => {
    const bytes = await wat2wasm(commandWat({
      imports: ['random_get'],
      memory: '2',
      start: '(drop (call $random_get (i32.const 1024) (i32.const 65536)))',
    }));
    const metered = await Wasm.compile(meter(bytes, 0)!);
    const host = new SandboxHost();
    // Fuel enough for the code, but a byte budget (fuel × BULK_BYTES_PER_UNIT) below the 64 KiB asked for.
    const r = host.run('budget', metered, false, spec(), Math.floor(32768 / BULK_BYTES_PER_UNIT));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.code).toBe('timeout');
    expect(r.message).toContain('moved more bytes through the host');
  });
});

describe('host errors', () => {
  it('surfaces a syscall that throws a host bug as HostError naming the syscall, never EFAULT', async () => {
    for (const bug of [new TypeError('injected bug'), new RangeError('injected range bug'), new Error('plain')]) {
      const g = await Guest.create({ stdout: throwing(bug) });
      const [iov, n] = g.iovs(['hello']);
      const err = thrown(() => g.call('fd_write', 1, iov, n, g.alloc(4)));
      expect(err).toBeInstanceOf(HostError);
      expect((err as HostError).syscall).toBe('fd_write');
      expect((err as HostError).message).toBe(`host error in fd_write: ${bug.name}: ${bug.message}`);
      expect((err as HostError).cause).toBe(bug);
    }
  });

  it('surfaces a BigInt conversion that fails inside the host as a host error', async () => {
    const g = await Guest.create({ mounts: [{ guest: '/m', backend: new MemFs(), readOnly: false }] });
    const [e, fd] = g.open(3, 'f', { oflags: OFLAGS.CREAT });
    expect(e).toBe(E.SUCCESS);
    // A backend that hands a non-integer size to BigInt(): the RangeError is the host's, not the guest's.
    vi.spyOn(MemFs.prototype, 'stat').mockImplementation(() => { BigInt(0.5); throw new Error('unreachable'); });
    const err = thrown(() => g.call('fd_filestat_get', fd, g.alloc(64)));
    expect(err).toBeInstanceOf(HostError);
    expect((err as Error).message).toMatch(/^host error in fd_filestat_get: RangeError: /);
  });

  it('lets a stack overflow inside a syscall end the run as the guest\'s, not as EFAULT or a host error', async () => {
    const g = await Guest.create({ stdout: throwing(new RangeError('Maximum call stack size exceeded')) });
    const [iov, n] = g.iovs(['x']);
    const err = thrown(() => g.call('fd_write', 1, iov, n, g.alloc(4)));
    expect(err).toBeInstanceOf(RangeError);
    expect(err).not.toBeInstanceOf(HostError);
  });

  it('fails the run with host_error and the syscall in the message', async () => {
    const bytes = await wat2wasm(commandWat({
      imports: ['path_create_directory', 'proc_exit'],
      data: '(data (i32.const 16) "d")',
      start: '(call $proc_exit (call $path_create_directory (i32.const 3) (i32.const 16) (i32.const 1)))',
    }));
    const mod = await Wasm.compile(bytes);
    const host = new SandboxHost();
    const ok = host.run('mkdir', mod, false, spec({ memfs: '/tmp' }));
    expect(ok.ok && ok.exitCode).toBe(0);
    vi.spyOn(MemFs.prototype, 'mkdir').mockImplementation(() => { throw new TypeError('injected bug'); });
    const r = host.run('mkdir', mod, false, spec({ memfs: '/tmp' }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.code).toBe('host_error');
    expect(r.message).toBe('host error in path_create_directory: TypeError: injected bug');
  });
});

describe('guest values that Node would refuse', () => {
  it('answers a file offset past 2^53 with EFBIG instead of a rounded offset or a host error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-faults-'));
    try {
      const g = await Guest.create({ mounts: [{ guest: '/m', backend: new HostFs(dir, false), readOnly: false }] });
      const [e, fd] = g.open(3, 'f', { oflags: OFLAGS.CREAT });
      expect(e).toBe(E.SUCCESS);
      const [iov, n] = g.iovs(['x']);
      const out = g.alloc(4);
      expect(g.call('fd_pwrite', fd, iov, n, 2n ** 53n + 1n, out)).toBe(E.FBIG);
      expect(g.call('fd_pwrite', fd, iov, n, 2n ** 63n - 1n, out)).toBe(E.FBIG);
      expect(g.call('fd_pwrite', fd, iov, n, 3n, out)).toBe(E.SUCCESS);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
