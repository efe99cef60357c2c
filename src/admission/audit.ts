import type { GatekeeperClient } from './gatekeeper/client.js';
import { reviewFromObject } from './gatekeeper/review.js';
import { isNamespaceObject, type K8sObject,splitApiVersion } from './gatekeeper/types.js';

/** Gatekeeper's default --constraint-violations-limit: how many violations a constraint's status lists. */
export const DEFAULT_VIOLATIONS_LIMIT = 20;

/** AuditViolation is one entry of a constraint's `status.violations`, in Gatekeeper's shape. */
export interface AuditViolation {
  enforcementAction: string;
  group: string;
  version: string;
  kind: string;
  name: string;
  namespace?: string;
  message: string;
}

/** ConstraintAudit is one constraint's audit result: what goes into its status. */
export interface ConstraintAudit {
  kind: string;
  name: string;
  totalViolations: number;
  violations: AuditViolation[];
}

/**
 * auditObjects reviews every object against every constraint, as Gatekeeper's audit does (each
 * object as a bare review, no operation), and counts violations per constraint; each constraint
 * keeps at most `limit` of them, the total is exact.
 */
export function auditObjects(client: GatekeeperClient, objects: Iterable<K8sObject>, limit = DEFAULT_VIOLATIONS_LIMIT): ConstraintAudit[] {
  const results = new Map<string, ConstraintAudit>();
  for (const c of client.constraints()) results.set(`${c.kind}/${c.name}`, { kind: c.kind, name: c.name, totalViolations: 0, violations: [] });
  const all = [...objects];
  const namespaces = new Map<string, K8sObject>();
  for (const o of all) if (isNamespaceObject(o) && o.metadata?.name) namespaces.set(o.metadata.name, o);
  for (const obj of all) {
    let review;
    try {
      review = reviewFromObject(obj);
    } catch {
      continue;
    }
    const ns = obj.metadata?.namespace;
    const { violations, errors } = client.review(review, { namespaceObject: ns ? (namespaces.get(ns) ?? client.inventory.namespace(ns)) : undefined });
    const add = (kind: string, name: string, enforcementAction: string, message: string) => {
      const r = results.get(`${kind}/${name}`);
      if (!r) return;
      r.totalViolations++;
      if (r.violations.length < limit) {
        const { group, version } = splitApiVersion(obj.apiVersion);
        r.violations.push({ enforcementAction, group, version, kind: String(obj.kind), name: String(obj.metadata?.name ?? ''), ...(ns ? { namespace: ns } : {}), message });
      }
    };
    for (const v of violations) add(v.kind, v.name, v.enforcementAction, v.msg);
    for (const e of errors) add(e.kind, e.name, e.enforcementAction, `could not evaluate: ${e.message}`);
  }
  return [...results.values()];
}
