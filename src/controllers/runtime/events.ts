import { createHash } from 'node:crypto';

import type { Logger } from 'pino';

import { ApiError } from '../../api/errors.js';
import type { ResourceObject } from '../../api/kinds/types.js';
import type { ResourceService } from '../../api/resources.js';

export type EventType = 'Normal' | 'Warning';

/**
 * EventRecorder writes Kubernetes-style Event objects about other objects. The same (object, reason,
 * message) within the object's life is one Event whose count grows, so a failing loop does not flood
 * the store.
 */
export class EventRecorder {
  constructor(
    private readonly resources: ResourceService,
    private readonly component: string,
    private readonly logger: Logger,
  ) {}

  async record(obj: ResourceObject, type: EventType, reason: string, message: string): Promise<void> {
    const def = this.resources.kind('Event');
    const ns = obj.metadata.namespace ?? 'default';
    const digest = createHash('sha256').update(`${obj.kind}/${obj.metadata.uid}/${reason}/${message}`).digest('hex').slice(0, 12);
    const name = `${obj.metadata.name}.${digest}`;
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    try {
      const existing = await this.resources.tryGet(def, ns, name);
      if (existing) {
        await this.resources.update(def, ns, name, { ...existing, count: Number(existing.count ?? 1) + 1, lastTimestamp: now });
        return;
      }
      await this.resources.create(def, ns, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace: ns },
        involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, namespace: ns, uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion },
        reason,
        message,
        type,
        source: { component: this.component },
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
      });
    } catch (err) {
      // Events are best effort: losing one must never fail a reconcile.
      if (!(err instanceof ApiError && err.reason === 'Conflict')) this.logger.warn({ err: (err as Error).message, reason }, 'could not record event');
    }
  }
}
