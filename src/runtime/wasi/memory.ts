import { FsError } from '../fs/types.js';
import type { WasmMemory } from '../wasm-api.js';

import { E, IOVEC } from './constants.js';
import { BudgetSpent, GuestMemoryFault } from './faults.js';

const decoder = new TextDecoder('utf-8', { fatal: true });
/** Most iovecs one call may pass (POSIX IOV_MAX on Linux). */
export const IOV_MAX = 1024;
const encoder = new TextEncoder();

/**
 * GuestMemory reads and writes the guest's linear memory. The views are rebuilt whenever the guest
 * grew its memory (the old ArrayBuffer is then detached), so every syscall sees the current bytes.
 * Out-of-range pointers throw GuestMemoryFault (EFAULT to the guest) instead of a host exception.
 */
export class GuestMemory {
  private memory: WasmMemory | null = null;
  private buffer: ArrayBuffer | null = null;
  private u8cache = new Uint8Array(0);
  private dvcache = new DataView(new ArrayBuffer(0));
  /** A shared memory grows in place (new buffer object, old one not detached): always re-read. */
  private shared = false;
  /**
   * Bytes of guest memory the host may still hand out as views this run (what it reads or writes
   * there): unbounded on a thread that may block; bounded on one that serves others, where running
   * out unwinds the guest with BudgetSpent so the run moves to a worker.
   */
  byteBudget = Number.POSITIVE_INFINITY;

  /** attach points the views at an instance's exported memory. */
  attach(memory: WasmMemory): void {
    this.memory = memory;
    this.buffer = null;
    this.u8cache = new Uint8Array(0);
  }

  private refresh(): void {
    // Reading `memory.buffer` calls into the engine; on every syscall that adds up. A non-shared
    // memory's old buffer is detached (length 0) when it grows, so the cached views stay valid until then.
    if (this.u8cache.byteLength !== 0 && this.buffer !== null && !this.shared) return;
    const buf = this.memory?.buffer;
    if (!buf) throw new FsError(E.FAULT, 'the module exports no memory');
    if (buf !== this.buffer) {
      this.buffer = buf as ArrayBuffer;
      this.shared = typeof SharedArrayBuffer !== 'undefined' && buf instanceof SharedArrayBuffer;
      this.u8cache = new Uint8Array(buf);
      this.dvcache = new DataView(buf);
    }
  }

  get u8(): Uint8Array {
    this.refresh();
    return this.u8cache;
  }

  get dv(): DataView {
    this.refresh();
    return this.dvcache;
  }

  /** check throws GuestMemoryFault (EFAULT) unless [ptr, ptr+len) lies inside memory. */
  check(ptr: number, len: number): void {
    const size = this.u8.length;
    if (ptr < 0 || len < 0 || ptr + len > size) throw new GuestMemoryFault(ptr, len, size);
  }

  /** bytes returns a live view of [ptr, ptr+len). */
  bytes(ptr: number, len: number): Uint8Array {
    ptr >>>= 0;
    len >>>= 0;
    this.take(ptr, len);
    return this.u8cache.subarray(ptr, ptr + len);
  }

  /**
   * take checks that [ptr, ptr+len) lies inside memory and charges it to the byte budget, like
   * bytes(), for a caller that then reads `u8` itself.
   */
  take(ptr: number, len: number): void {
    this.check(ptr, len);
    if ((this.byteBudget -= len) < 0) throw new BudgetSpent();
  }

  /** string decodes a path or name; invalid UTF-8 is EILSEQ as the specification asks. */
  string(ptr: number, len: number): string {
    try {
      return decoder.decode(this.bytes(ptr, len));
    } catch (err) {
      if (err instanceof FsError) throw err;
      throw new FsError(E.ILSEQ);
    }
  }

  /** iovecs resolves an iovec/ciovec array into live views of guest memory (at most IOV_MAX, like POSIX). */
  iovecs(ptr: number, count: number): Uint8Array[] {
    ptr >>>= 0;
    count >>>= 0;
    if (count > IOV_MAX) throw new FsError(E.INVAL);
    this.check(ptr, count * IOVEC.SIZE);
    const dv = this.dvcache;
    const out: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const base = ptr + i * IOVEC.SIZE;
      out.push(this.bytes(dv.getUint32(base + IOVEC.BUF, true), dv.getUint32(base + IOVEC.LEN, true)));
    }
    return out;
  }

  u32(ptr: number, value: number): void {
    this.check(ptr >>> 0, 4);
    this.dvcache.setUint32(ptr >>> 0, value >>> 0, true);
  }

  u64(ptr: number, value: bigint): void {
    this.check(ptr >>> 0, 8);
    this.dvcache.setBigUint64(ptr >>> 0, BigInt.asUintN(64, value), true);
  }
}

/** utf8 encodes a string for the guest. */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}
