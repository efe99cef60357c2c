import type { ResourceObject } from './kinds/types.js';

/** AdmissionRequest is what every admission hook sees for a write (Kubernetes AdmissionReview request fields). */
export interface AdmissionRequest {
  operation: 'CREATE' | 'UPDATE' | 'DELETE';
  kind: string;
  namespace?: string;
  name: string;
  object?: ResourceObject;
  oldObject?: ResourceObject;
  dryRun: boolean;
  userInfo: { username: string; groups: string[] };
}

export interface AdmissionResponse {
  allowed: boolean;
  /** Why a request was denied, one entry per violation. */
  messages?: string[];
  /** Shown to the client as `Warning` headers whether or not the request is allowed. */
  warnings?: string[];
}

/**
 * AdmissionHook is one step of admission (policy constraints, Pod Security, reference checks). A
 * denial answers 403; a hook that finds the object invalid for this server (a field the operator's
 * grants refuse) throws an ApiError such as `invalid(...)` (422) instead, which the request gets as is.
 */
export interface AdmissionHook {
  readonly name: string;
  admit(req: AdmissionRequest): Promise<AdmissionResponse> | AdmissionResponse;
}
