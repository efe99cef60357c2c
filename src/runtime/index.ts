/**
 * Skiff's WebAssembly sandbox runtime: a WASI preview 1 host written in TypeScript, with capability
 * isolation (nothing ambient), limits, worker-thread isolation and warm-instance reuse.
 *
 * @example
 * const rt = new Runtime({ workers: 2 });
 * const info = await rt.compile(await readFile('hello.wasm'));
 * const req = { args: ['hello'], env: { REQUEST_METHOD: 'GET' } };
 * const now = rt.tryInline(info.digest, req); // ran here: a result or a RuntimeError; else undefined
 * if (now instanceof RuntimeError) throw now;
 * const res = now ?? (await rt.invoke(info.digest, req)); // on a worker
 * console.log(res.exitCode, new TextDecoder().decode(res.stdout));
 * await rt.close();
 */
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';

import { PAGE } from './binary.js';
import { RuntimeError } from './errors.js';
import { type InlineOptions, InlineRunner, type InlineStats } from './inline.js';
import { ModuleCache, type ModuleInfo, type Variant } from './module-cache.js';
import { KeyedLimiter } from './pool/limiter.js';
import { type PoolStats, WorkerPool } from './pool/worker-pool.js';
import { type RunMode, RunStats } from './run-stats.js';
import type { RunOutcome, RunSpec } from './sandbox.js';

export { RuntimeError, type RuntimeErrorCode } from './errors.js';
export type { PoolStats } from './pool/worker-pool.js';
export { FunctionRunStats, RunStats, type RunMode } from './run-stats.js';
export type { ModuleInfo } from './module-cache.js';
export { excessGrants, inspectModule, type Grants, type Inspection } from './inspect.js';

/** RuntimeOptions configures a Runtime. */
export interface RuntimeOptions {
  /**
   * Worker threads that run guests (default: one per core plus one, at least 3, at most 8). One
   * function never occupies every worker, so with 3 or more a runaway function cannot stall the others.
   */
  workers?: number;
  /**
   * Let {@link Runtime.tryInline} run short guests on the calling thread, fuel-metered (default true;
   * see inline.ts). False makes tryInline decline every invocation, so all of them go to workers.
   */
  inline?: boolean | InlineOptions;
  logger?: { warn(obj: object, msg?: string): void };
}

/** Capabilities are everything a guest may touch; anything not granted here does not exist for it. */
export interface Capabilities {
  /** Host directories preopened at guest paths (`guest: '/'` is allowed); read-write unless readOnly. */
  dirs?: Array<{ host: string; guest: string; readOnly?: boolean }>;
  /** Mount an empty in-memory filesystem (scratch space, no host access): `true` mounts it at /tmp, a string at that guest path. */
  memfs?: boolean | string;
  /** Extra environment variables (merged under the request's env). */
  env?: Record<string, string>;
  clock?: 'real' | 'frozen';
  random?: 'real' | { seed: number };
}

/** Limits bound one invocation. */
export interface Limits {
  /** Maximum linear memory in bytes (default 256 MiB); enforced on `memory.grow`. */
  memoryBytes?: number;
  /** Wall-clock deadline in ms (default 10 000). */
  timeoutMs?: number;
  /** Maximum stdout + stderr bytes (default 16 MiB). */
  maxOutputBytes?: number;
  /** Concurrent invocations per poolKey (default 64). */
  concurrency?: number;
  /** Invocations that may wait per poolKey beyond `concurrency` before 'overloaded' (default 256). */
  queue?: number;
  /** Quota: descriptors the guest may hold open at once; EMFILE beyond (default 1024). */
  maxOpenFds?: number;
  /** Quota: bytes the guest may write to files per invocation; EDQUOT beyond (default 1 GiB). */
  maxWriteBytes?: number;
}

