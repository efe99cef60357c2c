import type { Condition } from '../../api/kinds/conditions.js';
import type { ResourceObject } from '../../api/kinds/types.js';
import { deepEqual, isJsonObject } from '../../api/patch/json-value.js';

/** Kinds whose controllers write a Ready condition: until they have, such an object is not yet healthy. */
const READY_KINDS = new Set(['Function', 'Route', 'Policy', 'PolicyBundle', 'Sync', 'GitRepository', 'Rollout']);

/**
 * healthOf tells whether an applied object is healthy: Ready=True for the generation it is at (the
 * condition's or the status' observedGeneration, where present). Objects of kinds that never get a
 * Ready condition are healthy once stored. A Rollout is healthy unless Degraded.
 */
export function healthOf(obj: ResourceObject): { healthy: boolean; message: string } {
  const conds = (obj.status?.conditions as Condition[] | undefined) ?? [];
  const ready = conds.find((c) => c.type === 'Ready');
  const name = `${obj.kind} ${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata.name}`;
  if (!ready) return READY_KINDS.has(obj.kind) ? { healthy: false, message: `${name} has no Ready condition yet` } : { healthy: true, message: '' };
  const observed = ready.observedGeneration ?? obj.status?.observedGeneration;
  if (observed !== undefined && observed !== obj.metadata.generation) return { healthy: false, message: `${name} is not yet observed at generation ${obj.metadata.generation}` };
  // A Rollout shifting traffic or paused for a person is doing its job, which can outlast any
  // timeout; only one that gave up (Degraded: all traffic back on stable) fails the revision.
  if (obj.kind === 'Rollout' && (ready.reason === 'Progressing' || ready.reason === 'Paused')) return { healthy: true, message: '' };
  if (ready.status !== 'True') return { healthy: false, message: `${name} is not Ready (${ready.reason}: ${ready.message})` };
  return { healthy: true, message: '' };
}

const IGNORED_META = new Set(['managedFields', 'resourceVersion', 'generation', 'uid', 'creationTimestamp']);

/**
 * changedFields lists the paths (`spec.env.FOO`, `metadata.labels.team`) where two versions of an
 * object differ, status and server bookkeeping aside; at most `max` of them.
 */
export function changedFields(before: ResourceObject | undefined, after: ResourceObject, max = 20): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string): void => {
    if (out.length >= max || deepEqual(a, b)) return;
    if (isJsonObject(a) && isJsonObject(b)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (path === 'metadata' && IGNORED_META.has(k)) continue;
        walk(a[k], b[k], path ? `${path}.${k}` : k);
      }
      return;
    }
    if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
      a.forEach((x, i) => walk(x, b[i], `${path}[${i}]`));
      return;
    }
    out.push(path);
  };
  const strip = (o: ResourceObject | undefined) => (o ? { ...o, status: undefined } : {});
  walk(strip(before), strip(after), '');
  return out;
}
