/** K8sObject is any Kubernetes-shaped object (apiVersion, kind, metadata, anything else). */
export interface K8sObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

/** EnforcementAction is what happens when a constraint is violated. */
export type EnforcementAction = 'deny' | 'dryrun' | 'warn';

/** GroupVersionKind as Kubernetes writes it in AdmissionRequest.kind. */
export interface GVK {
  group: string;
  version: string;
  kind: string;
}

/** UserInfo is authentication.k8s.io/v1 UserInfo. */
export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/**
 * AdmissionRequestJSON is admission.k8s.io/v1 AdmissionRequest as it is serialised (and so as
 * Gatekeeper templates see it under `input.review`).
 */
export interface AdmissionRequestJSON {
  uid: string;
  kind: GVK;
  resource: { group: string; version: string; resource: string };
  subResource?: string;
  requestKind?: GVK;
  requestResource?: { group: string; version: string; resource: string };
  requestSubResource?: string;
  name?: string;
  namespace?: string;
  operation: string;
  userInfo: UserInfo;
  object?: K8sObject | null;
  oldObject?: K8sObject | null;
  dryRun?: boolean;
  options?: unknown;
  [k: string]: unknown;
}

/** Violation is one result of one constraint for one review. */
export interface Violation {
  /** constraint kind (the template's CRD kind) */
  kind: string;
  /** constraint name */
  name: string;
  enforcementAction: EnforcementAction;
  msg: string;
  details?: unknown;
}

/** splitApiVersion reads `apps/v1` as { group: 'apps', version: 'v1' } and `v1` as the core group. */
export function splitApiVersion(apiVersion: string | undefined): { group: string; version: string } {
  const v = apiVersion ?? '';
  const i = v.indexOf('/');
  return i < 0 ? { group: '', version: v } : { group: v.slice(0, i), version: v.slice(i + 1) };
}

/** gvkOf is an object's group, version and kind. */
export function gvkOf(obj: K8sObject): GVK {
  return { ...splitApiVersion(obj.apiVersion), kind: String(obj.kind ?? '') };
}

/** isNamespaceObject: a Namespace (core/v1, or Skiff's own skiff.dev/v1), which namespaces/namespaceSelector match by itself. */
export function isNamespaceObject(obj: K8sObject): boolean {
  if (obj?.kind !== 'Namespace') return false;
  const g = splitApiVersion(obj.apiVersion).group;
  return g === '' || g === 'skiff.dev';
}
