import type { Logger } from 'pino';

/** One leader-only piece: started when this node starts leading, stopped when it stops. */
export interface LeaderTask {
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}

interface Entry {
  name: string;
  make: () => LeaderTask;
  running?: LeaderTask;
}

/**
 * LeaderScope holds the controllers that run once per cluster. Each is registered as a factory: a
 * stopped controller is not restarted (its work queue is shut down), so every term of leadership
 * builds fresh ones. Transitions are serialised: a loss of leadership while the controllers are still
 * starting stops them once they have started, and a new term waits for the previous one to end, so no
 * two generations of the same controller ever run side by side.
 *
 * @example
 * const scope = new LeaderScope(logger);
 * scope.add('scheduler', () => new Scheduler({ resources: fenced }));
 * elector = new LeaderElector({ ..., onStartedLeading: () => scope.lead(), onStoppedLeading: () => scope.yield() });
 */
export class LeaderScope {
  private readonly entries: Entry[] = [];
  private chain: Promise<void> = Promise.resolve();
  private wanted = false;
  private closed = false;
  /** Counts lead() and yield() calls: a start belongs to the term it was asked in. */
  private term = 0;

  constructor(private readonly logger: Logger) {}

  /** add registers a leader-only controller; when this node already leads, it starts at once. */
  add(name: string, make: () => LeaderTask): void {
    this.entries.push({ name, make });
    if (this.wanted) this.enqueueStart();
  }

  /** Whether this node has been told it leads (its controllers may still be starting). */
  get leading(): boolean {
    return this.wanted;
  }

  /** The names of the controllers running now. */
  running(): string[] {
    return this.entries.filter((e) => e.running).map((e) => e.name);
  }

  /** The controller of the current term registered under this name, if running. */
  current<T extends LeaderTask>(name: string): T | undefined {
    return this.entries.find((e) => e.name === name)?.running as T | undefined;
  }

  lead(): void {
    if (this.closed) return;
    this.wanted = true;
    this.term++;
    this.enqueueStart();
  }

  yield(): void {
    this.wanted = false;
    this.term++;
    this.enqueue(() => this.stopAll());
  }

  /** settled resolves once the transitions asked for so far are done. */
  settled(): Promise<void> {
    return this.chain;
  }

  /** close stops every running controller and starts none after. */
  async close(): Promise<void> {
    this.closed = true;
    this.yield();
    await this.chain;
  }

  private enqueue(step: () => Promise<void>): void {
    this.chain = this.chain.then(step, step);
  }

  private enqueueStart(): void {
    const term = this.term;
    this.enqueue(() => this.startAll(term));
  }

  private async startAll(term: number): Promise<void> {
    for (const e of this.entries) {
      // Leadership lost (and perhaps regained) meanwhile: the stop queued behind this start undoes
      // what started, and the next term's start builds afresh.
      if (this.term !== term) return;
      if (e.running) continue;
      try {
        const task = e.make();
        e.running = task;
        await task.start();
      } catch (err) {
        this.logger.error({ controller: e.name, err: (err as Error).message }, 'a leader-only controller failed to start');
      }
    }
    if (this.term === term) this.logger.info({ controllers: this.running() }, 'leader-only controllers running');
  }

  private async stopAll(): Promise<void> {
    for (const e of [...this.entries].reverse()) {
      const task = e.running;
      if (!task) continue;
      e.running = undefined;
      try {
        await task.stop();
      } catch (err) {
        this.logger.warn({ controller: e.name, err: (err as Error).message }, 'a leader-only controller did not stop cleanly');
      }
    }
  }
}
