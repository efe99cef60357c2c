import type { Worker } from 'node:worker_threads';

import { startWorker } from '../../util/worker.js';
import { AdmissionError } from '../errors.js';
import type { LevelVersion } from '../pss/evaluate.js';

import type { Answer } from './answer.js';

/** EvalWorkerConfig is what each evaluation thread needs to build its own client. */
export interface EvalWorkerConfig {
  policies: string[];
  pss?: LevelVersion;
  evalTimeoutMs?: number;
}

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (a: Answer) => void; reject: (e: Error) => void }>;
}

/** PoolCounts is what every worker reported loading (they load the same files). */
export interface PoolCounts {
  templates: number;
  constraints: number;
  inventory: number;
}

/**
 * EvalPool evaluates AdmissionReviews on worker threads, so that on a machine with spare cores
 * evaluation runs in parallel with TLS and HTTP on the main thread and with each other. Each
 * review goes to the worker with the fewest in flight. A worker that dies fails its in-flight
 * reviews (the webhook answers them with code 500) and is replaced.
 */
export class EvalPool {
  private readonly slots: Slot[] = [];
  /** every live worker, ready or still loading (close terminates them all) */
  private readonly workers: Worker[] = [];
  private nextId = 1;
  private closed = false;

  private constructor(private readonly config: EvalWorkerConfig) {}

  /** start spawns `size` workers and resolves once each has loaded the policies (or rejects with the first load error). */
  static async start(config: EvalWorkerConfig, size: number): Promise<{ pool: EvalPool; counts: PoolCounts }> {
    const pool = new EvalPool(config);
    const started = await Promise.allSettled(Array.from({ length: size }, () => pool.spawn()));
    const failure = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) {
      await pool.close();
      throw failure.reason;
    }
    return { pool, counts: (started[0] as PromiseFulfilledResult<PoolCounts>).value };
  }

  evaluate(body: Buffer): Promise<Answer> {
    if (this.closed || !this.slots.length) return Promise.reject(new Error('the evaluation pool is closed'));
    let slot = this.slots[0]!;
    for (const s of this.slots) if (s.pending.size < slot.pending.size) slot = s;
    const id = this.nextId++;
    return new Promise<Answer>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, body });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private spawn(): Promise<PoolCounts> {
    const worker = startWorker(import.meta.url, 'eval-worker', { config: this.config });
    const slot: Slot = { worker, pending: new Map() };
    this.workers.push(worker);
    return new Promise<PoolCounts>((ready, failed) => {
      let started = false;
      worker.on('message', (m: { type: string; id?: number; status?: number; body?: string; error?: string } & Partial<PoolCounts>) => {
        if (m.type === 'ready') {
          started = true;
          this.slots.push(slot);
          ready({ templates: m.templates ?? 0, constraints: m.constraints ?? 0, inventory: m.inventory ?? 0 });
        } else if (m.type === 'failed') {
          failed(new AdmissionError('policies_invalid', m.error ?? 'a worker could not load the policies'));
          void worker.terminate();
        } else if (m.type === 'answer' && m.id !== undefined) {
          const p = slot.pending.get(m.id);
          slot.pending.delete(m.id);
          p?.resolve({ status: m.status ?? 500, body: m.body ?? '' });
        }
      });
      worker.on('error', (e) => {
        if (!started) failed(e);
      });
      worker.on('exit', () => {
        this.workers.splice(this.workers.indexOf(worker), 1);
        if (!started) failed(new Error('an evaluation worker exited while loading the policies'));
        const i = this.slots.indexOf(slot);
        if (i >= 0) this.slots.splice(i, 1);
        for (const p of slot.pending.values()) p.reject(new Error('an evaluation worker stopped'));
        slot.pending.clear();
        if (started && !this.closed) void this.spawn().catch(() => {});
      });
    });
  }
}
