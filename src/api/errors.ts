import { SkiffError } from '../util/errors.js';

import type { FieldError } from './kinds/types.js';

/** The Kubernetes `Status` object that every API error is returned as. */
export interface StatusObject {
  apiVersion: 'v1';
  kind: 'Status';
  status: 'Failure';
  message: string;
  reason: string;
  code: number;
  details?: { name?: string; kind?: string; causes?: Array<{ reason: string; message: string; field?: string }>; retryAfterSeconds?: number };
  /** List metadata: an expired continue token's answer carries a token that reads on from the latest revision. */
  metadata?: { continue?: string };
}

/**
 * ApiError is an error the API answers with a Status object. `reason` follows Kubernetes
 * (NotFound, AlreadyExists, Conflict, Invalid, BadRequest, Forbidden, Unauthorized, Gone,
 * RequestEntityTooLarge, MethodNotAllowed, ServiceUnavailable, InternalError).
 */
export class ApiError extends SkiffError {
  /** Admission warnings that go out as `Warning` headers with the error, as Kubernetes sends them with a 403. */
  warnings: string[] = [];
  /** Goes out as the Status's `metadata` (see StatusObject). */
  listMeta?: StatusObject['metadata'];

  constructor(
    readonly httpStatus: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusObject['details'],
  ) {
    super(`api_${reason.replace(/[A-Z]/g, (c, i) => (i ? '_' : '') + c.toLowerCase())}`, message);
  }

  toStatus(): StatusObject {
    return {
      apiVersion: 'v1',
      kind: 'Status',
      ...(this.listMeta ? { metadata: this.listMeta } : {}),
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      code: this.httpStatus,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

export const notFound = (kind: string, name: string) => new ApiError(404, 'NotFound', `${kind.toLowerCase()} "${name}" not found`, { kind, name });
export const alreadyExists = (kind: string, name: string) => new ApiError(409, 'AlreadyExists', `${kind.toLowerCase()} "${name}" already exists`, { kind, name });
/** conflict is kube's answer to a stale `resourceVersion`; `resource` is the qualified resource (`functions.skiff.dev`). */
export const conflict = (kind: string, name: string, resource = kind.toLowerCase()) =>
  new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { kind, name });
export const badRequest = (message: string) => new ApiError(400, 'BadRequest', message);
/** expired is kube-apiserver's 410 for a revision that has been compacted (reason `Expired`; clients list again). */
export const expired = (message: string) => new ApiError(410, 'Expired', message);

/** invalid builds a 422 naming every bad field at once. */
export function invalid(kind: string, name: string, errors: FieldError[]): ApiError {
  const list = errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  return new ApiError(422, 'Invalid', `${kind} "${name}" is invalid: ${list}`, {
    kind,
    name,
    causes: errors.map((e) => ({ reason: e.reason ?? 'FieldValueInvalid', message: e.message, field: e.field })),
  });
}
