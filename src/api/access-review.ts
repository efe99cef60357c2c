import type { Principal } from './authn.js';
import { authorizeNonResource, authorizeResource, type Decision, rulesFor, userInfoOf } from './authz.js';
import { ApiError, badRequest, invalid } from './errors.js';
import type { KindDefinition } from './kinds/types.js';
import { isProtobuf, msg, readMessage, str, unwrapEnvelope } from './protobuf.js';
import { bodyMediaType, decodeBody } from './request-body.js';

/**
 * The self-review APIs clients use to ask the server about their own access and identity:
 * `kubectl auth can-i` (SelfSubjectAccessReview, and SelfSubjectRulesReview for `--list`) and
 * `kubectl auth whoami` (SelfSubjectReview). They are answered from the token rules in `authz.ts`;
 * nothing is stored.
 */

/** One review resource, as discovery describes it. */
export interface ReviewResource {
  group: string;
  version: string;
  /** The plural in the URL. */
  name: string;
  singularName: string;
  kind: string;
}

/** Every review resource Skiff serves: discovery lists these beside the stored kinds (verb `create` only, cluster-scoped). */
export const REVIEW_RESOURCES: readonly ReviewResource[] = [
  { group: 'authorization.k8s.io', version: 'v1', name: 'selfsubjectaccessreviews', singularName: 'selfsubjectaccessreview', kind: 'SelfSubjectAccessReview' },
  { group: 'authorization.k8s.io', version: 'v1', name: 'selfsubjectrulesreviews', singularName: 'selfsubjectrulesreview', kind: 'SelfSubjectRulesReview' },
  { group: 'authentication.k8s.io', version: 'v1', name: 'selfsubjectreviews', singularName: 'selfsubjectreview', kind: 'SelfSubjectReview' },
];

/** reviewGroupVersions lists the group/versions the review resources live in. */
export function reviewGroupVersions(): Array<{ group: string; version: string }> {
  const seen = new Map<string, { group: string; version: string }>();
  for (const r of REVIEW_RESOURCES) seen.set(`${r.group}/${r.version}`, { group: r.group, version: r.version });
  return [...seen.values()];
}

/** reviewApiGroups are the review groups as `/apis` lists them (APIGroup entries). */
export function reviewApiGroups() {
  return reviewGroupVersions().map(({ group, version }) => {
    const gv = { groupVersion: `${group}/${version}`, version };
    return { name: group, versions: [gv], preferredVersion: gv };
  });
}

/** reviewAggregated are the review groups as aggregated discovery (APIGroupDiscovery items) lists them. */
export function reviewAggregated() {
  return reviewGroupVersions().map(({ group, version }) => ({
    metadata: { name: group },
    versions: [
      {
        version,
        resources: REVIEW_RESOURCES.filter((r) => r.group === group && r.version === version).map((r) => ({ resource: r.name, responseKind: { group, version, kind: r.kind }, scope: 'Cluster', singularResource: r.singularName, verbs: ['create'] })),
        freshness: 'Current',
      },
    ],
  }));
}

/** reviewDiscovery is the APIResourceList of a review group/version (undefined for any other group). */
export function reviewDiscovery(group: string, version: string) {
  const resources = REVIEW_RESOURCES.filter((r) => r.group === group && r.version === version);
  if (!resources.length) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: `${group}/${version}`,
    resources: resources.map((r) => ({ name: r.name, singularName: r.singularName, namespaced: false, kind: r.kind, verbs: ['create'] })),
  };
}

/** reviewAt finds the review resource a path names (`/apis/GROUP/VERSION/PLURAL`). */
export function reviewAt(segments: readonly string[]): ReviewResource | undefined {
  if (segments.length !== 4 || segments[0] !== 'apis') return undefined;
  return REVIEW_RESOURCES.find((r) => r.group === segments[1] && r.version === segments[2] && r.name === segments[3]);
}

/** The parts of a request the review answers need. */
export interface ReviewRequest {
  method: string;
  contentType: string | undefined;
  body: Buffer;
}

