import { ApiError, badRequest, invalid } from './errors.js';
import type { FieldError } from './kinds/types.js';

/** How a list's `resourceVersion` is matched (Kubernetes' `resourceVersionMatch`). */
export type ResourceVersionMatch = 'NotOlderThan' | 'Exact';

/** What selects a list: selectors, a page, and the revision to read. */
export interface ListOptions {
  labelSelector?: string;
  /** `metadata.name=x`, `involvedObject.name=y`, ... (the fields the kind supports; 400 otherwise). */
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  /** Unset or `0`: the latest state. A revision: at least that new (NotOlderThan) or exactly it (Exact). */
  resourceVersion?: string;
  resourceVersionMatch?: ResourceVersionMatch;
  /** How long to wait for a `resourceVersion` beyond the store's before the 504 (the server's setting, not a query parameter). */
  futureRevisionWaitMs?: number;
}

/** The list and watch parameters of a collection request, checked. */
export interface CollectionQuery extends ListOptions {
  watch: boolean;
  allowWatchBookmarks: boolean;
  sendInitialEvents?: boolean;
  /** Seconds after which the server ends a watch; undefined for none. */
  timeoutSeconds?: number;
}

/**
 * parseCollectionQuery reads a list or watch request's query string the way kube-apiserver does:
 * bad numbers are 400, combinations Kubernetes forbids are 422 `Invalid` on `ListOptions`.
 */
export function parseCollectionQuery(q: URLSearchParams): CollectionQuery {
  const bool = (name: string): boolean | undefined => {
    const v = q.get(name);
    if (v === null || v === '') return undefined;
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw badRequest(`${name} must be true or false, not "${v}"`);
  };
  const int = (name: string): number | undefined => {
    const v = q.get(name);
    if (v === null || v === '') return undefined;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw badRequest(`${name} must be a non-negative integer, not "${v}"`);
    return n;
  };
  const match = q.get('resourceVersionMatch') || undefined;
  if (match !== undefined && match !== 'NotOlderThan' && match !== 'Exact') throw badRequest(`resourceVersionMatch must be NotOlderThan or Exact, not "${match}"`);
  const rv = q.get('resourceVersion') || undefined;
  if (rv !== undefined && !/^\d+$/.test(rv)) throw badRequest(`resourceVersion "${rv}" is not a revision number; use a resourceVersion the server returned`);
  const out: CollectionQuery = {
    labelSelector: q.get('labelSelector') || undefined,
    fieldSelector: q.get('fieldSelector') || undefined,
    limit: int('limit') || undefined,
    continue: q.get('continue') || undefined,
    resourceVersion: rv,
    resourceVersionMatch: match as ResourceVersionMatch | undefined,
    watch: bool('watch') ?? false,
    allowWatchBookmarks: bool('allowWatchBookmarks') ?? false,
    sendInitialEvents: bool('sendInitialEvents'),
    timeoutSeconds: int('timeoutSeconds') || undefined,
  };
  const errs = checkCombination(out);
  if (errs.length) throw invalid('ListOptions.meta.k8s.io', '', errs);
  return out;
}

function checkCombination(o: CollectionQuery): FieldError[] {
  const errs: FieldError[] = [];
  const forbid = (field: string, message: string) => errs.push({ field, message: `Forbidden: ${message}`, reason: 'FieldValueForbidden' });
  if (o.watch && o.resourceVersionMatch && o.sendInitialEvents === undefined) forbid('resourceVersionMatch', 'a watch takes resourceVersionMatch only with sendInitialEvents');
  if (o.resourceVersionMatch && !o.resourceVersion && !(o.watch && o.sendInitialEvents !== undefined)) forbid('resourceVersionMatch', 'resourceVersionMatch needs a resourceVersion');
  if (o.resourceVersionMatch === 'Exact' && o.resourceVersion === '0') forbid('resourceVersionMatch', 'resourceVersionMatch "Exact" cannot be used with resourceVersion "0"');
  if (o.continue && o.resourceVersion && o.resourceVersion !== '0') forbid('resourceVersion', 'a continue token already carries the revision to read at; drop resourceVersion');
  if (o.continue && o.resourceVersionMatch) forbid('resourceVersionMatch', 'a continue token already carries the revision to read at; drop resourceVersionMatch');
  if (o.watch && o.resourceVersionMatch === 'Exact') forbid('resourceVersionMatch', 'a watch cannot use resourceVersionMatch "Exact"');
  if (o.sendInitialEvents !== undefined && !o.watch) forbid('sendInitialEvents', 'sendInitialEvents is for watches only');
  if (o.watch && o.sendInitialEvents !== undefined) {
    if (o.resourceVersionMatch !== 'NotOlderThan') forbid('resourceVersionMatch', 'sendInitialEvents needs resourceVersionMatch "NotOlderThan"');
    if (!o.allowWatchBookmarks) forbid('allowWatchBookmarks', 'sendInitialEvents needs allowWatchBookmarks=true (the end of the initial events is a bookmark)');
  }
  return errs;
}

/** What a continue token holds: the revision the first page was read at and the last key returned. */
export interface ContinueToken {
  /** The revision to read at; 0 reads the latest (a token handed back with an expired one). */
  rv: number;
  /** The last key returned, relative to the kind's key prefix. */
  start: string;
}

const TOKEN_VERSION = 'meta.k8s.io/v1';

/** encodeContinue makes an opaque token (base64url JSON, as Kubernetes' tokens are base64 JSON). */
export function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: TOKEN_VERSION, rv: t.rv, start: t.start })).toString('base64url');
}

/** decodeContinue reads a token back; anything this server did not make is 400. */
export function decodeContinue(token: string): ContinueToken {
  const fail = (why: string) => badRequest(`the continue token is not valid (${why}); start the list again without it`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw fail('not a token this server issued');
  }
  const t = parsed as { v?: unknown; rv?: unknown; start?: unknown };
  if (!t || typeof t !== 'object' || t.v !== TOKEN_VERSION) throw fail('not a token this server issued');
  if (typeof t.rv !== 'number' || !Number.isSafeInteger(t.rv) || t.rv < 0) throw fail('bad revision');
  if (typeof t.start !== 'string' || t.start === '' || t.start.includes('..')) throw fail('bad key');
  return { rv: t.rv, start: t.start };
}

/**
 * tooLargeResourceVersion is kube-apiserver's answer to a revision the server has not reached within
 * its wait: a Timeout (504) whose cause `ResourceVersionTooLarge` tells clients to retry (client-go's
 * reflector lists again) after `retryAfterSeconds`.
 */
export function tooLargeResourceVersion(requested: number, current: number): ApiError {
  return new ApiError(504, 'Timeout', `Timeout: Too large resource version: ${requested}, current: ${current}`, {
    causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
    retryAfterSeconds: 1,
  });
}
