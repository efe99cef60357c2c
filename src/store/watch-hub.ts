import type { Watcher,WatchEvent, WatchOptions } from './types.js';

interface Subscription {
  prefix: string;
  opts: WatchOptions;
  closed: boolean;
}

/**
 * WatchHub fans committed events out to the in-process watchers of one store. Backends publish after
 * each commit; a new watcher is first fed the backend's history and then registered, in one synchronous
 * step, so that no event falls between the replay and the live feed.
 */
export class WatchHub {
  private readonly subs = new Set<Subscription>();

  /** Registers a watcher after delivering `history` (events already committed, oldest first). */
  subscribe(prefix: string, opts: WatchOptions, history: WatchEvent[]): Watcher {
    const sub: Subscription = { prefix, opts, closed: false };
    for (const ev of history) if (ev.kv.key.startsWith(prefix)) this.deliver(sub, ev);
    if (!sub.closed) this.subs.add(sub);
    return {
      close: () => {
        sub.closed = true;
        this.subs.delete(sub);
      },
    };
  }

  publish(ev: WatchEvent): void {
    for (const sub of this.subs) if (ev.kv.key.startsWith(sub.prefix)) this.deliver(sub, ev);
  }

  /** Ends every watch (store closing). */
  closeAll(err?: Error): void {
    for (const sub of this.subs) {
      sub.closed = true;
      try {
        sub.opts.onClose?.(err);
      } catch {
        // a watcher's close handler must not stop the others from closing
      }
    }
    this.subs.clear();
  }

  get size(): number {
    return this.subs.size;
  }

  private deliver(sub: Subscription, ev: WatchEvent): void {
    if (sub.closed) return;
    try {
      sub.opts.onEvent(ev);
    } catch (err) {
      // A failing watcher is dropped rather than allowed to break the writer that published.
      sub.closed = true;
      this.subs.delete(sub);
      try {
        sub.opts.onClose?.(err instanceof Error ? err : new Error(String(err)));
      } catch {
        /* ignore */
      }
    }
  }
}

/** prefixEnd returns the smallest string greater than every string that starts with prefix. */
export function prefixEnd(prefix: string): string {
  if (prefix === '') return '\uffff';
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
