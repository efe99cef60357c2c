import { createHash } from 'node:crypto';
import type http from 'node:http';

import { acceptedRanges, isJsonRange } from '../accept.js';
import { ApiError } from '../errors.js';
import type { KindRegistry } from '../kinds/registry.js';

import { groupDocument, groupVersionPath, swaggerDocument } from './documents.js';

/** The paths this endpoint answers. */
export function isOpenApiPath(path: string): boolean {
  return path === '/openapi/v2' || path === '/openapi/v3' || path.startsWith('/openapi/v3/');
}

const ONE_YEAR_MS = 365 * 24 * 3600 * 1000;

/**
 * OpenApiEndpoint serves `/openapi/v2` and `/openapi/v3` (the index and one document per
 * group/version) from the kinds registered at the moment of the request, so a constraint kind a
 * ConstraintTemplate creates appears at once. Caching follows kube-apiserver: every document has an
 * ETag (the SHA-512 of its JSON, upper-case hex) and honours If-None-Match; the index links each
 * group document with `?hash=ETAG`, a request with the current hash may be cached for a year
 * (`Cache-Control: public, immutable`), one with an old hash is redirected (301) to the current one.
 * Only JSON is served: a client that accepts nothing but protobuf gets 406 Not Acceptable.
 */
export class OpenApiEndpoint {
  constructor(
    private readonly kinds: KindRegistry,
    private readonly serverVersion: string,
  ) {}

  handle(req: http.IncomingMessage, res: http.ServerResponse, path: string, query: URLSearchParams): void {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported on ${path}`);
    if (path === '/openapi/v2') return this.send(req, res, swaggerDocument(this.kinds.all(), this.serverVersion), 'no-cache, private');
    if (path === '/openapi/v3') return this.send(req, res, this.index(), 'no-cache, private');
    const gv = path.slice('/openapi/v3/'.length);
    const found = this.groupVersions().find((x) => x.path === gv);
    if (!found) throw new ApiError(404, 'NotFound', `no OpenAPI document at ${path}; /openapi/v3 lists them`);
    res.setHeader('vary', 'Accept');
    if (!acceptsJson(req.headers.accept)) return this.notAcceptable(res);
    const body = JSON.stringify(groupDocument(this.kinds.all(), found.group, found.version, this.serverVersion));
    const etag = etagOf(body);
    const hash = query.get('hash');
    if (hash) {
      if (hash !== etag) {
        res.writeHead(301, { location: `/openapi/v3/${gv}?hash=${etag}`, 'content-length': 0 });
        res.end();
        return;
      }
      res.setHeader('cache-control', 'public, immutable');
      res.setHeader('expires', new Date(Date.now() + ONE_YEAR_MS).toUTCString());
      return this.write(req, res, body, etag);
    }
    res.setHeader('cache-control', 'no-cache, private');
    return this.write(req, res, body, etag);
  }

  /** `/openapi/v3`: every group/version with the URL of its document, the document's hash included. */
  private index(): object {
    const paths: Record<string, { serverRelativeURL: string }> = {};
    for (const { path, group, version } of this.groupVersions()) {
      const etag = etagOf(JSON.stringify(groupDocument(this.kinds.all(), group, version, this.serverVersion)));
      paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${etag}` };
    }
    return { paths };
  }

  private groupVersions(): Array<{ path: string; group: string; version: string }> {
    return this.kinds
      .groupVersions()
      .map(({ group, version }) => ({ path: groupVersionPath(group, version), group, version }))
      .sort((a, b) => a.path.localeCompare(b.path));
  }

  private send(req: http.IncomingMessage, res: http.ServerResponse, doc: object, cacheControl: string): void {
    res.setHeader('vary', 'Accept');
    if (!acceptsJson(req.headers.accept)) return this.notAcceptable(res);
    res.setHeader('cache-control', cacheControl);
    const body = JSON.stringify(doc);
    this.write(req, res, body, etagOf(body));
  }

  private write(req: http.IncomingMessage, res: http.ServerResponse, body: string, etag: string): void {
    const quoted = `"${etag}"`;
    res.setHeader('etag', quoted);
    const inm = req.headers['if-none-match'];
    if (inm !== undefined && inm.split(',').some((t) => t.trim() === quoted || t.trim() === '*')) {
      res.writeHead(304);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private notAcceptable(res: http.ServerResponse): void {
    const body = JSON.stringify(new ApiError(406, 'NotAcceptable', 'only application/json is served for OpenAPI documents').toStatus());
    res.writeHead(406, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}

/** etagOf is kube-openapi's ETag: the SHA-512 of the document, upper-case hex. */
export function etagOf(body: string): string {
  return createHash('sha512').update(body).digest('hex').toUpperCase();
}

/**
 * acceptsJson reads an Accept header the way kube-openapi negotiates: a missing header, `*\/*`,
 * `application/*` or `application/json` (with any parameters, q > 0) means JSON will do.
 */
export function acceptsJson(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return true;
  return acceptedRanges(accept).some(isJsonRange);
}
