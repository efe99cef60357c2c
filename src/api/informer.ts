import type { Logger } from 'pino';

import type { Watcher } from '../store/index.js';

import type { KindDefinition, ResourceObject } from './kinds/types.js';
import type { ResourceService } from './resources.js';

export interface InformerHandlers {
  onAdd?(obj: ResourceObject): void;
  onUpdate?(oldObj: ResourceObject, obj: ResourceObject): void;
  onDelete?(obj: ResourceObject): void;
}

/** cacheKey is how controllers name objects: NAMESPACE/NAME (or NAME for cluster-scoped kinds). */
export function cacheKey(obj: ResourceObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

/**
 * Informer keeps an in-memory copy of every object of one kind, fed by a list and then a watch from
 * the list's revision. If the watch ends (compaction, store hiccup) it lists again and diffs, so its
 * handlers see every change exactly as a level-based controller needs.
 */
export class Informer {
  private readonly cache = new Map<string, ResourceObject>();
  private readonly handlers: InformerHandlers[] = [];
  private watcher?: Watcher;
  private stopped = false;
  private synced = false;
  private restartTimer?: NodeJS.Timeout;

  constructor(
    private readonly resources: ResourceService,
    readonly def: KindDefinition,
    private readonly logger: Logger,
  ) {}

  addHandlers(h: InformerHandlers): void {
    this.handlers.push(h);
  }

  get(key: string): ResourceObject | undefined {
    return this.cache.get(key);
  }

  list(): ResourceObject[] {
    return [...this.cache.values()];
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  async start(): Promise<void> {
    await this.listAndWatch();
  }

  stop(): void {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.watcher?.close();
  }

  private async listAndWatch(): Promise<void> {
    if (this.stopped) return;
    const listed = await this.resources.list(this.def, undefined);
    const seen = new Set<string>();
    for (const obj of listed.items) {
      const key = cacheKey(obj);
      seen.add(key);
      this.apply(key, obj);
    }
    for (const [key, old] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        for (const h of this.handlers) h.onDelete?.(old);
      }
    }
    this.synced = true;
    this.watcher = await this.resources.watch(
      this.def,
      undefined,
      { resourceVersion: listed.resourceVersion },
      (ev) => {
        const key = cacheKey(ev.object);
        if (ev.type === 'DELETED') {
          const old = this.cache.get(key);
          this.cache.delete(key);
          for (const h of this.handlers) h.onDelete?.(old ?? ev.object);
        } else this.apply(key, ev.object);
      },
      (err) => {
        if (this.stopped) return;
        this.logger.warn({ kind: this.def.kind, err: err?.message }, 'watch ended; listing again');
        this.relist(500);
      },
    );
  }

  /**
   * relist lists and watches again after `delayMs`; while the store stays unreachable (an etcd outage
   * longer than a watch resumes for) it keeps trying, backing off to 5 s, so the cache catches up
   * when the store returns instead of going stale for good.
   */
  private relist(delayMs: number): void {
    if (this.stopped) return;
    this.restartTimer = setTimeout(() => {
      this.listAndWatch().catch((e: unknown) => {
        this.logger.warn({ kind: this.def.kind, err: (e as Error)?.message }, 'informer relist failed; trying again');
        this.relist(Math.min(delayMs * 2, 5_000));
      });
    }, delayMs);
    this.restartTimer.unref();
  }

  private apply(key: string, obj: ResourceObject): void {
    const old = this.cache.get(key);
    this.cache.set(key, obj);
    if (!old) for (const h of this.handlers) h.onAdd?.(obj);
    else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) for (const h of this.handlers) h.onUpdate?.(old, obj);
  }
}
