import { Worker } from 'node:worker_threads';
import { RuntimeError } from '../errors.js';
import type { Variant } from '../module-cache.js';
import type { RunOutcome, RunSpec } from '../sandbox.js';
import { LruSet, WORKER_MODULE_CAP } from './lru-set.js';
import type { ToWorker } from './worker-main.js';

/** Consecutive workers dying before ready after which queued invocations are failed. */
const STARTUP_FAILURES_FATAL = 3;

interface Job {
  id: number;
  /** The caller's pool key (a function): no key may hold every worker while others wait. */
  owner: string;
  variant: Variant;
  spec: RunSpec;
  timeoutMs: number;
  resolve: (o: RunOutcome) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job: Job | null;
  /** Mirrors the worker's own LRU of modules, so a module is sent again after the worker dropped it. */
  loaded: LruSet;
  /** Set when the pool itself terminated this worker, so its exit is not reported as a crash. */
  retired: boolean;
}

/** PoolLogger receives one line per worker replaced (timeouts, crashes). */
export interface PoolLogger {
  warn(obj: object, msg?: string): void;
}

/**
 * WorkerPool runs sandboxes on pre-spawned worker threads so guest code never runs on the caller's
 * event loop. Each worker hosts many sandboxes, one running at a time. A guest that overruns its
 * deadline has its whole worker terminated (the only way to stop a Wasm loop) and a fresh worker takes
 * its place; every other worker keeps serving.
 */
