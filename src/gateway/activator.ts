import { GatewayError } from './errors.js';

/**
 * The activator: every request for a Function passes its ScaleGate, which counts what the autoscaler
 * samples (requests and in-flight time) and, when the Function has no ready replica, holds the request
 * in a bounded queue, asks the Function's owner to scale up, and lets the queue go once a replica is
 * ready. Hand-written because it sits on every Function request: two counters and a comparison when
 * the Function is up.
 */

/** ActivationFullError: the queue of requests waiting for a Function at zero is full (503, Retry-After). */
export class ActivationFullError extends GatewayError {
  constructor(fn: string, limit: number) {
    super('activation_queue_full', 503, 'the function is starting; retry shortly\n', `function ${fn} is scaling from zero and ${limit} requests already wait for it`);
  }
}

/** ActivationError: no replica of the Function became ready for a waiting request (503). */
export class ActivationError extends GatewayError {
  constructor(fn: string, why: string, code = 'activation_failed') {
    super(code, 503, 'no ready replica\n', `function ${fn} has no ready replica: ${why}`);
  }
}

/** GateOwner is the one who scales a Function: the autoscaler, told that a request found none ready. */
export interface GateOwner {
  /**
   * activate starts a replica for a Function at zero. It may make the gate ready before it returns
   * (a Wasm Function: instantiating is quicker than a promise turn), else later through `open`. It
   * returns why no replica can come now (every one crashing, scaled to zero by hand), which the
   * request gets at once instead of waiting.
   */
  activate(key: string): string | undefined;
}

/** GateSample is what the gate saw since the previous sample. */
export interface GateSample {
  /** Requests that arrived. */
  requests: number;
  /** Average requests in flight over the period (time-weighted). */
  concurrency: number;
  /** Requests that arrived when no replica was ready (cold starts). */
  coldStarts: number;
  /** Requests waiting for a replica right now. */
  waiting: number;
  /** Length of the period, ms. */
  periodMs: number;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  signal: AbortSignal;
  onAbort: () => void;
}

/** Limits of a gate's activation queue. */
export interface ActivationLimits {
  /** Requests that may wait for a Function at zero; more get 503 with Retry-After. */
  maxQueue: number;
  /** How long one request waits for a replica before it gets 503. */
  timeoutMs: number;
}

export const DEFAULT_ACTIVATION: ActivationLimits = { maxQueue: 256, timeoutMs: 60_000 };

/** ScaleGate is one Function's door (see the file comment). */
export class ScaleGate {
  /** Whether a replica is ready: requests pass without waiting. */
  ready = false;
  inflight = 0;
  /** Totals since the gate was made (the metrics exporter reads them). */
  totalRequests = 0;
  totalColdStarts = 0;
  private requests = 0;
  private coldStarts = 0;
  /** In-flight request-milliseconds since the last sample, up to `lastChange`. */
  private area = 0;
  private lastChange = performance.now();
  private lastSample = performance.now();
  private readonly waiters = new Set<Waiter>();
  /** Why waiting requests were last sent away, until a replica is ready again (for the timeout's message). */
  private failure?: string;

  constructor(readonly key: string, private readonly owner: GateOwner, public limits: ActivationLimits = DEFAULT_ACTIVATION) {}

  /** enter counts a request in; the caller must call `leave` once it is answered, whatever happened. */
  enter(): void {
    const now = performance.now();
    this.area += this.inflight * (now - this.lastChange);
    this.lastChange = now;
    this.inflight++;
    this.requests++;
    this.totalRequests++;
  }

  leave(): void {
    const now = performance.now();
    this.area += this.inflight * (now - this.lastChange);
    this.lastChange = now;
    this.inflight--;
  }

