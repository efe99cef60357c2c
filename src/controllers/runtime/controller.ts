import type { Logger } from 'pino';

import { DurationHistogram } from '../../util/histogram.js';

import { WorkQueue } from './work-queue.js';

export interface ReconcileResult {
  /** Reconcile again after this delay even if nothing changes (e.g. to poll an external source). */
  requeueAfterMs?: number;
}

export interface ControllerOptions {
  name: string;
  logger: Logger;
  reconcile: (key: string) => Promise<ReconcileResult | void>;
  /** How many keys are reconciled at once. */
  workers?: number;
  /** Full pass over every known key this often. */
  resyncMs?: number;
  /** Lists every key the controller is responsible for (for the start pass and resyncs). */
  keys: () => string[];
}

/**
 * Controller drives level-based reconciliation: a full pass on start, every change enqueued by
 * informers, a periodic resync, and failures retried with exponential backoff. One bad object only
 * delays itself.
 */
export class Controller {
  readonly queue = new WorkQueue();
  /** Reconciles finished, failed, and their duration: read by the metrics exporter. */
  readonly stats = { reconciles: 0, errors: 0, duration: new DurationHistogram() };
  private running: Promise<void>[] = [];
  private resyncTimer?: NodeJS.Timeout;
  private idleWaiters: Array<() => void> = [];
  private active = 0;

  constructor(private readonly opts: ControllerOptions) {}

  get name(): string {
    return this.opts.name;
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  start(): void {
    for (const k of this.opts.keys()) this.queue.add(k);
    const workers = this.opts.workers ?? 2;
    for (let i = 0; i < workers; i++) this.running.push(this.work());
    const every = this.opts.resyncMs ?? 30_000;
    this.resyncTimer = setInterval(() => {
      for (const k of this.opts.keys()) this.queue.add(k);
    }, every);
    this.resyncTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.queue.shutdown();
    await Promise.all(this.running);
  }

  /** idle resolves once nothing is queued or being reconciled (used by tests and `skiff up --demo`). */
  idle(): Promise<void> {
    if (this.active === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.active++;
      const t0 = performance.now();
      try {
        const res = await this.opts.reconcile(key);
        this.stats.reconciles++;
        this.stats.duration.observe((performance.now() - t0) * 1000);
        this.queue.forget(key);
        if (res?.requeueAfterMs) this.queue.addAfter(key, res.requeueAfterMs);
      } catch (err) {
        this.stats.reconciles++;
        this.stats.errors++;
        this.stats.duration.observe((performance.now() - t0) * 1000);
        const delay = this.queue.addRateLimited(key);
        this.opts.logger.warn({ controller: this.opts.name, key, err: (err as Error).message, retryInMs: delay }, 'reconcile failed');
      } finally {
        this.active--;
        this.queue.done(key);
        if (this.active === 0 && this.queue.length === 0) {
          const w = this.idleWaiters;
          this.idleWaiters = [];
          for (const f of w) f();
        }
      }
    }
  }
}
