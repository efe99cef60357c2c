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
import { ModuleCache, type ModuleInfo } from './module-cache.js';
import { KeyedLimiter } from './pool/limiter.js';
import { WorkerPool } from './pool/worker-pool.js';
import type { RunSpec } from './sandbox.js';

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

  constructor(opts: RuntimeOptions = {}) {
    const workers = opts.workers ?? Math.min(8, Math.max(3, availableParallelism() + 1));
    if (!Number.isInteger(workers) || workers < 1) throw new RuntimeError('invalid_options', `RuntimeOptions.workers must be a positive integer, got ${workers}`);
    this.logger = opts.logger;
    this.pool = new WorkerPool(workers, opts.logger);
  }

  /** compile validates and compiles module bytes (cached by sha256 digest). */
  compile(bytes: Uint8Array): Promise<ModuleInfo> {
    return this.cache.compile(bytes);
  }

  /** invoke runs the module's `_start` and resolves when the guest exits, whatever its exit code. */
  async invoke(digest: string, req: InvokeRequest): Promise<InvokeResult> {
    const limits = { ...DEFAULT_LIMITS, ...definedOnly(req.limits ?? {}) };
    checkLimits(limits);
    const caps = req.capabilities ?? {};
    for (const d of caps.dirs ?? []) checkDir(d);
    checkArgvSize(req.args, { ...(caps.env ?? {}), ...req.env });
    const variant = await this.cache.variant(digest, limits.memoryBytes);
    const spec: RunSpec = {
      args: req.args,
      env: { ...(caps.env ?? {}), ...req.env },
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
    const release = await this.limiter.acquire(key, limits.concurrency, limits.queue);
    let outcome;
    try {
      outcome = await this.pool.run(variant, spec, limits.timeoutMs, key);
    } finally {
      release();
    }
    for (const note of outcome.notes ?? []) this.logger?.warn({ digest, poolKey: key, note }, `sandbox refused: ${note}`);
    if (!outcome.ok) {
      if (outcome.code !== 'output_limit') this.logger?.warn({ digest, poolKey: key, code: outcome.code }, outcome.message);
      throw new RuntimeError(outcome.code, outcome.message, { stdout: outcome.stdout, stderr: outcome.stderr });
    }
    const res: InvokeResult = { exitCode: outcome.exitCode, stdout: outcome.stdout, stderr: outcome.stderr, durationMs: outcome.durationMs };
    if (outcome.notes?.length) res.notes = outcome.notes;
    return res;
  }

  /** close terminates the workers; pending invocations reject with 'closed'. */
  close(): Promise<void> {
    return this.pool.close();
  }
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
