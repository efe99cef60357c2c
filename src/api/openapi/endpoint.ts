import { createHash } from 'node:crypto';
import type http from 'node:http';

import { acceptedRanges, isJsonRange } from '../accept.js';
import { ApiError } from '../errors.js';
import type { KindRegistry } from '../kinds/registry.js';
import { type KindDefinition, versionOf, versionsOf } from '../kinds/types.js';

import { groupDocument, groupVersionPath, swaggerDocument } from './documents.js';
import { encodeSwagger, isSwaggerProtobuf, SWAGGER_PROTOBUF_MEDIA_TYPE } from './swagger-protobuf.js';

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
 * Documents are JSON; `/openapi/v2` is also served as protobuf (gnostic's message), which kubectl
 * asks for alone; a client that accepts neither gets 406 Not Acceptable.
 */
export class OpenApiEndpoint {
  constructor(
    private readonly kinds: KindRegistry,
    private readonly serverVersion: string,
  ) {}

  handle(req: http.IncomingMessage, res: http.ServerResponse, path: string, query: URLSearchParams): void {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported on ${path}`);
    if (path === '/openapi/v2') return this.sendSwagger(req, res);
    if (path === '/openapi/v3') return this.send(req, res, this.index(), 'no-cache, private');
    const gv = path.slice('/openapi/v3/'.length);
    const found = this.groupVersions().find((x) => x.path === gv);
    if (!found) throw new ApiError(404, 'NotFound', `no OpenAPI document at ${path}; /openapi/v3 lists them`);
    res.setHeader('vary', 'Accept');
    if (!acceptsJson(req.headers.accept)) return this.notAcceptable(res);
    const body = JSON.stringify(groupDocument(this.defs(), found.group, found.version, this.serverVersion));
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
      const etag = etagOf(JSON.stringify(groupDocument(this.defs(), group, version, this.serverVersion)));
      paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${etag}` };
    }
    return { paths };
  }

  /**
   * defs is every kind once per version it is served in: a kind served in several versions (a
   * ConstraintTemplate as v1, v1beta1 and v1alpha1) is documented under each, with the same schema.
   */
  private defs(): KindDefinition[] {
    return this.kinds.all().flatMap((d) => versionsOf(d).map((v) => (v === versionOf(d) ? d : { ...d, version: v })));
  }

  private groupVersions(): Array<{ path: string; group: string; version: string }> {
    return this.kinds
      .groupVersions()
      .map(({ group, version }) => ({ path: groupVersionPath(group, version), group, version }))
      .sort((a, b) => a.path.localeCompare(b.path));
  }

  /**
   * sendSwagger answers `/openapi/v2` as JSON or, when the Accept header ranks it first, as the
   * protobuf message kubectl asks for (`swagger-protobuf.ts`), each with its own ETag.
   */
  private sendSwagger(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.setHeader('vary', 'Accept');
    const accept = req.headers.accept;
    const first = accept === undefined || accept.trim() === '' ? undefined : acceptedRanges(accept).find((r) => isSwaggerProtobuf(r.type) || isJsonRange(r));
    if (accept !== undefined && accept.trim() !== '' && !first) return this.notAcceptable(res);
    res.setHeader('cache-control', 'no-cache, private');
    const doc = swaggerDocument(this.defs(), this.serverVersion);
    if (first && isSwaggerProtobuf(first.type)) {
      const body = encodeSwagger(doc);
      // kube-openapi leaves the type to Go's content sniffing, which names binary octet-stream; the media
      // type kubectl asked for is not one Go's MIME parser (which client-go runs on every answer) reads.
      return this.write(req, res, body, etagOf(body), 'application/octet-stream');
    }
    const body = JSON.stringify(doc);
    this.write(req, res, body, etagOf(body));
  }

  private send(req: http.IncomingMessage, res: http.ServerResponse, doc: object, cacheControl: string): void {
    res.setHeader('vary', 'Accept');
    if (!acceptsJson(req.headers.accept)) return this.notAcceptable(res);
    res.setHeader('cache-control', cacheControl);
    const body = JSON.stringify(doc);
    this.write(req, res, body, etagOf(body));
  }

  private write(req: http.IncomingMessage, res: http.ServerResponse, body: string | Buffer, etag: string, contentType = 'application/json'): void {
    const quoted = `"${etag}"`;
    res.setHeader('etag', quoted);
    const inm = req.headers['if-none-match'];
    if (inm !== undefined && inm.split(',').some((t) => t.trim() === quoted || t.trim() === '*')) {
      res.writeHead(304);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private notAcceptable(res: http.ServerResponse): void {
    const body = JSON.stringify(new ApiError(406, 'NotAcceptable', `OpenAPI documents are served as application/json (and /openapi/v2 also as ${SWAGGER_PROTOBUF_MEDIA_TYPE})`).toStatus());
    res.writeHead(406, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}

/** etagOf is kube-openapi's ETag: the SHA-512 of the document, upper-case hex. */
export function etagOf(body: string | Buffer): string {
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
