import type { ResourceObject } from './types.js';

/** Condition is a Kubernetes status condition. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** readyColumn renders the Ready condition for printers: True, False or Unknown. */
export function readyOf(obj: ResourceObject): string {
  const c = (obj.status?.conditions as Condition[] | undefined)?.find((x) => x.type === 'Ready');
  return c ? c.status : 'Unknown';
}

/** setCondition replaces the condition of the same type, keeping lastTransitionTime when status is unchanged. */
export function setCondition(conditions: Condition[] | undefined, next: Omit<Condition, 'lastTransitionTime'>, now = new Date()): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const prev = i >= 0 ? list[i] : undefined;
  const cond: Condition = { ...next, lastTransitionTime: prev && prev.status === next.status ? prev.lastTransitionTime : now.toISOString() };
  if (i >= 0) list[i] = cond;
  else list.push(cond);
  return list;
}