export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private startupFailures = 0;
  private brokenReason = '';

  /** `entry` replaces the worker script (tests use it to simulate a broken installation). */
  constructor(private readonly size: number, private readonly logger?: PoolLogger, private readonly entry?: URL) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const ts = import.meta.url.endsWith('.ts');
    const worker = this.entry
      ? new Worker(this.entry)
      : ts
        ? new Worker(new URL('./boot-ts.mjs', import.meta.url), { workerData: { entry: new URL('./worker-main.ts', import.meta.url).href } })
        : new Worker(new URL('./worker-main.js', import.meta.url));
    const slot: Slot = { worker, ready: false, job: null, loaded: new LruSet(WORKER_MODULE_CAP), retired: false };
    worker.on('message', (msg: { type: string; id?: number; outcome?: RunOutcome }) => {
      if (msg.type === 'ready') {
        slot.ready = true;
        this.startupFailures = 0;
        this.brokenReason = '';
        this.pump();
      } else if (msg.type === 'result' && slot.job && slot.job.id === msg.id) {
        const job = slot.job;
        slot.job = null;
        clearTimeout(job.timer);
        job.resolve(msg.outcome!);
        this.pump();
      }
    });
    worker.on('error', (err) => this.crashed(slot, err));
    worker.on('exit', (code) => {
      if (!slot.retired) this.crashed(slot, new Error(`worker exited with code ${code}`));
    });
    // Idle workers must not keep the process alive (the CLI exits when its work is done).
    worker.unref();
    return slot;
  }

  private replace(slot: Slot, delayMs = 0): void {
    slot.retired = true;
    // A worker blocked in a host call (reading the CLI's stdin) cannot be stopped at once; it must not
    // keep the process alive meanwhile.
    slot.worker.unref();
    void slot.worker.terminate();
    const respawn = () => {
      const i = this.slots.indexOf(slot);
      if (i >= 0 && !this.closed) this.slots[i] = this.spawn();
      this.pump();
    };
    if (delayMs > 0) setTimeout(respawn, delayMs).unref();
    else respawn();
  }

  private crashed(slot: Slot, err: Error): void {
    if (slot.retired) return;
    const job = slot.job;
    slot.job = null;
    this.logger?.warn({ err: err.message, module: job?.variant.key }, 'sandbox worker failed; replacing it');
    if (job) {
      clearTimeout(job.timer);
      const oom = (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY';
      job.reject(new RuntimeError(oom ? 'memory_limit' : 'worker_failed', `the sandbox worker failed: ${err.message}`, { cause: err }));
    }
    // A worker that dies before it is ready will die again: back off, and fail waiting callers
    // instead of letting them hang.
    this.startupFailures = slot.ready ? 0 : this.startupFailures + 1;
    if (this.startupFailures >= STARTUP_FAILURES_FATAL) {
      this.brokenReason = err.message;
      for (const queued of this.queue.splice(0)) queued.reject(this.brokenError());
    }
    this.replace(slot, this.startupFailures ? Math.min(30_000, 100 * 2 ** this.startupFailures) : 0);
  }

  private brokenError(): RuntimeError {
    return new RuntimeError('worker_failed', `sandbox workers keep failing to start (${this.brokenReason}); check the installation`);
  }

  /** run queues one invocation; it resolves with the outcome or rejects with 'timeout' / 'closed'. */
  run(variant: Variant, spec: RunSpec, timeoutMs: number, owner = variant.key): Promise<RunOutcome> {
    if (this.closed) return Promise.reject(new RuntimeError('closed', 'the runtime is closed'));
    if (this.brokenReason) return Promise.reject(this.brokenError());
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, owner, variant, spec, timeoutMs, resolve, reject });
      this.pump();
    });
  }

  /**
   * pump hands queued jobs to idle workers in order, except that one owner (function) never holds the
   * last worker: with three or more workers one always stays free for other functions, so a function
   * stuck in loops until its deadlines cannot stall the rest; with two, the last free worker goes to
   * another function's waiting job first.
   */
  private pump(): void {
    for (let i = 0; i < this.queue.length; ) {
      const job = this.queue[i]!;
      const busy = this.slots.filter((s) => s.job?.owner === job.owner).length;
      const capped = this.size >= 3 || (this.size === 2 && this.queue.some((j) => j.owner !== job.owner));
      if (capped && busy >= this.size - 1) {
        i++;
        continue;
      }
      const slot = this.pickSlot(job.variant.key);
      if (!slot) break;
      this.queue.splice(i, 1);
      this.dispatch(slot, job);
    }
    this.updateRefs();
  }

  /** Workers keep the process alive only while there is work: pending invocations must finish, idle pools must not hold the CLI open. */
  private updateRefs(): void {
    const busy = this.queue.length > 0 || this.slots.some((s) => s.job);
    for (const s of this.slots) {
      if (busy) s.worker.ref();
      else s.worker.unref();
    }
  }

  /** pickSlot prefers an idle worker that already holds the module (and its warm instances). */
  private pickSlot(key: string): Slot | undefined {
    let any: Slot | undefined;
    for (const s of this.slots) {
      if (!s.ready || s.job || s.retired) continue;
      if (s.loaded.has(key)) return s;
      any ??= s;
    }
    return any;
  }

  private dispatch(slot: Slot, job: Job): void {
    slot.job = job;
    const msg: ToWorker = { type: 'run', id: job.id, key: job.variant.key, reusable: job.variant.reusable, spec: job.spec };
    if (!slot.loaded.has(job.variant.key)) msg.module = job.variant.module;
    slot.loaded.touch(job.variant.key);
    // setTimeout fires at once for delays past 2^31-1 ms; clamp so "practically never" stays that.
    job.timer = setTimeout(() => {
      if (slot.job !== job) return;
      slot.job = null;
      this.logger?.warn({ module: job.variant.key, timeoutMs: job.timeoutMs }, 'sandbox deadline exceeded; terminating its worker');
      job.reject(new RuntimeError('timeout', `the guest did not finish within ${job.timeoutMs} ms (limits.timeoutMs); its worker was terminated and replaced`));
      this.replace(slot);
    }, Math.min(job.timeoutMs, 2_147_483_647));
    slot.worker.postMessage(msg);
  }

  /** close terminates every worker; queued and running invocations reject with 'closed'. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = () => new RuntimeError('closed', 'the runtime was closed before the invocation finished');
    for (const job of this.queue.splice(0)) job.reject(err());
    await Promise.all(this.slots.map(async (s) => {
      s.retired = true;
      if (s.job) {
        clearTimeout(s.job.timer);
        s.job.reject(err());
        s.job = null;
      }
      await s.worker.terminate();
    }));
  }

  /** workerCount reports the pool size (for diagnostics and tests). */
  get workerCount(): number {
    return this.size;
  }
}
