import { Worker } from 'node:worker_threads';

import { startWorker } from '../../util/worker.js';
import { RuntimeError } from '../errors.js';
import type { Variant } from '../module-cache.js';
import type { RunOutcome, RunSpec } from '../sandbox.js';

import { LruSet, WORKER_MODULE_CAP } from './lru-set.js';
import type { RunMessage } from './worker-main.js';

/** A job may wait on a worker behind a job of the same owner that started less than this long ago (ms). */
const QUEUE_BEHIND_MS = 10;

/**
 * Jobs posted to one worker at a time: the running one and those waiting behind it. Under load the
 * hand-off to a worker (post, wake, answer) costs more than a short guest run, so a worker that goes
 * from job to job without sleeping serves far more; 16 is where more stopped helping (README.md).
 */
const MAX_JOBS_PER_WORKER = 16;

/** Wall-clock ms shared by every thread (performance.now() has a per-thread origin). */
function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

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
  /** Set once the deadline timer found the job still waiting behind another on its worker. */
  waitedOnce?: boolean;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  /**
   * Jobs posted to this worker, in the order it runs them: the first is running (or about to), the
   * others wait behind it (at most MAX_JOBS_PER_WORKER in all, see pickSlot).
   */
  jobs: Job[];
  /** Shared with the worker, which writes state[0]: the id of the job it is running (0 between jobs)... */
  state: Int32Array;
  /** ...and started[0]: when that job started (epoch ms, see epochMs). */
  started: Float64Array;
  /** Mirrors the worker's own LRU of modules, so a module is sent again after the worker dropped it. */
  loaded: LruSet;
  /** Set when the pool itself terminated this worker, so its exit is not reported as a crash. */
  retired: boolean;
}

/** PoolStats is the pool's size and load at one moment. */
export interface PoolStats {
  /** Worker threads started (the pool grows to its size on first use). */
  workers: number;
  /** Workers running a job. */
  busy: number;
  /** Jobs waiting for a worker, and jobs posted behind a worker's running one. */
  queued: number;
  /** Compiled modules held by the workers (a module loaded on two workers counts twice). */
  modulesLoaded: number;
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
  /** Whether the workers currently keep the process alive (see updateRefs). */
  private referenced = false;

  /**
   * One worker starts at once; the others start together the first time work waits for a worker.
   * Each worker thread costs memory (README.md), which a platform that has not served yet should not pay.
   * `entry` replaces the worker script (tests use it to simulate a broken installation).
   */
  constructor(private readonly size: number, private readonly logger?: PoolLogger, private readonly entry?: URL) {
    this.slots.push(this.spawn());
  }