/** InvokeRequest is one run of a module's `_start`. */
export interface InvokeRequest {
  args: string[];
  env: Record<string, string>;
  stdin?: Uint8Array;
  capabilities?: Capabilities;
  limits?: Limits;
  /** Concurrency is counted per poolKey, e.g. 'ns/function' (default: the module digest). */
  poolKey?: string;
  /** 'inherit' streams the guest's stdio to this process's fds 0-2 (used by `skiff run`); default 'capture'. */
  stdio?: 'capture' | 'inherit';
  /** Add a strace-like line per WASI call to the guest's stderr (counts against the output limit). */
  trace?: boolean;
}

/** InvokeResult is a finished run: the guest's exit code and its output. */
export interface InvokeResult {
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  durationMs: number;
  /** Escape attempts the sandbox refused during this run, one line each (also logged as warnings). */
  notes?: string[];
  /** Whether the run reused a warm instance (false: the module was instantiated for it). */
  warm?: boolean;
  /** What an inline, fuel-metered run cost in fuel units (undefined for a worker run, which is not metered). */
  fuel?: number;
}

/** Defaults applied when a request leaves a limit out. */
export const DEFAULT_LIMITS: Required<Limits> = {
  memoryBytes: 256 * 1024 * 1024,
  timeoutMs: 10_000,
  maxOutputBytes: 16 * 1024 * 1024,
  concurrency: 64,
  queue: 256,
  maxOpenFds: 1024,
  maxWriteBytes: 1024 * 1024 * 1024,
};

/**
 * Runtime compiles modules once per digest and runs them as WASI commands. It has two entry points:
 * {@link Runtime.tryInline} answers at once, on the calling thread, or declines; {@link Runtime.invoke}
 * runs on a pool of worker threads and answers through a promise. A worker invocation that overruns
 * its deadline has its worker replaced; the calling thread runs guest code only inside tryInline,
 * fuel-metered.
 */
export class Runtime {
  private readonly cache = new ModuleCache(DEFAULT_LIMITS.memoryBytes / PAGE);
  private readonly pool: WorkerPool;
  private readonly limiter = new KeyedLimiter();
  private readonly logger?: RuntimeOptions['logger'];
  private readonly inline: InlineRunner | null;

  constructor(opts: RuntimeOptions = {}) {
    const workers = opts.workers ?? Math.min(8, Math.max(3, availableParallelism() + 1));
    if (!Number.isInteger(workers) || workers < 1) throw new RuntimeError('invalid_options', `RuntimeOptions.workers must be a positive integer, got ${workers}`);
    this.logger = opts.logger;
    this.pool = new WorkerPool(workers, opts.logger);
    this.inline = opts.inline === false ? null : new InlineRunner(this.cache, opts.inline === true ? {} : opts.inline, opts.logger);
  }

  /** runStats counts runs per pool key (a Function's `namespace/name`) for the metrics exporter. */
  readonly runStats = new RunStats();

  /** poolStats is the worker pool's current size and load, read at scrape time. */
  poolStats(): PoolStats {
    return this.pool.stats();
  }

  /** inlineStats counts invocations that ran on the calling thread, and inline runs retried on a worker. */
  get inlineStats(): InlineStats {
    return this.inline ? { ...this.inline.stats } : { runs: 0, retries: 0 };
  }

  /** Warm instances reserved per pool key, and the variant they are of. */
  private readonly reservations = new Map<string, { variant: Variant; n: number }>();

  /**
   * reserve keeps `n` instances of a Function's module warm on the calling thread, where requests
   * run first (see tryInline): these are a Wasm Function's replicas. Zero drops its warm instances
   * there and on the workers, leaving only the compiled module in the cache. Reservations of
   * Functions that share a module add up. It resolves to how many instances wait warm: fewer than `n`
   * when inline runs are off or the module cannot be metered or reused (its runs then instantiate as
   * they come), and it waits for a module's builds the first time.
   */
  async reserve(poolKey: string, digest: string, memoryBytes: number, n: number): Promise<number> {
    const variant = this.cache.resolvedVariant(digest, memoryBytes) ?? (await this.cache.variant(digest, memoryBytes));
    const warm = this.setReservation(poolKey, variant, n);
    if (warm !== undefined || !this.inline) return warm ?? 0;
    // The metered build is being compiled (the first reservation of a module): wait for it once.
    await this.cache.meteredSettled(variant);
    return this.applyReservation(variant) ?? 0;
  }

