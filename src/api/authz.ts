import type { Principal } from './authn.js';
import { subresourcesOf as discoverySubresources } from './discovery/documents.js';
import { ApiError } from './errors.js';
import { groupOf, type KindDefinition } from './kinds/types.js';

/**
 * Skiff's authorization rules, in one place so that the server's checks and the answers it gives to
 * `kubectl auth can-i` (SelfSubjectAccessReview, SelfSubjectRulesReview) cannot drift apart. There
 * is no RBAC: the controller token may do everything, the user token everything but write the status
 * subresource (controllers own `status`).
 */

/** ResourceAttributes are the parts of a resource request the rules look at (Kubernetes' names). */
export interface ResourceAttributes {
  verb: string;
  group?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

/** Decision is an authorization answer with a reason a person can read. */
export interface Decision {
  allowed: boolean;
  reason: string;
}

/** The verbs that only read; anything else (including `*`) writes. */
const READ_VERBS = new Set(['get', 'list', 'watch']);

const STATUS_DENIED = 'the status subresource is written by controllers only (present the controller token)';

/** authorizeResource decides whether `principal` may perform a resource request. */
export function authorizeResource(principal: Principal, attrs: ResourceAttributes): Decision {
  if (principal === 'controller') return { allowed: true, reason: 'the controller token may do everything' };
  const sub = attrs.subresource ?? '';
  if ((sub === 'status' || sub === '*') && !READ_VERBS.has(attrs.verb)) return { allowed: false, reason: STATUS_DENIED };
  return { allowed: true, reason: 'the user token may do everything but write the status subresource' };
}

/** authorizeNonResource decides a request for a path outside the resource layout (`/version`, `/blobs/...`). */
export function authorizeNonResource(principal: Principal): Decision {
  return { allowed: true, reason: `the ${principal} token may reach every non-resource path` };
}

/** verbOfMethod maps an HTTP method on one object to the Kubernetes verb the rules are written in. */
export function verbOfMethod(method: string): string {
  switch (method) {
    case 'GET':
    case 'HEAD':
      return 'get';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return 'delete';
    default:
      return method.toLowerCase();
  }
}

/** subresourcesOf names the subresources a kind serves, as discovery lists them. */
export function subresourcesOf(def: KindDefinition): string[] {
  return discoverySubresources(def).map((s) => s.name);
}

/** A rule in SubjectRulesReviewStatus's shape (RBAC's PolicyRule, split in resource and non-resource rules). */
export interface ResourceRule {
  verbs: string[];
  apiGroups: string[];
  resources: string[];
}

/** The self-review resources every authenticated principal may create. */
export const SELF_REVIEW_RULES: ResourceRule[] = [
  { verbs: ['create'], apiGroups: ['authorization.k8s.io'], resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'] },
  { verbs: ['create'], apiGroups: ['authentication.k8s.io'], resources: ['selfsubjectreviews'] },
];

/**
 * rulesFor lists what `principal` may do, as RBAC rules. RBAC cannot say "all but", and `*` in a
 * rule's resources covers subresources too, so the user's rules name each served resource: every
 * verb on it and its non-status subresources, `get` on its status.
 */
export function rulesFor(principal: Principal, kinds: KindDefinition[]): { resourceRules: ResourceRule[]; nonResourceRules: Array<{ verbs: string[]; nonResourceURLs: string[] }> } {
  const nonResourceRules = [{ verbs: ['*'], nonResourceURLs: ['*'] }];
  if (principal === 'controller') return { resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }], nonResourceRules };
  const byGroup = new Map<string, { all: string[]; read: string[] }>();
  for (const def of kinds) {
    const g = byGroup.get(groupOf(def)) ?? { all: [], read: [] };
    byGroup.set(groupOf(def), g);
    g.all.push(def.plural);
    for (const sub of subresourcesOf(def)) {
      const probe = authorizeResource(principal, { verb: 'update', subresource: sub });
      (probe.allowed ? g.all : g.read).push(`${def.plural}/${sub}`);
    }
  }
  const resourceRules: ResourceRule[] = [];
  for (const [group, { all, read }] of [...byGroup].sort(([a], [b]) => a.localeCompare(b))) {
    resourceRules.push({ verbs: ['*'], apiGroups: [group], resources: all.sort() });
    if (read.length) resourceRules.push({ verbs: [...READ_VERBS], apiGroups: [group], resources: read.sort() });
  }
  return { resourceRules: [...resourceRules, ...SELF_REVIEW_RULES], nonResourceRules };
}

/** userInfoOf names a principal as authentication.k8s.io's UserInfo (`kubectl auth whoami`). */
export function userInfoOf(principal: Principal): { username: string; groups: string[] } {
  return { username: principal === 'controller' ? 'skiff:controller' : 'skiff:user', groups: ['system:authenticated'] };
}

/**
 * refuseImpersonation turns away a request that asks to act as someone else (`kubectl --as`,
 * `--as-group`, `--as-uid`): Skiff has no identities beyond its two tokens to switch to, and running
 * the request as the token instead would hide from the client that its request did not do what it said.
 */
export function refuseImpersonation(headers: Record<string, string | string[] | undefined>): void {
  const asked = Object.keys(headers).filter((h) => h.toLowerCase().startsWith('impersonate-'));
  if (asked.length) throw new ApiError(403, 'Forbidden', `impersonation (${asked.sort().join(', ')}) is not supported: Skiff authenticates its bearer tokens only; send the request without --as / --as-group`);
}
