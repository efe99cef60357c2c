import type { Logger } from 'pino';

import type { ResourceService } from '../api/resources.js';

/**
 * EventGarbageCollector deletes Events whose last occurrence is older than the retention (an hour by
 * default, as Kubernetes keeps them), so that a long-running Skiff does not accumulate them forever.
 */
export class EventGarbageCollector {
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly resources: ResourceService,
    private readonly logger: Logger,
    private readonly retentionMs = 60 * 60 * 1000,
  ) {}

  start(everyMs = 60_000): void {
    this.timer = setInterval(() => void this.sweep().catch((err) => this.logger.warn({ err: (err as Error).message }, 'event clean-up failed')), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** sweep deletes every expired Event now and returns how many it deleted. */
  async sweep(now = Date.now()): Promise<number> {
    const def = this.resources.kind('Event');
    const { items } = await this.resources.list(def, undefined);
    let deleted = 0;
    for (const ev of items) {
      const last = Date.parse(String(ev.lastTimestamp ?? ev.metadata.creationTimestamp ?? ''));
      if (!Number.isFinite(last) || now - last < this.retentionMs) continue;
      try {
        await this.resources.delete(def, ev.metadata.namespace, ev.metadata.name, { resourceVersion: ev.metadata.resourceVersion });
        deleted++;
      } catch {
        // updated or deleted meanwhile: it is either fresh again or gone
      }
    }
    return deleted;
  }
}
