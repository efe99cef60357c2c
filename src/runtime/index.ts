/**
 * Skiff's WebAssembly sandbox runtime: a WASI preview 1 host written in TypeScript, with capability
 * isolation (nothing ambient), limits, worker-thread isolation and warm-instance reuse.
 *
 * @example
 * const rt = new Runtime({ workers: 2 });
 * const info = await rt.compile(await readFile('hello.wasm'));
 * const res = await rt.invoke(info.digest, { args: ['hello'], env: { REQUEST_METHOD: 'GET' } });
 * console.log(res.exitCode, new TextDecoder().decode(res.stdout));
 * await rt.close();
 */
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { PAGE } from './binary.js';
import { RuntimeError } from './errors.js';
import { InlineRunner, type InlineOptions, type InlineStats } from './inline.js';
import { ModuleCache, type ModuleInfo, type Variant } from './module-cache.js';
import { KeyedLimiter } from './pool/limiter.js';
import { WorkerPool } from './pool/worker-pool.js';
import type { RunOutcome, RunSpec } from './sandbox.js';

export { RuntimeError, type RuntimeErrorCode } from './errors.js';
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
   * Run short guests on the calling thread, fuel-metered, and fall back to a worker for anything
   * else (default true; see inline.ts). False sends every invocation to a worker.
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
 * Runtime compiles modules once per digest and runs them as WASI commands on a pool of worker
 * threads. An invocation that overruns its deadline has its worker replaced; the caller's event loop
 * never runs guest code.
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
    this.inline = opts.inline === false ? null : new InlineRunner(this.cache, opts.inline === true ? {} : opts.inline);
  }

  /** inlineStats counts invocations that ran on the calling thread, and inline runs retried on a worker. */
  get inlineStats(): InlineStats {
    return this.inline ? { ...this.inline.stats } : { runs: 0, retries: 0 };
  }

  /** compile validates and compiles module bytes (cached by sha256 digest). */
  compile(bytes: Uint8Array): Promise<ModuleInfo> {
    return this.cache.compile(bytes);
  }

  /** invoke runs the module's `_start` and resolves when the guest exits, whatever its exit code. */
  async invoke(digest: string, req: InvokeRequest): Promise<InvokeResult> {
    return this.run(digest, req);
  }

  /**
   * run is invoke for callers on a request path: when the guest ran on the calling thread (see
   * inline.ts) it returns the result itself, or throws, instead of a promise, which spares the caller
   * a promise and a turn of the microtask queue per request; otherwise it returns invoke's promise.
   *
   * Hand-written for the request path: a function is invoked with the same limits and capabilities
   * objects every time, so their checked form is cached, and the compiled variant is taken
   * synchronously once it exists.
   */
  run(digest: string, req: InvokeRequest): InvokeResult | Promise<InvokeResult> {
    const limits = this.checkedLimits(req.limits);
    const caps = req.capabilities ?? NO_CAPS;
    if (caps.dirs) for (const d of caps.dirs) this.checkDir(d);
    // The request's own record is used as is when nothing is merged under it: the spec is cloned
    // when it is posted to the worker.
    const env = caps.env && hasKeys(caps.env) ? { ...caps.env, ...req.env } : req.env;
    checkArgvSize(req.args, env);
    const spec: RunSpec = {
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
    const key = req.poolKey ?? digest;
    const variant = this.cache.resolvedVariant(digest, limits.memoryBytes);
    if (!variant) return this.cache.variant(digest, limits.memoryBytes).then((v) => this.runVariant(digest, key, v, spec, limits));
    return this.runVariant(digest, key, variant, spec, limits);
  }

  private runVariant(digest: string, key: string, variant: Variant, spec: RunSpec, limits: Required<Limits>): InvokeResult | Promise<InvokeResult> {
    // An inline run is synchronous: nothing else runs meanwhile, so it needs no concurrency slot,
    // only that one would be free (a function at its limit queues on the workers as before).
    if (this.inline && InlineRunner.eligible(spec) && this.limiter.hasRoom(key, limits.concurrency)) {
      const outcome = this.inline.tryRun(variant, spec, key);
      if (outcome) return this.result(digest, key, outcome);
    }
    return this.onWorker(digest, key, variant, spec, limits);
  }

  private async onWorker(digest: string, key: string, variant: Variant, spec: RunSpec, limits: Required<Limits>): Promise<InvokeResult> {
    const release = this.limiter.tryAcquire(key, limits.concurrency) ?? (await this.limiter.acquire(key, limits.concurrency, limits.queue));
    let outcome: RunOutcome;
    try {
      outcome = await this.pool.run(variant, spec, limits.timeoutMs, key);
    } finally {
      release();
    }
    return this.result(digest, key, outcome);
  }

  /** result logs the sandbox's notes and turns an outcome into a result, or throws its failure. */
  private result(digest: string, key: string, outcome: RunOutcome): InvokeResult {
    if (outcome.notes) for (const note of outcome.notes) this.logger?.warn({ digest, poolKey: key, note }, `sandbox refused: ${note}`);
    if (!outcome.ok) {
      if (outcome.code !== 'output_limit') this.logger?.warn({ digest, poolKey: key, code: outcome.code }, outcome.message);
      throw new RuntimeError(outcome.code, outcome.message, { stdout: outcome.stdout, stderr: outcome.stderr });
    }
    const res: InvokeResult = { exitCode: outcome.exitCode, stdout: outcome.stdout, stderr: outcome.stderr, durationMs: outcome.durationMs };
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
