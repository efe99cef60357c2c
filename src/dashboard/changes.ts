import { kindPrefix } from '../api/collection.js';
import { groupOf } from '../api/kinds/types.js';
import type { ResourceService } from '../api/resources.js';
import type { Watcher } from '../store/index.js';

/**
 * ChangeFeed tells the dashboard's pages which collections changed, over the one event stream they
 * already hold. A browser keeps at most six HTTP/1.1 connections to a host across all its tabs: a page
 * holding one watch per list it shows would leave none for its own requests (or a second tab). The
 * page lists again what changed; the store's single watch is shared by every page.
 */
export class ChangeFeed {
  private watcher?: Watcher;
  private pending = new Set<string>();
  private flushTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly resources: ResourceService,
    private readonly emit: (changed: string[]) => void,
    /** Changes within this window go out as one event (default 100 ms). */
    private readonly coalesceMs = 100,
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    try {
      this.watcher = await this.resources.store.watch('/registry/', {
        onEvent: (ev) => this.changed(ev.kv.key),
        // A store-side end (the watcher fell behind): start again from now; the pages list anew anyway.
        onClose: () => this.restart(),
      });
    } catch {
      this.restart();
    }
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private restart(): void {
    if (this.stopped) return;
    this.watcher = undefined;
    this.retryTimer = setTimeout(() => void this.start(), 1000);
    this.retryTimer.unref();
  }

  /** changed records the collection of one key as `PLURAL.GROUP` (core kinds: `PLURAL`), as the page names kinds. */
  private changed(key: string): void {
    let best: { prefix: string; ref: string } | undefined;
    for (const def of this.resources.kinds.all()) {
      const prefix = kindPrefix(def);
      if (key.startsWith(prefix) && (!best || prefix.length > best.prefix.length)) {
        const g = groupOf(def);
        best = { prefix, ref: g ? `${def.plural}.${g}` : def.plural };
      }
    }
    if (!best) return;
    this.pending.add(best.ref);
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      const changed = [...this.pending];
      this.pending.clear();
      this.emit(changed);
    }, this.coalesceMs);
  }
}
