import { WASI_FUNCTIONS } from '../../../src/runtime/wasi/constants.js';
import { type HostOptions,WasiHost } from '../../../src/runtime/wasi/host.js';
import { Wasm, type WasmMemory } from '../../../src/runtime/wasm-api.js';

import { wasiImport, wat2wasm } from './wat.js';

const TYPES: Record<string, string> = { i: 'i32', I: 'i64' };

/** harnessWat imports every preview 1 function and exports a thunk `call_<name>` with the same signature. */
export function harnessWat(): string {
  const thunks = Object.entries(WASI_FUNCTIONS).map(([name, sig]) => {
    const params = [...sig].map((c, i) => `(param $p${i} ${TYPES[c]})`).join(' ');
    const gets = [...sig].map((_, i) => `(local.get $p${i})`).join(' ');
    const result = name === 'proc_exit' ? '' : '(result i32)';
    return `(func (export "call_${name}") ${params} ${result} (call $${name} ${gets}))`;
  });
  return `(module
  ${Object.keys(WASI_FUNCTIONS).map(wasiImport).join('\n  ')}
  (memory (export "memory") 4)
  ${thunks.join('\n  ')}
)`;
}

let harnessBytes: Promise<Uint8Array> | undefined;

/**
 * Guest drives one WasiHost through the real Wasm boundary: each syscall is called from a Wasm thunk
 * (so i64 arguments cross as BigInt exactly as a compiled guest's would), and the test reads results
 * out of linear memory.
 */
export class Guest {
  readonly host: WasiHost;
  private readonly exports: Record<string, unknown>;
  private readonly memory: WasmMemory;
  private top = 1024;

  private constructor(host: WasiHost, exports: Record<string, unknown>) {
    this.host = host;
    this.exports = exports;
    this.memory = exports.memory as WasmMemory;
    host.memory.attach(this.memory);
  }

  static async create(opts: Partial<HostOptions> = {}): Promise<Guest> {
    harnessBytes ??= wat2wasm(harnessWat());
    const module = await Wasm.compile(await harnessBytes);
    const host = new WasiHost({ args: [], env: {}, ...opts });
    const instance = new Wasm.Instance(module, host.imports());
    return new Guest(host, instance.exports);
  }

  get u8(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
  }
  get dv(): DataView {
    return new DataView(this.memory.buffer);
  }

  /** alloc reserves `n` bytes (8-aligned) and returns the pointer. */
  alloc(n: number): number {
    const p = this.top;
    this.top += (n + 7) & ~7;
    return p;
  }

  /** str copies a string (or bytes) into memory and returns [ptr, len]. */
  str(s: string | Uint8Array): [number, number] {
    const b = typeof s === 'string' ? new TextEncoder().encode(s) : s;
    const p = this.alloc(b.length || 1);
    this.u8.set(b, p);
    return [p, b.length];
  }

  /** iovs builds an iovec array over fresh buffers (or given strings) and returns [ptr, count, bufferPtrs]. */
  iovs(parts: Array<number | string>): [number, number, number[]] {
    const arr = this.alloc(parts.length * 8);
    const ptrs: number[] = [];
    parts.forEach((part, i) => {
      const [p, len] = typeof part === 'number' ? [this.alloc(part), part] : this.str(part);
      ptrs.push(p);
      this.dv.setUint32(arr + i * 8, p, true);
      this.dv.setUint32(arr + i * 8 + 4, len, true);
    });
    return [arr, parts.length, ptrs];
  }

  /** call invokes `call_<name>` with the given arguments and returns what the host returned (the errno). */
  call(name: string, ...args: Array<number | bigint>): number {
    const fn = this.exports[`call_${name}`] as (...a: Array<number | bigint>) => number;
    return fn(...args);
  }

  u32(p: number): number {
    return this.dv.getUint32(p, true);
  }
  u16(p: number): number {
    return this.dv.getUint16(p, true);
  }
  u8at(p: number): number {
    return this.dv.getUint8(p);
  }
  u64(p: number): bigint {
    return this.dv.getBigUint64(p, true);
  }
  text(p: number, len: number): string {
    return new TextDecoder().decode(this.u8.subarray(p, p + len));
  }

  /** open is path_open with common defaults; returns [errno, fd]. */
  open(dirfd: number, path: string, opts: { oflags?: number; rights?: bigint; inheriting?: bigint; fdflags?: number; lookup?: number } = {}): [number, number] {
    const [p, l] = this.str(path);
    const out = this.alloc(4);
    const e = this.call('path_open', dirfd, opts.lookup ?? 1, p, l, opts.oflags ?? 0, opts.rights ?? (1n << 30n) - 1n, opts.inheriting ?? (1n << 30n) - 1n, opts.fdflags ?? 0, out);
    return [e, e === 0 ? this.u32(out) : -1];
  }

  /** write writes a string to fd; returns [errno, nwritten]. */
  write(fd: number, s: string): [number, number] {
    const [iov, n] = this.iovs([s]);
    const out = this.alloc(4);
    const e = this.call('fd_write', fd, iov, n, out);
    return [e, this.u32(out)];
  }

  /** read reads up to n bytes from fd; returns [errno, text]. */
  read(fd: number, n: number): [number, string] {
    const [iov, cnt, ptrs] = this.iovs([n]);
    const out = this.alloc(4);
    const e = this.call('fd_read', fd, iov, cnt, out);
    return [e, e === 0 ? this.text(ptrs[0]!, this.u32(out)) : ''];
  }

  /** pathCall calls a (fd, path, len) style function. */
  pathCall(name: string, fd: number, path: string): number {
    const [p, l] = this.str(path);
    return this.call(name, fd, p, l);
  }
}