  /** reservation is how many warm instances a pool key reserved (0: none). */
  reservation(poolKey: string): number {
    return this.reservations.get(poolKey)?.n ?? 0;
  }

  /** release drops a pool key's reservation (its Function went away). */
  release(poolKey: string): void {
    const r = this.reservations.get(poolKey);
    if (!r) return;
    this.reservations.delete(poolKey);
    this.applyReservation(r.variant);
  }

  /** warmInstances is how many instances of a Function's reservation wait warm now (at most what it reserved). */
  warmInstances(poolKey: string): number {
    const r = this.reservations.get(poolKey);
    if (!r || !this.inline) return 0;
    return Math.min(r.n, this.inline.warmCount(r.variant));
  }

  /** tryReserve is reserve without waiting: undefined when the module's builds are not at hand yet. */
  tryReserve(poolKey: string, digest: string, memoryBytes: number, n: number): number | undefined {
    const variant = this.cache.resolvedVariant(digest, memoryBytes);
    return variant && this.setReservation(poolKey, variant, n);
  }

  /** setReservation records a pool key's reservation of a variant and resizes it (and the variant it had, if another). */
  private setReservation(poolKey: string, variant: Variant, n: number): number | undefined {
    const prev = this.reservations.get(poolKey);
    if (n > 0) this.reservations.set(poolKey, { variant, n });
    else this.reservations.delete(poolKey);
    if (prev && prev.variant.key !== variant.key) this.applyReservation(prev.variant);
    return this.applyReservation(variant);
  }

  /** applyReservation sizes a variant's warm instances to the sum of its reservations. */
  private applyReservation(variant: Variant): number | undefined {
    let total = 0;
    for (const r of this.reservations.values()) if (r.variant.key === variant.key) total += r.n;
    if (total === 0) {
      this.inline?.prewarm(variant, 0);
      this.pool.dropWarm(variant.key);
      return 0;
    }
    return this.inline ? this.inline.prewarm(variant, total) : 0;
  }

  /** compile validates and compiles module bytes (cached by sha256 digest). */
  compile(bytes: Uint8Array): Promise<ModuleInfo> {
    return this.cache.compile(bytes);
  }

