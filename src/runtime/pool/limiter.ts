import { RuntimeError } from '../errors.js';

interface KeyState {
  active: number;
  waiting: Array<() => void>;
}

/**
 * KeyedLimiter caps concurrent invocations per key (a function): beyond `concurrency` callers wait in
 * a bounded FIFO queue, and beyond the queue they are refused at once with 'overloaded' (HTTP 503),
 * so a burst degrades into queueing and refusals, never into a crash.
 */
export class KeyedLimiter {
  private readonly keys = new Map<string, KeyState>();

  /**
   * tryAcquire takes a slot at once when one is free (and nobody is waiting), returning its release
   * function, or returns undefined; it spares the request path a promise when the function is not busy.
   */
  tryAcquire(key: string, concurrency: number): (() => void) | undefined {
    let st = this.keys.get(key);
    if (!st) {
      st = { active: 0, waiting: [] };
      this.keys.set(key, st);
    }
    if (st.active >= concurrency || st.waiting.length > 0) return undefined;
    st.active++;
    return once(this.releaser(key, st));
  }

  /** hasRoom: whether tryAcquire would take a slot now (without taking one, and without allocating). */
  hasRoom(key: string, concurrency: number): boolean {
    const st = this.keys.get(key);
    return !st || (st.active < concurrency && st.waiting.length === 0);
  }

  private releaser(key: string, state: KeyState): () => void {
    return () => {
      const next = state.waiting.shift();
      if (next) next();
      else {
        state.active--;
        if (state.active === 0 && this.keys.get(key) === state) this.keys.delete(key);
      }
    };
  }

  /** acquire resolves with a release function once the caller may run. */
  acquire(key: string, concurrency: number, queue: number): Promise<() => void> {
    let st = this.keys.get(key);
    if (!st) {
      st = { active: 0, waiting: [] };
      this.keys.set(key, st);
    }
    const state = st;
    const release = () => {
      const next = state.waiting.shift();
      if (next) next();
      else {
        state.active--;
        if (state.active === 0) this.keys.delete(key);
      }
    };
    if (state.active < concurrency) {
      state.active++;
      return Promise.resolve(once(release));
    }
    if (state.waiting.length >= queue) {
      return Promise.reject(new RuntimeError('overloaded', `function ${key} is at its concurrency limit (${concurrency} running, ${queue} queued); retry later`));
    }
    return new Promise((resolve) => state.waiting.push(() => resolve(once(release))));
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
}
