import { randomFillSync } from 'node:crypto';

import { FsError } from '../fs/types.js';

import { CLOCK, E } from './constants.js';
import { GuestUnwind, WouldBlock } from './faults.js';

/** ProcExit is thrown by `proc_exit` (and fatal `proc_raise`) to unwind the guest; the runner catches it. */
export class ProcExit extends GuestUnwind {
  constructor(readonly code: number) {
    super();
  }
}

/** A frozen clock starts here (2024-01-01T00:00:00Z) so guests see a plausible, reproducible date. */
const FROZEN_EPOCH_NS = 1_704_067_200_000_000_000n;

/**
 * Clock gives the guest time. 'real' reads the host clocks at nanosecond resolution; 'frozen' starts
 * at a fixed instant and only moves when the guest sleeps through `poll_oneoff`, so runs are reproducible.
 */
export class Clock {
  private readonly frozen: boolean;
  private virtualNs = 0n;
  /** Wall-clock minus monotonic time in ns, taken on the first real-time read: a Clock is built per request. */
  private realOffset: bigint | undefined;
  /** When the run started (performance.now() ms): cheaper than a bigint clock read on every request. */
  private readonly startMs: number;
  private startCpu: bigint | undefined;
  constructor(mode: 'real' | 'frozen', private readonly mayBlock = true) {
    this.frozen = mode === 'frozen';
    this.startMs = performance.now();
  }

  /**
   * cpuSinceStart is the CPU clock. A Clock is built for every request and reading CPU usage is a
   * getrusage(2) call, so the baseline is taken on the first CPU-clock read, backdated by the wall
   * time since the run started (the guest runs synchronously on this thread, so that time was its own).
   */
  private cpuSinceStart(): bigint {
    const now = cpuNs();
    this.startCpu ??= now - BigInt(Math.round((performance.now() - this.startMs) * 1e6));
    const d = now - this.startCpu;
    return d > 0n ? d : 0n;
  }

  get isFrozen(): boolean {
    return this.frozen;
  }

  /** now returns the clock's time in ns, or throws EINVAL for an unknown clock id. */
  now(id: number): bigint {
    switch (id) {
      case CLOCK.REALTIME:
        if (this.frozen) return FROZEN_EPOCH_NS + this.virtualNs;
        this.realOffset ??= BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
        return this.realOffset + process.hrtime.bigint();
      case CLOCK.MONOTONIC:
        return this.frozen ? this.virtualNs : process.hrtime.bigint();
      case CLOCK.PROCESS_CPUTIME:
      case CLOCK.THREAD_CPUTIME:
        return this.frozen ? this.virtualNs : this.cpuSinceStart();
      default:
        throw new FsError(E.INVAL);
    }
  }

  resolution(id: number): bigint {
    if (id === CLOCK.REALTIME || id === CLOCK.MONOTONIC) return 1n;
    if (id === CLOCK.PROCESS_CPUTIME || id === CLOCK.THREAD_CPUTIME) return 1000n;
    throw new FsError(E.INVAL);
  }

  /** sleep blocks the calling thread (a worker, or the CLI) for `ns`; a frozen clock just advances. */
  sleep(ns: bigint): void {
    if (ns <= 0n) return;
    if (this.frozen) {
      this.virtualNs += ns;
      return;
    }
    if (!this.mayBlock) throw new WouldBlock();
    const ms = Number(ns / 1_000_000n);
    if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    const end = process.hrtime.bigint() + (ns % 1_000_000n);
    while (process.hrtime.bigint() < end) { /* sub-millisecond remainder: spin */ }
  }
}

function cpuNs(): bigint {
  const u = process.cpuUsage();
  return BigInt(u.user + u.system) * 1000n;
}

const NO_STATE = new Uint32Array(0);

/** Random fills guest buffers from the OS CSPRNG, or from a seeded generator (xorshift128) for reproducible runs. */
export class RandomSource {
  // Only a seeded source has state (a RandomSource is built for every request).
  private readonly s: Uint32Array;
  private readonly seeded: boolean;
  constructor(mode: 'real' | { seed: number }) {
    this.seeded = mode !== 'real';
    this.s = this.seeded ? new Uint32Array(4) : NO_STATE;
    if (mode !== 'real') {
      // splitmix32 spreads a small seed over the whole state so nearby seeds give unrelated streams.
      let x = mode.seed >>> 0;
      for (let i = 0; i < 4; i++) {
        x = (x + 0x9e3779b9) >>> 0;
        let z = x;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
        this.s[i] = (z ^ (z >>> 16)) >>> 0 || 1;
      }
    }
  }