/**
 * answerReview answers a POST to a review resource for `principal`: the review as sent, with its
 * `status` filled in. The body may be JSON, YAML or Kubernetes protobuf (what kubectl sends).
 */
export function answerReview(review: ReviewResource, principal: Principal, kinds: KindDefinition[], req: ReviewRequest): Record<string, unknown> {
  if (req.method !== 'POST') throw new ApiError(405, 'MethodNotAllowed', `${req.method} is not supported on ${review.name}: POST a ${review.kind} to ask`);
  const spec = decodeReview(review, req);
  const head = { kind: review.kind, apiVersion: `${review.group}/${review.version}`, metadata: { creationTimestamp: null } };
  switch (review.kind) {
    case 'SelfSubjectAccessReview': {
      const { resourceAttributes: ra, nonResourceAttributes: nra } = spec as AccessReviewSpec;
      if (!ra === !nra) throw invalid(review.kind, '', [{ field: 'spec.resourceAttributes', message: 'exactly one of nonResourceAttributes or resourceAttributes must be specified' }]);
      const decision: Decision = ra ? authorizeResource(principal, { ...ra, verb: ra.verb ?? '' }) : authorizeNonResource(principal);
      return { ...head, spec, status: { allowed: decision.allowed, ...(decision.allowed ? {} : { denied: true }), reason: decision.reason } };
    }
    case 'SelfSubjectRulesReview':
      return { ...head, spec, status: { ...rulesFor(principal, kinds), incomplete: false } };
    default:
      return { ...head, status: { userInfo: userInfoOf(principal) } };
  }
}

interface AccessReviewSpec {
  resourceAttributes?: { namespace?: string; verb?: string; group?: string; version?: string; resource?: string; subresource?: string; name?: string };
  nonResourceAttributes?: { path?: string; verb?: string };
}

/** decodeReview reads the review's `spec` from JSON, YAML or protobuf, checking the kind it declares. */
function decodeReview(review: ReviewResource, req: ReviewRequest): Record<string, unknown> {
  const apiVersion = `${review.group}/${review.version}`;
  if (isProtobuf(req.contentType)) {
    const env = unwrapEnvelope(req.body);
    if ((env.kind && env.kind !== review.kind) || (env.apiVersion && env.apiVersion !== apiVersion)) throw mismatch(review, env.apiVersion, env.kind);
    return protobufSpec(review, readMessage(env.raw));
  }
  const obj = req.body.length ? decodeBody(req.body, bodyMediaType(req.contentType)) : {};
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw badRequest(`the body must be a ${review.kind} object`);
  const o = obj as Record<string, unknown>;
  if ((o.kind !== undefined && o.kind !== review.kind) || (o.apiVersion !== undefined && o.apiVersion !== apiVersion)) throw mismatch(review, String(o.apiVersion ?? ''), String(o.kind ?? ''));
  const spec = o.spec ?? {};
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw invalid(review.kind, '', [{ field: 'spec', message: 'must be an object' }]);
  return spec as Record<string, unknown>;
}

/** protobufSpec reads the spec (field 2) of a review message, with Kubernetes' field numbers. */
function protobufSpec(review: ReviewResource, raw: ReturnType<typeof readMessage>): Record<string, unknown> {
  const spec = msg(raw, 2);
  if (!spec) return {};
  const strings = (m: ReturnType<typeof readMessage>, names: string[]) => Object.fromEntries(names.map((n, i) => [n, str(m, i + 1)]).filter(([, v]) => v !== ''));
  if (review.kind === 'SelfSubjectRulesReview') return strings(spec, ['namespace']);
  const out: AccessReviewSpec = {};
  const ra = msg(spec, 1);
  const nra = msg(spec, 2);
  if (ra) out.resourceAttributes = strings(ra, ['namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name']);
  if (nra) out.nonResourceAttributes = strings(nra, ['path', 'verb']);
  return out as Record<string, unknown>;
}

function mismatch(review: ReviewResource, apiVersion: string, kind: string): ApiError {
  return badRequest(`this endpoint takes ${review.group}/${review.version} ${review.kind}, not ${apiVersion || '(no apiVersion)'} ${kind || '(no kind)'}`);
}