  /** grow starts the rest of the pool when jobs wait and the first worker is up (so it is not failing to start). */
  private grow(): void {
    if (this.closed || this.brokenReason || this.slots.length >= this.size || this.queue.length === 0) return;
    if (!this.slots.some((s) => s.ready && !s.retired)) return;
    while (this.slots.length < this.size) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = this.entry ? new Worker(this.entry) : startWorker(import.meta.url, 'worker-main');
    const shared = new SharedArrayBuffer(16);
    const slot: Slot = { worker, ready: false, jobs: [], state: new Int32Array(shared, 0, 2), started: new Float64Array(shared, 8, 1), loaded: new LruSet(WORKER_MODULE_CAP), retired: false };
    worker.postMessage({ type: 'init', shared });
    worker.on('message', (msg: { type: string; id?: number; outcome?: RunOutcome }) => {
      if (msg.type === 'ready') {
        slot.ready = true;
        this.startupFailures = 0;
        this.brokenReason = '';
        this.pump();
      } else if (msg.type === 'result') {
        const i = slot.jobs.findIndex((j) => j.id === msg.id);
        if (i < 0) return;
        const job = slot.jobs[i]!;
        slot.jobs.splice(i, 1);
        clearTimeout(job.timer);
        job.resolve(msg.outcome!);
        this.pump();
      }
    });
    worker.on('error', (err) => this.crashed(slot, err));
    worker.on('exit', (code) => {
      if (!slot.retired) this.crashed(slot, new Error(`worker exited with code ${code}`));
      // Jobs the worker finished just before it stopped were answered by now (Node delivers a dead
      // worker's pending messages before 'exit'); anything left can no longer be answered.
      for (const job of slot.jobs.splice(0)) {
        clearTimeout(job.timer);
        job.reject(new RuntimeError('worker_failed', `the sandbox worker stopped (exit code ${code}) before answering`));
      }
    });
    // Idle workers must not keep the process alive (the CLI exits when its work is done); a worker
    // spawned while there is work follows the others.
    if (!this.referenced) worker.unref();
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
    const job = this.detachRunning(slot);
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

  /**
   * detachRunning takes the job the worker is running (or was about to run) off a slot that is being
   * replaced, and puts the jobs waiting behind it back at the head of the queue: they never started,
   * so another worker may run them. Jobs ahead of it finished; their answers are already on their way.
   */
  private detachRunning(slot: Slot): Job | undefined {
    const runningId = Atomics.load(slot.state, 0);
    let i = slot.jobs.findIndex((j) => j.id === runningId);
    if (i < 0) i = 0;
    const job = slot.jobs[i];
    const waiting = slot.jobs.splice(i);
    waiting.shift();
    for (const w of waiting) clearTimeout(w.timer);
    this.queue.unshift(...waiting);
    return job;
  }

  private brokenError(): RuntimeError {
    return new RuntimeError('worker_failed', `sandbox workers keep failing to start (${this.brokenReason}); check the installation`);
  }

  /** dropWarm tells every worker to forget its warm instances of a module (it keeps the compiled module). */
  dropWarm(key: string): void {
    for (const slot of this.slots) if (!slot.retired) slot.worker.postMessage({ type: 'drop', key });
  }

  /** stats counts workers, busy workers, waiting jobs and loaded modules; read at scrape time, not per run. */
  stats(): PoolStats {
    let busy = 0;
    let queued = this.queue.length;
    let modulesLoaded = 0;
    for (const s of this.slots) {
      if (s.jobs.length > 0) busy++;
      if (s.jobs.length > 1) queued += s.jobs.length - 1;
      modulesLoaded += s.loaded.size;
    }
    return { workers: this.slots.length, busy, queued, modulesLoaded };
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
    // Under load the queue is long and every worker busy: stop as soon as no worker can take any job,
    // instead of trying each queued job against each worker.
    for (let i = 0; i < this.queue.length && this.hasRoom(); ) {
      const job = this.queue[i]!;
      const slot = this.pickSlot(job, this.atOwnerCap(job.owner));
      if (!slot) {
        i++;
        continue;
      }
      if (i === 0) this.queue.shift();
      else this.queue.splice(i, 1);
      this.dispatch(slot, job);
    }
    this.grow();
    this.updateRefs();
  }

  /** atOwnerCap: whether `owner` already holds as many workers as one owner may (see pump). */
  private atOwnerCap(owner: string): boolean {
    if (this.size < 2) return false;
    let busy = 0;
    for (const s of this.slots) if (s.jobs.length > 0 && s.jobs[0]!.owner === owner) busy++;
    if (busy < this.size - 1) return false;
    if (this.size >= 3) return true;
    for (const j of this.queue) if (j.owner !== owner) return true;
    return false;
  }

  /**
   * Workers keep the process alive only while there is work: pending invocations must finish, idle
   * pools must not hold the CLI open. Toggled only on a change: ref()/unref() of every worker on every
   * dispatch is a measurable share of an invocation.
   */
  private updateRefs(): void {
    let busy = this.queue.length > 0;
    if (!busy) for (const s of this.slots) if (s.jobs.length > 0) { busy = true; break; }
    if (busy === this.referenced) return;
    this.referenced = busy;
    for (const s of this.slots) {
      if (s.retired) continue;
      if (busy) s.worker.ref();
      else s.worker.unref();
    }
  }

  /**
   * pickSlot prefers an idle worker that already holds the module (and its warm instances), then any
   * idle worker. When none is idle (or the owner may not take another worker), the job may wait on a
   * worker already running a job of the same owner that started moments ago: the worker then goes
   * from one job to the next without sleeping and being woken, which under load is a large share of
   * an invocation's cost. Only behind the same owner and a few deep (MAX_JOBS_PER_WORKER), so another
   * function's job never waits behind a guest that may be looping.
   */
  private pickSlot(job: Job, onlyQueueBehind: boolean): Slot | undefined {
    const key = job.variant.key;
    let any: Slot | undefined;
    let behind: Slot | undefined;
    for (const s of this.slots) {
      if (!s.ready || s.retired) continue;
      if (s.jobs.length === 0) {
        if (onlyQueueBehind) continue;
        if (s.loaded.has(key)) return s;
        any ??= s;
      } else if (s.jobs.length < MAX_JOBS_PER_WORKER && (!behind || s.jobs.length < behind.jobs.length) && s.jobs[0]!.owner === job.owner && s.loaded.has(key) && this.startedRecently(s)) behind = s;
    }
    return any ?? behind;
  }

  /** hasRoom: whether some worker is idle or could take a job behind its running one. */
  private hasRoom(): boolean {
    for (const s of this.slots) {
      if (!s.ready || s.retired) continue;
      if (s.jobs.length === 0 || (s.jobs.length < MAX_JOBS_PER_WORKER && this.startedRecently(s))) return true;
    }
    return false;
  }

  /** startedRecently: the slot's running job has not started yet or started under QUEUE_BEHIND_MS ago. */
  private startedRecently(s: Slot): boolean {
    if (Atomics.load(s.state, 0) !== s.jobs[0]!.id) return true;
    return epochMs() - s.started[0]! < QUEUE_BEHIND_MS;
  }

  private dispatch(slot: Slot, job: Job): void {
    slot.jobs.push(job);
    const msg: RunMessage = { type: 'run', id: job.id, key: job.variant.key, reusable: job.variant.reusable, spec: job.spec };
    if (!slot.loaded.has(job.variant.key)) msg.module = job.variant.module;
    slot.loaded.touch(job.variant.key);
    job.waitedOnce = false;
    this.arm(slot, job, job.timeoutMs);
    slot.worker.postMessage(msg);
  }

  /**
   * arm sets the job's deadline timer. The deadline counts from when the worker starts the job (a
   * job may wait behind another on its worker): when the timer fires for a job that is running, it
   * is re-armed for what is left; for one still waiting, once more for the whole timeout, and if it
   * is still not running then, its worker is treated as stuck.
   */
  private arm(slot: Slot, job: Job, ms: number): void {
    // setTimeout fires at once for delays past 2^31-1 ms; clamp so "practically never" stays that.
    job.timer = setTimeout(() => {
      if (!slot.jobs.includes(job) || slot.retired) return;
      if (Atomics.load(slot.state, 0) === job.id) {
        const left = job.timeoutMs - (epochMs() - slot.started[0]!);
        if (left >= 1) return this.arm(slot, job, left);
      } else if (!job.waitedOnce) {
        job.waitedOnce = true;
        return this.arm(slot, job, job.timeoutMs);
      }
      // The worker is terminated: its running job fails, jobs waiting behind it go back to the queue.
      const running = this.detachRunning(slot);
      const qi = this.queue.indexOf(job);
      if (qi >= 0) this.queue.splice(qi, 1);
      const ji = slot.jobs.indexOf(job);
      if (ji >= 0) slot.jobs.splice(ji, 1);
      this.logger?.warn({ module: job.variant.key, timeoutMs: job.timeoutMs }, 'sandbox deadline exceeded; terminating its worker');
      const err = (j: Job) => new RuntimeError('timeout', `the guest did not finish within ${j.timeoutMs} ms (limits.timeoutMs); its worker was terminated and replaced`);
      if (running && running !== job) {
        clearTimeout(running.timer);
        running.reject(err(running));
      }
      job.reject(err(job));
      this.replace(slot);
    }, Math.min(ms, 2_147_483_647));
  }

  /** close terminates every worker; queued and running invocations reject with 'closed'. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = () => new RuntimeError('closed', 'the runtime was closed before the invocation finished');
    for (const job of this.queue.splice(0)) job.reject(err());
    await Promise.all(this.slots.map(async (s) => {
      s.retired = true;
      for (const job of s.jobs.splice(0)) {
        clearTimeout(job.timer);
        job.reject(err());
      }
      await s.worker.terminate();
    }));
  }

  /** workerCount reports the pool size (for diagnostics and tests). */
  get workerCount(): number {
    return this.size;
  }
}
