import type { GatekeeperClient, ReviewContext } from './gatekeeper/client.js';
import type { AdmissionRequestJSON } from './gatekeeper/types.js';
import { evaluatePod, formatViolations, type LevelVersion, type NamespacePolicy,podViewOf } from './pss/evaluate.js';

/** Finding is one reason an object is refused: which policy and its message. */
export interface Finding {
  policy: string;
  message: string;
}

/** Decision is the verdict on one review: denials refuse it, warnings are shown either way. */
export interface Decision {
  allowed: boolean;
  denials: Finding[];
  warnings: string[];
  /** dryrun and audit-mode findings, recorded but neither refusing nor warning */
  audited: Finding[];
}

/** PodSecurityInput says which Pod Security levels apply: fixed (offline `--pss`), or per namespace labels. */
export interface PodSecurityInput {
  fixed?: LevelVersion;
  namespace?: NamespacePolicy;
}

/**
 * decide runs Gatekeeper constraints and Pod Security on one review and folds the results into one
 * verdict: `deny` constraints and Pod Security `enforce` refuse, `warn` constraints and Pod
 * Security `warn` become warnings, `dryrun` and `audit` are only recorded. A constraint that fails to
 * evaluate refuses the request when it is a `deny` constraint (fail closed, as Gatekeeper's webhook).
 */
export function decide(client: GatekeeperClient, review: AdmissionRequestJSON, ctx: ReviewContext = {}, pss: PodSecurityInput = {}): Decision {
  const d: Decision = { allowed: true, denials: [], warnings: [], audited: [] };
  const res = client.review(review, ctx);
  for (const v of res.violations) {
    const f = { policy: `${v.kind}/${v.name}`, message: `[${v.name}] ${v.msg}` };
    if (v.enforcementAction === 'deny') d.denials.push(f);
    else if (v.enforcementAction === 'warn') d.warnings.push(f.message);
    else d.audited.push(f);
  }
  for (const e of res.errors) {
    const f = { policy: `${e.kind}/${e.name}`, message: `[${e.name}] could not evaluate: ${e.message}` };
    if (e.enforcementAction === 'deny') d.denials.push(f);
    else if (e.enforcementAction === 'warn') d.warnings.push(f.message);
    else d.audited.push(f);
  }
  const levels = pss.fixed ?? pss.namespace?.enforce ?? pss.namespace?.warn ?? pss.namespace?.audit;
  if (review.operation !== 'DELETE' && review.object) {
    // No level applies in most namespaces of a cluster that syncs no Pod Security labels: skip the pod view then.
    const pod = levels ? podViewOf(review.object) : undefined;
    if (pod) {
      const run = (lv: LevelVersion | undefined, verb: string) => {
        if (!lv) return undefined;
        const r = evaluatePod(pod, lv);
        return r.length ? { policy: `pod-security/${lv.level}`, message: formatViolations(r, lv, verb) } : undefined;
      };
      const enforce = run(pss.fixed ?? pss.namespace?.enforce, 'violates');
      if (enforce) d.denials.push(enforce);
      const warn = run(pss.namespace?.warn, 'would violate');
      if (warn) d.warnings.push(warn.message);
      const audit = run(pss.namespace?.audit, 'would violate');
      if (audit) d.audited.push(audit);
    }
    for (const e of pss.namespace?.errors ?? []) d.warnings.push(`pod-security: ${e}`);
  }
  d.allowed = d.denials.length === 0;
  return d;
}