  /**
   * tryInline is the entry point for request paths: it runs the invocation on the calling thread when
   * that is allowed and provably short (see inline.ts) and returns what came of it at once. It never
   * throws and never returns a promise:
   * - an InvokeResult: the guest ran here and exited (whatever its exit code);
   * - a RuntimeError: the request cannot run at all (`invalid_options`), or the runtime itself failed
   *   (`host_error`); returned, not thrown;
   * - undefined: it did not run here; call {@link invoke}. That includes a guest that trapped, ran out
   *   of fuel, slept or hit a host error here: such a run is discarded, and the worker run decides.
   *
   * An inline run needs no deadline timer and no promise; the caller answers in the same call stack.
   */
  tryInline(digest: string, req: InvokeRequest): InvokeResult | RuntimeError | undefined {
    const inline = this.inline;
    if (!inline) return undefined;
    try {
      const caps = req.capabilities ?? NO_CAPS;
      if (!inlineEligible(req, caps)) return undefined;
      const limits = this.checkedLimits(req.limits);
      const key = req.poolKey ?? digest;
      // A run here is synchronous: nothing else runs meanwhile, so it needs no concurrency slot, only
      // that one would be free (a function at its limit queues on the workers as before).
      if (!this.limiter.hasRoom(key, limits.concurrency)) return undefined;
      const variant = this.cache.resolvedVariant(digest, limits.memoryBytes);
      if (!variant) return undefined;
      const outcome = inline.tryRun(variant, this.runSpec(req, caps, limits), key);
      return outcome && this.result(digest, key, outcome, 'inline');
    } catch (err) {
      if (err instanceof RuntimeError) return err;
      this.logger?.warn({ digest, poolKey: req.poolKey, err }, 'inline invocation failed in the runtime');
      return new RuntimeError('host_error', `the runtime failed before running the guest: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  }

  /**
   * invoke runs the module's `_start` on a worker thread and resolves when the guest exits, whatever
   * its exit code; failures (limits, traps, `overloaded`, `unknown_module`) reject with a RuntimeError.
   * It never runs the guest on the calling thread: {@link tryInline} is that entry point.
   *
   * Hand-written for the request path: a function is invoked with the same limits and capabilities
   * objects every time, so their checked form is cached, and the compiled variant and a free
   * concurrency slot are taken without waiting when they are there.
   */
  async invoke(digest: string, req: InvokeRequest): Promise<InvokeResult> {
    const limits = this.checkedLimits(req.limits);
    const caps = req.capabilities ?? NO_CAPS;
    if (caps.dirs) for (const d of caps.dirs) this.checkDir(d);
    const spec = this.runSpec(req, caps, limits);
    const key = req.poolKey ?? digest;
    let variant = this.cache.resolvedVariant(digest, limits.memoryBytes);
    if (!variant) {
      variant = await this.cache.variant(digest, limits.memoryBytes);
      // The first invocation starts the metered build, so that later ones can be tried inline.
      if (this.inline && inlineEligible(req, caps)) this.inline.prepare(variant);
    }
    let release = this.limiter.tryAcquire(key, limits.concurrency);
    let outcome: RunOutcome;
    try {
      release ??= await this.limiter.acquire(key, limits.concurrency, limits.queue);
      outcome = await this.pool.run(variant, spec, limits.timeoutMs, key);
    } catch (err) {
      this.runStats.failed(key, err);
      throw err;
    } finally {
      release?.();
    }
    const res = this.result(digest, key, outcome, 'worker');
    if (res instanceof RuntimeError) throw res;
    return res;
  }

  /** runSpec is the request in the form a sandbox runs (and a worker receives); it checks argv's size. */
  private runSpec(req: InvokeRequest, caps: Capabilities, limits: Required<Limits>): RunSpec {
    // The request's own record is used as is when nothing is merged under it: the spec is cloned
    // when it is posted to the worker.
    const env = caps.env && hasKeys(caps.env) ? { ...caps.env, ...req.env } : req.env;
    checkArgvSize(req.args, env);
    return {
      args: req.args,
      env,
      stdin: req.stdin,
      dirs: caps.dirs ?? [],
      memfs: typeof caps.memfs === 'string' ? caps.memfs : caps.memfs ? '/tmp' : undefined,
      clock: caps.clock ?? 'real',
      random: caps.random ?? 'real',
      maxOutputBytes: limits.maxOutputBytes,
      memoryBytes: limits.memoryBytes,
      maxOpenFds: limits.maxOpenFds,
      maxWriteBytes: limits.maxWriteBytes,
      directStdio: req.stdio === 'inherit',
      trace: req.trace,
    };
  }

  /** result logs the sandbox's notes and turns an outcome into a result, or into its failure (returned, not thrown). */
  private result(digest: string, key: string, outcome: RunOutcome, mode: RunMode): InvokeResult | RuntimeError {
    this.runStats.finished(key, mode, outcome);
    if (outcome.notes) for (const note of outcome.notes) this.logger?.warn({ digest, poolKey: key, note }, `sandbox refused: ${note}`);
    if (!outcome.ok) {
      if (outcome.code !== 'output_limit') this.logger?.warn({ digest, poolKey: key, code: outcome.code }, outcome.message);
      return new RuntimeError(outcome.code, outcome.message, { stdout: outcome.stdout, stderr: outcome.stderr });
    }
    const res: InvokeResult = { exitCode: outcome.exitCode, stdout: outcome.stdout, stderr: outcome.stderr, durationMs: outcome.durationMs, warm: outcome.reused, fuel: outcome.cost };
    if (outcome.notes?.length) res.notes = outcome.notes;
    return res;
  }

  /** Host directories found to exist, until when (ms): stat(2) once a second per directory, not per request. */
  private readonly dirsSeen = new Map<string, number>();

  /**
   * checkDir refuses a missing host directory with a clear error before a worker is involved. A
   * directory removed within the second still fails, in the worker, when it is preopened.
   */
  private checkDir(d: { host: string; guest: string }): void {
    const now = Date.now();
    if (d.guest && (this.dirsSeen.get(d.host) ?? 0) > now) return;
    checkDir(d);
    if (this.dirsSeen.size >= 1024) this.dirsSeen.clear();
    this.dirsSeen.set(d.host, now + 1000);
  }

  /** Checked limits per caller-owned Limits object, revalidated when the object's fields change. */
  private readonly limitsCache = new WeakMap<Limits, { seen: Limits; full: Required<Limits> }>();

  private checkedLimits(given: Limits | undefined): Required<Limits> {
    if (!given) return DEFAULT_LIMITS;
    const hit = this.limitsCache.get(given);
    if (hit && sameLimits(hit.seen, given)) return hit.full;
    const full = { ...DEFAULT_LIMITS, ...definedOnly(given) };
    checkLimits(full);
    this.limitsCache.set(given, { seen: { ...given }, full });
    return full;
  }

  /** close terminates the workers; pending invocations reject with 'closed'. */
  close(): Promise<void> {
    return this.pool.close();
  }
}

const NO_CAPS: Capabilities = Object.freeze({});

/** inlineEligible: host directories, the process's own stdio and tracing are for workers only (see inline.ts). */
function inlineEligible(req: InvokeRequest, caps: Capabilities): boolean {
  return (caps.dirs === undefined || caps.dirs.length === 0) && req.stdio !== 'inherit' && !req.trace;
}
const LIMIT_KEYS = Object.keys(DEFAULT_LIMITS) as Array<keyof Limits>;

function sameLimits(a: Limits, b: Limits): boolean {
  for (const k of LIMIT_KEYS) if (a[k] !== b[k]) return false;
  return true;
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkLimits(l: Required<Limits>): void {
  for (const [k, v] of Object.entries(l)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (k !== 'queue' && k !== 'maxWriteBytes' && v === 0)) {
      throw new RuntimeError('invalid_options', `limits.${k} must be a positive number, got ${String(v)}`);
    }
  }
}

/** Like the kernel's ARG_MAX: argv and environment together stay below this many bytes. */
const MAX_ARGV_ENV_BYTES = 1024 * 1024;

function checkArgvSize(args: string[], env: Record<string, string>): void {
  // A UTF-8 byte is at most 3 per UTF-16 unit: when even that bound fits, skip the exact count.
  let units = 0;
  for (const a of args) units += a.length + 1;
  for (const k in env) units += k.length + env[k]!.length + 2;
  if (units * 3 <= MAX_ARGV_ENV_BYTES) return;
  let total = 0;
  for (const a of args) total += Buffer.byteLength(a) + 1;
  for (const [k, v] of Object.entries(env)) total += Buffer.byteLength(k) + Buffer.byteLength(v) + 2;
  if (total > MAX_ARGV_ENV_BYTES) {
    throw new RuntimeError('invalid_options', `arguments and environment total ${total} bytes, above the ${MAX_ARGV_ENV_BYTES}-byte limit (like the kernel's ARG_MAX); pass large data on stdin instead`);
  }
}

function checkDir(d: { host: string; guest: string }): void {
  if (!d.guest) throw new RuntimeError('invalid_options', `capabilities.dirs: the guest path for host directory ${d.host} is empty`);
  let ok = false;
  try {
    ok = statSync(d.host).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) throw new RuntimeError('invalid_options', `capabilities.dirs: host directory ${d.host} does not exist or is not a directory`);
}
