/**
 * Cancellation is what the gateway hands work it may stop waiting for (a Function's `invoke`): its
 * `signal` aborts when the client goes away or the deadline passes. The signal is built when first
 * read, so work that never looks at it costs no AbortController.
 */
export interface Cancellation {
  readonly signal: AbortSignal;
}

/** AbortReason tags why work was cancelled, so a failure can be classified without guessing. */
export class AbortReason extends Error {
  constructor(readonly why: 'deadline' | 'client' | 'per_try' | 'hedge_lost') {
    super(why);
  }
}

/**
 * CancelToken is a one-shot cancellation signal for the proxy hot path. AbortController/EventTarget
 * cost several microseconds per request in Node, which is a measurable share of a proxied request,
 * so the upstream path uses this plain object and only builds an AbortSignal where an API needs one.
 */
export class CancelToken implements Cancellation {
  reason?: AbortReason;
  private listeners?: CancelListener[];
  private abortSignal?: AbortSignal;

  /** signal is an AbortSignal that follows this token, built on first read and kept. */
  get signal(): AbortSignal {
    return (this.abortSignal ??= this.toSignal());
  }

  get cancelled(): boolean {
    return this.reason !== undefined;
  }

  cancel(reason: AbortReason): void {
    if (this.reason) return;
    this.reason = reason;
    const ls = this.listeners;
    this.listeners = undefined;
    if (ls) for (const l of ls) typeof l === 'function' ? l(reason) : l.onCancel(reason);
  }

  /** on registers a listener (called at once if already cancelled). */
  on(l: CancelListener): void {
    if (this.reason) return void (typeof l === 'function' ? l(this.reason) : l.onCancel(this.reason));
    (this.listeners ??= []).push(l);
  }

  off(l: CancelListener): void {
    const ls = this.listeners;
    if (!ls) return;
    const i = ls.indexOf(l);
    if (i >= 0) ls.splice(i, 1);
  }

  /** toSignal returns an AbortSignal that follows this token, for APIs that need one. */
  toSignal(): AbortSignal {
    const ac = new AbortController();
    this.on((r) => ac.abort(r));
    return ac.signal;
  }
}

/** CancelListener is a callback or an object with `onCancel` (which saves a closure per request). */
export type CancelListener = ((r: AbortReason) => void) | { onCancel(r: AbortReason): void };
