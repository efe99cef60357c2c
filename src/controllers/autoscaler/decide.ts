import type { ScalePolicy } from '../../autoscaling/policy.js';

/** Why a Function has the replica count it has; `skiff describe function` shows it. */
export type ScaleReason = 'reactive' | 'panic' | 'predicted' | 'cron' | 'external' | 'minScale' | 'maxScale' | 'fixed' | 'hpa' | 'activation' | 'initial';

/** One source's opinion of how many replicas a Function needs. */
export interface Candidate {
  reason: ScaleReason;
  desired: number;
  /** What the source saw, for the Event and status (e.g. `stable 4.2 concurrency, panic 9.0`). */
  detail?: string;
}

/** Decision is what the autoscaler recommends for a Function this tick, before rate limits and the zero grace. */
export interface Decision {
  desired: number;
  reason: ScaleReason;
  detail?: string;
}

// On a tie the earlier reason is named: what traffic asks for explains a count better than a floor,
// except initialScale, which explains the count until a whole stable window of traffic has been seen.
const ORDER: ScaleReason[] = ['hpa', 'fixed', 'activation', 'initial', 'panic', 'reactive', 'predicted', 'cron', 'external', 'minScale'];

/**
 * decide combines the sources: the most any of them asks for, at least minScale, at most maxScale.
 * Every source is a floor on its own (a cron window keeps its replicas however quiet the traffic is;
 * a forecast keeps a replica warm however idle the last minute was), so the highest one wins.
 */
export function decide(policy: ScalePolicy, candidates: Candidate[]): Decision {
  let best: Candidate = { reason: 'minScale', desired: policy.minScale };
  for (const c of candidates) {
    if (c.desired > best.desired || (c.desired === best.desired && ORDER.indexOf(c.reason) < ORDER.indexOf(best.reason))) best = c;
  }
  if (policy.maxScale > 0 && best.desired > policy.maxScale) return { desired: policy.maxScale, reason: 'maxScale', detail: `${best.reason} asked for ${best.desired}${best.detail ? ` (${best.detail})` : ''}` };
  return { desired: best.desired, reason: best.reason, detail: best.detail };
}
