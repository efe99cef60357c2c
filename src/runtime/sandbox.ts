import { constants as fsConstants, openSync, readSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';

import { GLOBAL_EXPORT_PREFIX, PAGE } from './binary.js';
import type { RuntimeErrorCode } from './errors.js';
import { HostFs } from './fs/host-fs.js';
import { MemFs } from './fs/mem-fs.js';
import { FsError } from './fs/types.js';
import { BULK_BYTES_PER_UNIT, FUEL_EXPORT } from './meter.js';
import { E } from './wasi/constants.js';
import { BudgetSpent, GuestUnwind, HostError, WouldBlock } from './wasi/faults.js';
import type { Mount, Stream } from './wasi/fd-table.js';
import { hostEncoders, type HostOptions,HostSwitch, WasiHost } from './wasi/host.js';
import { ProcExit } from './wasi/process.js';
import { Wasm, type WasmGlobal, type WasmInstance, type WasmMemory, type WasmModule } from './wasm-api.js';

/** RunSpec is one invocation, in a form that can cross to a worker thread (structured-clone safe). */
export interface RunSpec {
  args: string[];
  env: Record<string, string>;
  stdin?: Uint8Array;
  dirs: Array<{ host: string; guest: string; readOnly?: boolean }>;
  /** Mount an empty in-memory filesystem at this guest path (scratch space without host access). */
  memfs?: string;
  clock: 'real' | 'frozen';
  random: 'real' | { seed: number };
  maxOutputBytes: number;
  memoryBytes: number;
  maxOpenFds?: number;
  maxWriteBytes?: number;
  /** Write stdout/stderr straight to the process's fds 1/2 and read stdin from fd 0 (for `skiff run`). */
  directStdio?: boolean;
  /** Write a strace-like line per syscall to stderr (the process's with directStdio, else the captured one). */
  trace?: boolean;
}

/** RunOutcome is what a run produced; failures carry a RuntimeError code and message. */
export type RunOutcome = (
  | {
      ok: true; exitCode: number; stdout: Uint8Array; stderr: Uint8Array; durationMs: number; instantiateUs: number; reused: boolean;
      /** The guest's linear memory when it exited (memory only grows during a run, so this is its peak). */
      memoryBytes: number;
      /** With a fuel budget: what the run cost in fuel units (fuel burnt, host bytes and a fresh memory's bytes per BULK_BYTES_PER_UNIT). */
      cost?: number;
    }
  | { ok: false; code: RuntimeErrorCode; message: string; stdout: Uint8Array; stderr: Uint8Array; durationMs: number }
) & { /** Refused escape attempts and other security notes, one line each, for the caller's log. */ notes?: string[] };

/** Thrown through the guest when its output passes the limit. */
class OutputLimit extends GuestUnwind {
  constructor(readonly limit: number) {
    super();
  }
}

/**
 * Growable is an append-only byte buffer (many tiny writes must not become many tiny objects). A
 * SandboxHost keeps its two for every run: reset() forgets the bytes but keeps a modest buffer.
 */
class Growable {
  private buf = new Uint8Array(0);
  private len = 0;
  append(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  /** appendRange appends `len` bytes of `src` from `start`; short pieces are copied by hand (a view costs more). */
  appendRange(src: Uint8Array, start: number, len: number): void {
    this.room(len);
    const buf = this.buf;
    const at = this.len;
    if (len <= 64) for (let i = 0; i < len; i++) buf[at + i] = src[start + i]!;
    else buf.set(src.subarray(start, start + len), at);
    this.len += len;
  }
  private room(n: number): void {
    if (this.len + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.len + n, this.buf.length * 2, 256));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
  }
  /** bytes copies out what was written (the buffer itself is reused by the next run). */
  bytes(): Uint8Array {
    return this.len === 0 ? new Uint8Array(0) : this.buf.slice(0, this.len);
  }
  reset(): void {
    this.len = 0;
    if (this.buf.length > GROWABLE_KEEP) this.buf = new Uint8Array(0);
  }
}

/** A reused output buffer larger than this is dropped after the run instead of being kept. */
const GROWABLE_KEEP = 64 * 1024;

/**
 * CaptureStreams buffers stdout and stderr, counting both against one output limit. One per
 * SandboxHost, reset for each run: runs on a thread never overlap, and each run's bytes are copied out.
 */
class CaptureStreams {
  private total = 0;
  private limit = 0;
  readonly out = new Growable();
  readonly err = new Growable();
  readonly stdout = this.stream(this.out);
  readonly stderr = this.stream(this.err);

  begin(limit: number): this {
    this.total = 0;
    this.limit = limit;
    this.out.reset();
    this.err.reset();
    return this;
  }

  private stream(which: Growable): Stream {
    return {
      write: (buf) => {
        if (this.total + buf.length > this.limit) throw new OutputLimit(this.limit);
        this.total += buf.length;
        which.append(buf);
        return buf.length;
      },
      writeRange: (mem, start, len) => {
        if (this.total + len > this.limit) throw new OutputLimit(this.limit);
        this.total += len;
        which.appendRange(mem, start, len);
      },
    };
  }
}

function bufferStdin(data: Uint8Array | undefined): Stream {
  let pos = 0;
  const src = data ?? new Uint8Array(0);
  return {
    read: (buf) => {
      const n = Math.min(buf.length, src.length - pos);
      buf.set(src.subarray(pos, pos + n));
      pos += n;
      return n;
    },
    available: () => src.length - pos,
  };
}

function fdStream(fd: number, limit: { left: number }): Stream {
  return {
    isTerminal: isatty(fd),
    read: (buf) => {
      for (;;) {
        try {
          return readSync(fd, buf, 0, buf.length, null);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EOF') return 0;
          // A read error on the process's own stdin is the guest's EIO, as a failing pipe would be.
          if (code !== 'EAGAIN') throw new FsError(code === 'EISDIR' ? E.ISDIR : E.IO);
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        }
      }
    },
    write: (buf) => {
      if (buf.length > limit.left) throw new OutputLimit(limit.left);
      limit.left -= buf.length;
      let off = 0;
      while (off < buf.length) {
        try {
          off += writeSync(fd, buf, off, buf.length - off);
        } catch (err) {
          // The parent may have made a pipe non-blocking; wait for the reader instead of failing.
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EPIPE') throw new FsError(E.PIPE);
          if (code !== 'EAGAIN') throw new FsError(E.IO);
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
        }
      }
      return buf.length;
    },
    available: () => 1,
  };
}

/** mountsFor turns the granted directories into backends (each resolving paths beneath its own root). */
function mountsFor(spec: RunSpec): Mount[] {
  if (spec.dirs.length === 0 && !spec.memfs) return [];
  const mounts: Mount[] = spec.dirs.map((d) => ({ guest: d.guest, backend: new HostFs(d.host, !!d.readOnly), readOnly: !!d.readOnly }));
  if (spec.memfs) mounts.push({ guest: spec.memfs, backend: new MemFs(), readOnly: false });
  return mounts;
}

interface Warm {
  instance: WasmInstance;
  host: WasiHost;
  memory: WasmMemory | null;
  snapshot: Uint8Array | null;
  globals: Array<[WasmGlobal, unknown]>;
  pages: number;
  /** The fuel global of a metered module (see meter.ts), else null. */
  fuel: WasmGlobal | null;
}

/**
 * SandboxHost runs WASI commands synchronously on the current thread (a pool worker, or the CLI).
 * It keeps a few used instances per module warm: after a clean exit, an instance whose memory did not
 * grow is reset to its post-instantiation snapshot (memory bytes and every mutable global) instead of
 * being instantiated again, which avoids the allocation and GC cost of a fresh instance.
 */
export class SandboxHost {
  private readonly warm = new Map<string, Warm[]>();
  private readonly switch = new HostSwitch();
  private readonly capture = new CaptureStreams();
  /** Runs here never overlap, so every instance's host encodes its args and environment with these. */
  private readonly encoders = hostEncoders();
  /** The post-instantiation memory image is the same for every instance of a module: take it once. */
  private readonly snapshots = new WeakMap<WasmModule, Uint8Array>();
  /** Warm instances a module's owners reserved (the autoscaler's Wasm replicas), beyond the default cap. */
  private readonly reserved = new Map<string, number>();
  constructor(private readonly maxWarmPerModule = 2, private readonly maxWarmModules = 256) {}

  /**
   * prewarm keeps `n` instances of a module instantiated and waiting, so that the next `n` runs start
   * warm; it instantiates what is missing now and parks instances up to `n` after runs (instead of the
   * default cap). With `n` 0 the module's warm instances are dropped and the default cap applies again.
   * A module whose instances cannot be reused (passive data) keeps none. Returns how many wait warm.
   */
  prewarm(key: string, module: WasmModule, reusable: boolean, n: number): number {
    if (n <= 0 || !reusable) {
      this.reserved.delete(key);
      this.warm.delete(key);
      return 0;
    }
    this.reserved.set(key, n);
    const list = this.warm.get(key) ?? [];
    this.warm.delete(key);
    // Instances past the reservation go (a scale-down), the most recently used stay.
    if (list.length > n) list.splice(0, list.length - n);
    while (list.length < n) {
      const w = this.instantiate(module, { args: [], env: [], mayBlock: false, encoders: this.encoders }, true);
      if (!w.snapshot) break;
      list.push(w);
    }
    this.warm.set(key, list);
    return list.length;
  }

  /** warmCount is how many instances of a module wait warm on this thread. */
  warmCount(key: string): number {
    return this.warm.get(key)?.length ?? 0;
  }

  /**
   * run executes the module's `_start`. With `fuel`, the module must be metered (meter.ts): the run
   * gets that much fuel and may not block (a sleep unwinds it), for runs on a thread that serves others.
   */
  run(key: string, module: WasmModule, reusable: boolean, spec: RunSpec, fuel?: number): RunOutcome {
    const t0 = performance.now();
    const capture = this.capture.begin(spec.maxOutputBytes);
    const direct = { left: spec.maxOutputBytes };
    let mounts: Mount[];
    try {
      mounts = mountsFor(spec);
    } catch (err) {
      return { ok: false, code: 'invalid_options', message: `cannot preopen a directory: ${(err as Error).message}`, stdout: new Uint8Array(0), stderr: new Uint8Array(0), durationMs: 0 };
    }
    const opts: HostOptions = {
      args: spec.args,
      env: spec.env,
      stdin: spec.directStdio ? fdStream(this.stdinFd(), direct) : bufferStdin(spec.stdin),
      stdout: spec.directStdio ? fdStream(1, direct) : capture.stdout,
      stderr: spec.directStdio ? fdStream(2, direct) : capture.stderr,
      mounts,
      clock: spec.clock,
      random: spec.random,
      maxOpenFds: spec.maxOpenFds,
      maxWriteBytes: spec.maxWriteBytes,
      mayBlock: fuel === undefined,
      byteBudget: fuel === undefined ? undefined : fuel * BULK_BYTES_PER_UNIT,
      encoders: this.encoders,
    };
    if (spec.trace) {
      const sink = opts.stderr!;
      opts.trace = (line) => sink.write!(new TextEncoder().encode(`[wasi] ${line}\n`));
    }
    const fail = (code: RuntimeErrorCode, message: string): RunOutcome => ({
      ok: false, code, message, stdout: capture.out.bytes(), stderr: capture.err.bytes(), durationMs: performance.now() - t0,
      notes: w?.host.state.notes,
    });
    let w: Warm | undefined;
    let reused = false;
    try {
      const pooled = reusable ? this.warm.get(key)?.pop() : undefined;
      if (pooled) {
        this.restore(pooled);
        pooled.host.reset(opts);
        w = pooled;
        reused = true;
      } else {
        w = this.instantiate(module, opts, reusable);
      }
    } catch (err) {
      if (err instanceof HostError) return fail('host_error', err.message);
      if (err instanceof RangeError || err instanceof Wasm.RuntimeError) {
        return fail('memory_limit', `could not instantiate the module: ${err.message}`);
      }
      return fail('trap', `instantiation failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.switch.current = w.host;
    if (fuel !== undefined) {
      if (!w.fuel) return fail('invalid_options', 'a fuel budget was given for a module that is not metered');
      w.fuel.value = fuel;
    }
    const instantiateUs = (performance.now() - t0) * 1000;
    const start = w.instance.exports._start as () => void;
    let exitCode = 0;
    try {
      start();
    } catch (err) {
      if (err instanceof ProcExit) exitCode = err.code;
      else {
        w.host.closeAll();
        if (err instanceof OutputLimit) return fail('output_limit', `the guest wrote more than ${err.limit} bytes of output (limits.maxOutputBytes)`);
        if (err instanceof BudgetSpent) return fail('timeout', 'the guest moved more bytes through the host than a run on a thread that serves others may');
        if (err instanceof WouldBlock) return fail('timeout', 'the guest would block a thread that may not (it slept)');
        if (err instanceof HostError) return fail('host_error', err.message);
        if (fuel !== undefined && (w.fuel?.value as number) <= 0) return fail('timeout', `the guest used up its fuel (${fuel} units)`);
        const msg = err instanceof Error ? err.message : String(err);
        const pages = w.memory ? w.memory.buffer.byteLength / PAGE : 0;
        if (err instanceof Wasm.RuntimeError || err instanceof RangeError) {
          if ((pages + 1) * PAGE > spec.memoryBytes) return fail('memory_limit', `the guest trapped (${msg}) after reaching the memory limit of ${spec.memoryBytes} bytes`);
          return fail('trap', `wasm trap: ${msg}`);
        }
        return fail('trap', `the guest failed: ${msg}`);
      }
    }
    w.host.closeAll();
    if (reusable && w.snapshot && w.memory && w.memory.buffer.byteLength === w.pages * PAGE) this.keepWarm(key, w);
    const notes = w.host.state.notes;
    const memoryBytes = w.memory ? w.memory.buffer.byteLength : 0;
    const out: RunOutcome = { ok: true, exitCode, stdout: capture.out.bytes(), stderr: capture.err.bytes(), durationMs: performance.now() - t0, instantiateUs, reused, memoryBytes, notes: notes.length ? notes : undefined };
    if (fuel !== undefined) {
      // Deterministic, unlike time (which GC pauses and compilation on this thread also take).
      const fresh = reused ? 0 : w.pages * PAGE;
      out.cost = fuel - (w.fuel!.value as number) + (opts.byteBudget! - w.host.memory.byteBudget + fresh) / BULK_BYTES_PER_UNIT;
    }
    return out;
  }

  /** keepWarm parks a clean instance; the least recently used module loses its instances past the cap. */
  private keepWarm(key: string, w: Warm): void {
    const list = this.warm.get(key) ?? [];
    this.warm.delete(key);
    if (list.length < (this.reserved.get(key) ?? this.maxWarmPerModule)) list.push(w);
    this.warm.set(key, list);
    if (this.warm.size > this.maxWarmModules) {
      // The least recently used module without a reservation loses its instances.
      for (const k of this.warm.keys()) {
        if (this.reserved.has(k)) continue;
        this.warm.delete(k);
        break;
      }
    }
  }

  private instantiate(module: WasmModule, opts: HostOptions, reusable: boolean): Warm {
    const host = new WasiHost(opts);
    // A start function may already call the host during instantiation.
    this.switch.current = host;
    const instance = new Wasm.Instance(module, this.switch.imports());
    const memory = instance.exports.memory instanceof Wasm.Memory ? instance.exports.memory : null;
    if (memory) host.memory.attach(memory);
    const fuel = instance.exports[FUEL_EXPORT];
    const w: Warm = { instance, host, memory, snapshot: null, globals: [], pages: memory ? memory.buffer.byteLength / PAGE : 0, fuel: fuel instanceof Wasm.Global ? fuel : null };
    if (reusable && memory) {
      let snap = this.snapshots.get(module);
      if (!snap) {
        snap = trimmedCopy(new Uint8Array(memory.buffer));
        this.snapshots.set(module, snap);
      }
      w.snapshot = snap;
      for (const [name, value] of Object.entries(instance.exports)) {
        if (name.startsWith(GLOBAL_EXPORT_PREFIX) && value instanceof Wasm.Global) w.globals.push([value, value.value]);
      }
    }
    return w;
  }

  private restore(w: Warm): void {
    const mem = new Uint8Array(w.memory!.buffer);
    const snap = w.snapshot!;
    mem.set(snap);
    mem.fill(0, snap.length);
    for (const [g, v] of w.globals) g.value = v;
  }

  private stdinCache: number | undefined;

  /**
   * stdinFd reopens this process's stdin without blocking when it is a pipe or terminal, so a guest
   * waiting for input sleeps in Atomics.wait between attempts and a deadline can still stop its worker
   * (a thread blocked inside read(2) cannot be terminated).
   */
  private stdinFd(): number {
    if (this.stdinCache === undefined) {
      try {
        this.stdinCache = openSync('/proc/self/fd/0', fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
      } catch {
        this.stdinCache = 0;
      }
    }
    return this.stdinCache;
  }

  /** drop forgets warm instances of a module (e.g. when it is unloaded). */
  drop(key: string): void {
    this.warm.delete(key);
    this.reserved.delete(key);
  }
}

/** trimmedCopy copies memory up to its last non-zero byte: the zero tail is restored with a fill. */
function trimmedCopy(mem: Uint8Array): Uint8Array {
  // Scan whole words: the memory's length is a multiple of the page size.
  const words = new Uint32Array(mem.buffer, mem.byteOffset, mem.length >>> 2);
  let end = words.length;
  while (end > 0 && words[end - 1] === 0) end--;
  return mem.slice(0, end * 4);
}