  fill(buf: Uint8Array): void {
    if (!this.seeded) {
      randomFillSync(buf);
      return;
    }
    const s = this.s;
    for (let i = 0; i < buf.length; i += 4) {
      let t = s[3]!;
      const u = s[0]!;
      s[3] = s[2]!;
      s[2] = s[1]!;
      s[1] = u;
      t ^= t << 11;
      t ^= t >>> 8;
      s[0] = (t ^ u ^ (u >>> 19)) >>> 0;
      const v = s[0]!;
      for (let j = 0; j < 4 && i + j < buf.length; j++) buf[i + j] = (v >>> (8 * j)) & 0xff;
    }
  }
}

/**
 * StringBlock is args or environment as the guest receives them: every string UTF-8 encoded and
 * NUL-terminated, back to back in one buffer, with where each starts, copied to the guest in one go.
 */
export interface StringBlock {
  bytes: Uint8Array;
  starts: Uint32Array;
}

const NO_BYTES = new Uint8Array(0);
const NO_STARTS = new Uint32Array(0);
/** Shared by every empty list: blocks are only read. */
const EMPTY_BLOCK: StringBlock = { bytes: NO_BYTES, starts: NO_STARTS };

/**
 * StringBlockEncoder builds StringBlocks in buffers it keeps from one run to the next: a request's
 * environment is two dozen short, nearly always ASCII strings, and encoding them is a measurable
 * share of a small function's run. ASCII is copied character by character (cheaper, at these sizes,
 * than joining the strings and encoding the result, and it allocates nothing); any other text is
 * encoded as UTF-8 into a fresh block. A block it returns is valid until its next call: each
 * WasiHost owns its encoders and encodes once per run.
 */
export class StringBlockEncoder {
  // Sized on first use: a worker holds thousands of idle hosts, each with two encoders.
  private buf = NO_BYTES;
  private starts = NO_STARTS;

  list(items: readonly string[]): StringBlock {
    const n = items.length;
    if (n === 0) return EMPTY_BLOCK;
    if (this.starts.length < n) this.starts = new Uint32Array(Math.max(n, 8));
    let off = 0;
    for (let i = 0; i < n; i++) {
      this.starts[i] = off;
      off = this.put(items[i]!, off);
      if (off < 0) return encodeList(items as string[]);
      off = this.byte(0, off);
    }
    return { bytes: this.buf.subarray(0, off), starts: this.starts.subarray(0, n) };
  }

  env(env: Record<string, string>): StringBlock {
    let n = 0;
    let off = 0;
    for (const k in env) {
      if (n === this.starts.length) this.growStarts();
      this.starts[n++] = off;
      off = this.put(k, off);
      if (off >= 0) off = this.put(env[k]!, this.byte(0x3d, off));
      if (off < 0) return encodeList(Object.keys(env).map((key) => `${key}=${env[key]!}`));
      off = this.byte(0, off);
    }
    if (n === 0) return EMPTY_BLOCK;
    return { bytes: this.buf.subarray(0, off), starts: this.starts.subarray(0, n) };
  }

  /** put copies an ASCII string at `off` and returns the offset after it, or -1 for other text. */
  private put(s: string, off: number): number {
    const len = s.length;
    if (off + len > this.buf.length) this.grow(off + len);
    const buf = this.buf;
    for (let j = 0; j < len; j++) {
      const c = s.charCodeAt(j);
      if (c > 0x7f) return -1;
      buf[off + j] = c;
    }
    return off + len;
  }

  private byte(b: number, off: number): number {
    if (off === this.buf.length) this.grow(off + 1);
    this.buf[off] = b;
    return off + 1;
  }

  private grow(need: number): void {
    const next = new Uint8Array(Math.max(need, this.buf.length * 2, 64));
    next.set(this.buf);
    this.buf = next;
  }

  private growStarts(): void {
    const next = new Uint32Array(Math.max(this.starts.length * 2, 8));
    next.set(this.starts);
    this.starts = next;
  }
}

/** encodeList turns args or `KEY=VALUE` strings into the byte strings the guest receives. */
export function encodeList(items: string[]): StringBlock {
  let total = 0;
  for (const s of items) total += Buffer.byteLength(s, 'utf8') + 1;
  // Zero-filled, so every string's terminating NUL is already in place.
  const bytes = Buffer.alloc(total);
  const starts = new Uint32Array(items.length);
  let off = 0;
  for (let i = 0; i < items.length; i++) {
    starts[i] = off;
    off += bytes.write(items[i]!, off, 'utf8') + 1;
  }
  return { bytes, starts };
}
