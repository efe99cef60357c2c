import type { Logger } from 'pino';

import { parseModuleRef } from '../api/kinds/module-ref.js';
import type { ResourceService } from '../api/resources.js';
import type { BlobStore } from '../store/index.js';

/**
 * BlobGarbageCollector removes uploaded modules no Function names any more, once they are older than a
 * grace period (an hour by default): every `skiff apply --watch` round uploads a new module, and the
 * old ones must not fill the disk. The grace period covers the gap between an upload and the apply
 * that names it (a lookup or upload of a blob restarts its clock).
 */
export class BlobGarbageCollector {
  private timer?: NodeJS.Timeout;
  private running?: Promise<string[]>;

  constructor(
    private readonly resources: ResourceService,
    private readonly blobs: BlobStore,
    private readonly logger: Logger,
    private readonly graceMs = 60 * 60 * 1000,
  ) {}

  start(everyMs = 5 * 60_000): void {
    this.timer = setInterval(() => void this.sweep().catch((err) => this.logger.warn({ err: (err as Error).message }, 'module store clean-up failed')), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** sweep removes unreferenced blobs past the grace period now and returns their digests (one sweep at a time). */
  sweep(now = Date.now()): Promise<string[]> {
    this.running ??= this.sweepOnce(now).finally(() => (this.running = undefined));
    return this.running;
  }

  private async sweepOnce(now: number): Promise<string[]> {
    const referenced = await this.referenced();
    const removed = await this.blobs.sweep(referenced, this.graceMs, now);
    if (removed.length) this.logger.info({ removed: removed.length }, 'removed unreferenced uploaded modules');
    return removed;
  }

  /** referenced is every blob a stored Function names, across namespaces. */
  private async referenced(): Promise<Set<string>> {
    const out = new Set<string>();
    const { items } = await this.resources.list(this.resources.kind('Function'), undefined);
    for (const fn of items) {
      const ref = parseModuleRef(String(fn.spec?.module ?? ''));
      if (ref.type === 'blob') out.add(ref.hex);
    }
    return out;
  }
}
