import { decide, type Finding } from './decision.js';
import { readObjects } from './files.js';
import { listManifestFiles } from './files.js';
import { GatekeeperClient } from './gatekeeper/client.js';
import { reviewFromObject } from './gatekeeper/review.js';
import { isNamespaceObject, type K8sObject } from './gatekeeper/types.js';
import { loadPolicies } from './policies.js';
import { type LevelVersion,namespacePolicy } from './pss/evaluate.js';

/** CheckReport is one object's verdict in `skiff admission check` (its JSON output, plus warnings). */
export interface CheckReport {
  file: string;
  kind: string;
  name: string;
  allowed: boolean;
  violations: Finding[];
  warnings: string[];
}

/** CheckOptions: policy files (templates, constraints, inventory) and a fixed Pod Security level. */
export interface CheckOptions {
  policies?: string[];
  pss?: LevelVersion;
}

/**
 * checkFiles admits every object of the given files offline, as a CREATE. Namespaces among them join
 * the inventory first, so namespaceSelector and Pod Security namespace labels see them; without
 * `pss`, a namespace's `pod-security.kubernetes.io/*` labels choose the level as in Kubernetes.
 */
export function checkFiles(paths: string[], opts: CheckOptions = {}): CheckReport[] {
  const client = opts.policies?.length ? loadPolicies(opts.policies) : new GatekeeperClient();
  const items: Array<{ file: string; obj: K8sObject }> = [];
  for (const f of listManifestFiles(paths)) for (const obj of readObjects(f)) items.push({ file: f, obj });
  for (const { obj } of items) if (isNamespaceObject(obj)) client.addData(obj);
  return items.map(({ file, obj }) => {
    const review = reviewFromObject(obj, { operation: 'CREATE' });
    const ns = obj.metadata?.namespace;
    const nsObj = ns ? client.inventory.namespace(ns) : undefined;
    const d = decide(client, review, { namespaceObject: nsObj }, opts.pss ? { fixed: opts.pss } : { namespace: namespacePolicy(nsObj?.metadata?.labels) });
    return { file, kind: String(obj.kind ?? ''), name: String(obj.metadata?.name ?? ''), allowed: d.allowed, violations: d.denials, warnings: d.warnings };
  });
}
