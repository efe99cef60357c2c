import { ReviewError } from '../errors.js';

import { type AdmissionRequestJSON, gvkOf, type K8sObject, splitApiVersion, type UserInfo } from './types.js';

/** ReviewOptions add what an offline object lacks: the operation, the user and an old object. */
export interface ReviewOptions {
  operation?: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  userInfo?: UserInfo;
  oldObject?: K8sObject;
  dryRun?: boolean;
  uid?: string;
}

/**
 * reviewFromObject builds `input.review` for a bare object exactly as Gatekeeper does for audit and
 * gator (an AdmissionRequest with kind, name, namespace and object; uid and operation empty,
 * userInfo `{}`), optionally filled with an operation, user and old object.
 */
export function reviewFromObject(obj: K8sObject, opts: ReviewOptions = {}): AdmissionRequestJSON {
  if (!obj || typeof obj !== 'object') throw new ReviewError('the object to review must be a Kubernetes object');
  if (!obj.kind) throw new ReviewError(`object ${String(obj.metadata?.name ?? '')} has no kind`);
  if (!splitApiVersion(obj.apiVersion).version) throw new ReviewError(`object ${obj.kind}/${String(obj.metadata?.name ?? '')} has no apiVersion`);
  const review: AdmissionRequestJSON = {
    uid: opts.uid ?? '',
    kind: gvkOf(obj),
    resource: { group: '', version: '', resource: '' },
    operation: opts.operation ?? '',
    userInfo: opts.userInfo ?? {},
    object: obj,
  };
  if (obj.metadata?.name) review.name = obj.metadata.name;
  if (obj.metadata?.namespace) review.namespace = obj.metadata.namespace;
  if (opts.oldObject) review.oldObject = opts.oldObject;
  if (opts.dryRun) review.dryRun = true;
  return review;
}

/**
 * reviewFromRequest takes an AdmissionRequest as kube-apiserver sends it. Fields Go always
 * serialises but a hand-written review (a gator case) may omit get their zero values, as they
 * would after Gatekeeper decodes the request; and, as Gatekeeper does, a DELETE (which carries only
 * oldObject) is reviewed with `object` set to the old object.
 */
export function reviewFromRequest(req: unknown): AdmissionRequestJSON {
  if (!req || typeof req !== 'object' || Array.isArray(req)) throw new ReviewError('the AdmissionReview has no "request" object', 'review_no_request');
  let r = req as AdmissionRequestJSON;
  if (!r.object && !r.oldObject) throw new ReviewError('the AdmissionRequest holds neither "object" nor "oldObject" to review', 'review_no_object');
  if (r.kind !== undefined && (typeof r.kind !== 'object' || r.kind === null)) throw new ReviewError('the AdmissionRequest "kind" must be an object {group, version, kind}');
  if (r.uid === undefined || r.kind === undefined || r.resource === undefined || r.operation === undefined || r.userInfo === undefined)
    r = { uid: '', kind: { group: '', version: '', kind: '' }, resource: { group: '', version: '', resource: '' }, operation: '', userInfo: {}, ...(r as Partial<AdmissionRequestJSON>) };
  if (r.operation === 'DELETE' && !r.object && r.oldObject) return { ...r, object: r.oldObject };
  return r;
}