  /**
   * admit lets an entered request through: undefined when a replica is ready now (possibly made
   * ready by the activation this call started), else a promise that settles when one is, or rejects
   * (queue full, timeout, the request ended, the Function went away or could not start).
   */
  admit(signal: AbortSignal | (() => AbortSignal)): Promise<void> | undefined {
    if (this.ready) return undefined;
    this.coldStarts++;
    this.totalColdStarts++;
    if (this.waiters.size >= this.limits.maxQueue) return Promise.reject(new ActivationFullError(this.key, this.limits.maxQueue));
    const refused = this.owner.activate(this.key);
    if (this.ready) return undefined;
    if (refused !== undefined) return Promise.reject(new ActivationError(this.key, refused));
    const sig = typeof signal === 'function' ? signal() : signal;
    if (sig.aborted) return Promise.reject(new ActivationError(this.key, 'the request ended while waiting', 'client_closed'));
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        signal: sig,
        onAbort: () => this.settle(w, new ActivationError(this.key, 'the request ended while waiting', 'client_closed')),
        timer: setTimeout(() => this.settle(w, new ActivationError(this.key, `no replica became ready within ${Math.round(this.limits.timeoutMs / 100) / 10}s${this.failure ? ` (${this.failure})` : ''}`, 'activation_timeout')), this.limits.timeoutMs),
      };
      sig.addEventListener('abort', w.onAbort, { once: true });
      this.waiters.add(w);
    });
  }

  /** open marks a replica ready and lets every waiting request go. */
  open(): void {
    this.ready = true;
    this.failure = undefined;
    for (const w of [...this.waiters]) this.settle(w);
  }

  /** close marks the Function as having no ready replica: the next request activates it. */
  close(): void {
    this.ready = false;
  }

  /** fail sends every waiting request a 503 with the reason (every replica is crashing, say). */
  fail(why: string): void {
    this.failure = why;
    for (const w of [...this.waiters]) this.settle(w, new ActivationError(this.key, why));
  }

  /** remove ends the gate: waiting requests get 404-like answers from the caller's error. */
  remove(why: string): void {
    this.ready = false;
    for (const w of [...this.waiters]) this.settle(w, new ActivationError(this.key, why, 'function_removed'));
  }

  get waiting(): number {
    return this.waiters.size;
  }

  /** sample returns what the gate saw since the previous sample and starts a new period. */
  sample(): GateSample {
    const now = performance.now();
    this.area += this.inflight * (now - this.lastChange);
    this.lastChange = now;
    const periodMs = Math.max(now - this.lastSample, 1e-3);
    const out: GateSample = { requests: this.requests, concurrency: this.area / periodMs, coldStarts: this.coldStarts, waiting: this.waiters.size, periodMs };
    this.area = 0;
    this.requests = 0;
    this.coldStarts = 0;
    this.lastSample = now;
    return out;
  }

  private settle(w: Waiter, err?: Error): void {
    if (!this.waiters.delete(w)) return;
    clearTimeout(w.timer);
    w.signal.removeEventListener('abort', w.onAbort);
    if (err) w.reject(err);
    else w.resolve();
  }
}

/** ScaleGates holds every Function's gate by `namespace/name`; the owner adds and removes them. */
export class ScaleGates {
  private readonly byKey = new Map<string, ScaleGate>();
  private owner: GateOwner = { activate: () => 'nothing scales it' };

  /** useOwner sets who is asked to scale a Function up (the autoscaler). */
  useOwner(owner: GateOwner): void {
    this.owner = owner;
  }

  get(key: string): ScaleGate | undefined {
    return this.byKey.get(key);
  }

  /** ensure returns the Function's gate, making it (closed) when there is none. */
  ensure(key: string, limits?: ActivationLimits): ScaleGate {
    let g = this.byKey.get(key);
    if (!g) this.byKey.set(key, (g = new ScaleGate(key, { activate: (k) => this.owner.activate(k) }, limits)));
    else if (limits) g.limits = limits;
    return g;
  }

  remove(key: string, why = 'the Function was deleted'): void {
    const g = this.byKey.get(key);
    if (!g) return;
    this.byKey.delete(key);
    g.remove(why);
  }

  all(): IterableIterator<ScaleGate> {
    return this.byKey.values();
  }
}
