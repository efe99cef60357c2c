import { ApiError } from '../../api/errors.js';
import type { KindDefinition, ResourceObject } from '../../api/kinds/types.js';
import type { ResourceService } from '../../api/resources.js';

type Status = Record<string, unknown>;

/**
 * writeStatus writes `next(current)` as the object's status, naming the resourceVersion it was computed
 * from; a conflicting write is computed again from a fresh read (up to five times), a status that would
 * not change is not written, and an object deleted meanwhile is left alone. `next` gets the newest
 * stored object and returns the whole status.
 */
export async function writeStatus(resources: ResourceService, def: KindDefinition, obj: ResourceObject, next: (current: ResourceObject, old: Status) => Status): Promise<void> {
  const ns = obj.metadata.namespace;
  let current = obj;
  for (let attempt = 0; attempt < 5; attempt++) {
    const old = (current.status ?? {}) as Status;
    const status = next(current, old);
    if (JSON.stringify(status) === JSON.stringify(old)) return;
    try {
      await resources.updateStatus(def, ns, current.metadata.name, { metadata: { resourceVersion: current.metadata.resourceVersion }, status });
      return;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.reason === 'NotFound') return;
      if (err.reason !== 'Conflict') throw err;
      current = await resources.get(def, ns, current.metadata.name);
    }
  }
}
