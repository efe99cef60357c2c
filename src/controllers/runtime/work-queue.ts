export interface WorkQueueOptions {
  /** First retry delay after a failure. */
  baseDelayMs?: number;
  /** Cap of the exponential backoff. */
  maxDelayMs?: number;
}

/**
 * WorkQueue holds keys to reconcile. A key is queued at most once; a key being processed that is
 * added again is processed once more afterwards (never concurrently with itself). Failures are
 * retried with exponential backoff per key; success resets the key's backoff.
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private waiters: Array<(key: string | undefined) => void> = [];
  private shutDown = false;
  private readonly base: number;
  private readonly max: number;

  constructor(opts: WorkQueueOptions = {}) {
    this.base = opts.baseDelayMs ?? 50;
    this.max = opts.maxDelayMs ?? 60_000;
  }

  add(key: string): void {
    if (this.shutDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.processing.add(key);
      waiter(key);
      return;
    }
    this.queued.add(key);
    this.queue.push(key);
  }

  /** addAfter queues the key after a delay (a pending delayed add for the key is replaced). */
  addAfter(key: string, delayMs: number): void {
    if (this.shutDown) return;
    const t = this.timers.get(key);
    if (t) clearTimeout(t);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, timer);
  }

  /** addRateLimited requeues a failed key with exponential backoff; returns the delay used. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.max, this.base * 2 ** n);
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** get resolves with the next key, or undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.shutDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) {
      this.queued.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** done marks a key processed; if it was added meanwhile it is queued again. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  get length(): number {
    return this.queue.length;
  }

  shutdown(): void {
    this.shutDown = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const w of this.waiters) w(undefined);
    this.waiters = [];
  }
}
