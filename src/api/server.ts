import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';

import type { Logger } from 'pino';

import { StoreUnavailableError } from '../store/index.js';

import { answerReview, reviewAt } from './access-review.js';
import { type Principal,TokenAuthenticator } from './authn.js';
import { authorizeResource, refuseImpersonation, subresourcesOf, verbOfMethod } from './authz.js';
import type { BlobEndpoint } from './blob-endpoint.js';
import { CollectionEndpoint } from './collection-endpoint.js';
import { deleteCollection } from './delete-collection.js';
import { DiscoveryEndpoint } from './discovery/index.js';
import { ApiError, badRequest, invalid } from './errors.js';
import { parseFieldValidation } from './field-validation.js';
import { apiPathOf, CORE_GROUP, groupOf, groupVersionString, type KindDefinition } from './kinds/types.js';
import { isOpenApiPath, OpenApiEndpoint } from './openapi/endpoint.js';
import { managerName } from './patch/field-manager.js';
import { isProtobuf, objectFromProtobuf } from './protobuf.js';
import { type BodyMediaType,bodyMediaType, decodeBodyFields, hasBody, objectMediaType, patchMediaType, readBodyBytes } from './request-body.js';
import { checkCrossSite, checkHost } from './request-origin.js';
import { parseRequestUrl } from './request-url.js';
import type { ResourceService } from './resources.js';
import { getScale, patchScale, putScale } from './scale.js';
import { nameProblem, namespaceProblem } from './validation.js';
import { inApiVersion, presentedApiVersion } from './versions.js';

/** One line a function wrote to stderr (or a line the platform logged about it). */
export interface LogLine {
  time: string;
  requestId?: string;
  /** The trace and span of the request the line was written for, so logs and traces join. */
  trace_id?: string;
  span_id?: string;
  /** stderr and system for Wasm Functions; stdout, stderr and console (a VM's serial console) for container and VM replicas. */
  stream: 'stderr' | 'system' | 'stdout' | 'console';
  line: string;
}

/** LogSource gives the API access to function logs (kept by the function serving layer). */
export interface LogSource {
  tail(namespace: string, name: string, lines: number): LogLine[];
  follow(namespace: string, name: string, onLine: (l: LogLine) => void): () => void;
}

export interface ApiServerOptions {
  resources: ResourceService;
  logger: Logger;
  version: string;
  /** The bearer token every request needs (except health and version), loopback included. */
  token: string;
  /** The token of the controllers: it authenticates like `token` and alone may write the status subresource. */
  controllerToken?: string;
  logs?: LogSource;
  /** Largest accepted request body in bytes (413 beyond it). */
  maxBodyBytes?: number;
  /** Serves module uploads under /blobs (after the same authentication as every other path). */
  blobs?: BlobEndpoint;
  /** How often watches that allow bookmarks get one (default a minute, as kube-apiserver). */
  watchBookmarkIntervalMs?: number;
  /** kube-apiserver's `--min-request-timeout`: a watch without `timeoutSeconds` ends after between this and twice this (default 1800 s). */
  minRequestTimeoutMs?: number;
  /** How long a list or watch at a `resourceVersion` beyond the store's waits for it before 504 (default 3 s). */
  futureRevisionWaitMs?: number;
  /** Endpoints outside the resource API (metrics, the dashboard), tried in order before it. */
  mounts?: ApiMount[];
}

/**
 * ApiMount is an endpoint served beside the resource API on the same listener: the host and cross-site
 * checks run first as for every path; then the token, unless the mount says the path is public.
 */
export interface ApiMount {
  /** matches says whether the mount serves this path (the URL path, query excluded). */
  matches(path: string): boolean;
  /** public answers true for paths served without a token (a page shell and its static assets). */
  public?(path: string): boolean;
  /**
   * authenticatesItself answers true for requests the mount checks itself (a webhook signed with its
   * own secret): the token then is optional, the principal is set only when a valid one came, and the
   * mount must refuse what it cannot authenticate. The host and cross-site checks still run first.
   */
  authenticatesItself?(path: string, method: string): boolean;
  handle(req: http.IncomingMessage, res: http.ServerResponse, path: string, query: URLSearchParams, principal: Principal | undefined): Promise<void> | void;
}

/** How much a watch or log stream may queue for a client that does not read before it is dropped. */
const MAX_STREAM_BUFFER = 8 * 1024 * 1024;

/** What kube-apiserver leaves to anonymous users: liveness, readiness and the version. */
const ANONYMOUS_PATHS = new Set(['/healthz', '/livez', '/readyz', '/version']);

/**
 * ApiServer serves the resource API over HTTP with Kubernetes' URL layout, verbs and Status errors.
 * It is a thin translation layer: every rule about objects lives in ResourceService.
 */
export class ApiServer {
  private listener?: net.Server;
  private servers: http.Server[] = [];
  private readonly maxBody: number;
  private readonly authn: TokenAuthenticator;
  private loopbackOnly = true;
  private closing = false;
  private readonly watches = new Set<http.ServerResponse>();
  private readonly reads: CollectionEndpoint;
  private readonly openapi: OpenApiEndpoint;
  private readonly discovery: DiscoveryEndpoint;
  private advertised = '';

  constructor(private readonly opts: ApiServerOptions) {
    this.maxBody = opts.maxBodyBytes ?? 3 * 1024 * 1024;
    this.authn = new TokenAuthenticator(opts.token, opts.controllerToken);
    this.reads = new CollectionEndpoint({ resources: opts.resources, watches: this.watches, maxStreamBuffer: MAX_STREAM_BUFFER, bookmarkIntervalMs: opts.watchBookmarkIntervalMs,
      minRequestTimeoutMs: opts.minRequestTimeoutMs,
      futureRevisionWaitMs: opts.futureRevisionWaitMs,
    });
    this.openapi = new OpenApiEndpoint(opts.resources.kinds, opts.version);
    this.discovery = new DiscoveryEndpoint(opts.resources.kinds, () => [{ clientCIDR: '0.0.0.0/0', serverAddress: this.advertised }]);
  }

  /**
   * listen serves the API on one port. With `tls`, the same port speaks both plain HTTP and HTTPS: the
   * first byte of a connection tells a TLS handshake (0x16) from an HTTP request line. Plain HTTP keeps
   * `skiff` and curl working with a bare URL; HTTPS is what kubectl and client-go need, since they never
   * send a bearer token over plain HTTP.
   */
  async listen(host: string, port: number, tls?: { certPem: string; keyPem: string }): Promise<{ host: string; port: number }> {
    this.loopbackOnly = isLoopback(host);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.handle(req, res).catch((err) => this.fail(res, err));
    };
    const plain = http.createServer({ keepAliveTimeout: 5000, requestTimeout: 60_000 }, handler);
    const secure = tls ? https.createServer({ keepAliveTimeout: 5000, requestTimeout: 60_000, cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2' }, handler) : undefined;
    const server = secure ? net.createServer({ pauseOnConnect: true }, (socket) => sniff(socket, plain, secure)) : plain;
    this.servers = secure ? [plain, secure] : [plain];
    this.listener = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    this.advertised = `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${addr.port}`;
    return { host, port: addr.port };
  }

  /** useCertificate swaps the HTTPS side's certificate (a cluster CA rotation); open connections keep theirs. */
  useCertificate(tls: { certPem: string; keyPem: string }): void {
    for (const s of this.servers) if (s instanceof https.Server) s.setSecureContext({ cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2' });
  }

  /** close stops accepting, ends open watches, and waits for in-flight requests. */
  async close(): Promise<void> {
    const listener = this.listener;
    if (!listener) return;
    this.closing = true;
    // A watch's connection closes with it: a client that resumes at once must reconnect (and find the
    // listener gone) rather than open a new watch on the kept-alive socket that would hold the drain up.
    for (const res of this.watches) {
      const socket = res.socket;
      res.end();
      socket?.end();
    }
    const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
    // Behind the sniffing listener the HTTP servers never listen themselves; close() still ends their
    // connections once idle, and waiting on it lets in-flight requests finish.
    const drained = this.servers.filter((s) => s !== listener).map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of this.servers) s.closeIdleConnections();
    await Promise.all([closed, ...drained]);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    if (this.closing) {
      // As kube-apiserver while it shuts down: 429 with Retry-After, which clients retry (a watch resumes
      // from its resourceVersion once a server answers again).
      res.setHeader('connection', 'close');
      res.setHeader('retry-after', '1');
      throw new ApiError(429, 'TooManyRequests', 'the server is shutting down; retry in a moment', { retryAfterSeconds: 1 });
    }
    // Checks that need no secret come first, so that a browser's cross-site or rebound request is
    // refused before the API looks at anything else; the token is the gate after them.
    checkHost(req, this.loopbackOnly);
    checkCrossSite(req);
    const { path, segments, query: q } = parseRequestUrl(req.url ?? '/');
    // Module uploads carry their own media types (application/wasm); everything else is an object or a patch.
    const blobPath = this.opts.blobs?.matches(path) ?? false;
    const mount = this.opts.mounts?.find((m) => m.matches(path));
    // Webhook senders choose their own media types; such a mount reads and checks its body itself.
    const selfAuthenticated = mount?.authenticatesItself?.(path, method) ?? false;
    // Self-reviews also take protobuf (kubectl sends nothing else for them) and check their own media type.
    const review = reviewAt(segments);
    const protobuf = isProtobuf(req.headers['content-type']) && (method === 'POST' || method === 'PUT');
    // client-go's scale client (kubectl scale --current-replicas) PUTs a Scale without a Content-Type,
    // which kube-apiserver reads as JSON; the scale subresource does the same, and no other path.
    const untypedScale = method === 'PUT' && segments.at(-1) === 'scale' && !req.headers['content-type'];
    if (hasBody(req) && !blobPath && !review && !protobuf && !untypedScale && !selfAuthenticated) bodyMediaType(req.headers['content-type']);
    if ((method === 'GET' || method === 'HEAD') && ANONYMOUS_PATHS.has(path)) {
      if (path === '/version') return this.json(res, 200, versionInfo(this.opts.version));
      return this.text(res, 200, 'ok\n');
    }
    if (mount?.public?.(path) && (method === 'GET' || method === 'HEAD')) return mount.handle(req, res, path, q, undefined);
    if (mount && selfAuthenticated) {
      refuseImpersonation(req.headers);
      let caller: Principal | undefined;
      try {
        caller = req.headers.authorization === undefined ? undefined : this.authn.authenticate(req);
      } catch {
        caller = undefined;
      }
      return mount.handle(req, res, path, q, caller);
    }
    const principal = this.authn.authenticate(req);
    refuseImpersonation(req.headers);
    if (mount) return mount.handle(req, res, path, q, principal);
    if (blobPath) return this.opts.blobs!.handle(req, res, path);
    if (review) {
      const body = await readBodyBytes(req, res, this.maxBody);
      return this.json(res, 201, answerReview(review, principal, this.opts.resources.kinds.all(), { method, contentType: req.headers['content-type'], body }));
    }

    if (isOpenApiPath(path)) return this.openapi.handle(req, res, path, q);
    if (DiscoveryEndpoint.isDiscoveryPath(segments)) return this.discovery.serve(req, res, segments, path);
    const { group, version, rest } = splitApiPath(segments, path);
    if (!this.opts.resources.kinds.serves(group, version)) throw new ApiError(404, 'NotFound', `the server has no API group version ${groupVersionString(group, version)}; GET /apis lists the groups it serves`);

    const target = this.resolve(group, version, rest);
    const { def, ns, name, subresource } = target;
    this.authorize(principal, method, def, subresource);
    const dryRun = q.get('dryRun') === 'All';
    const fieldValidation = parseFieldValidation(q.get('fieldValidation'));
    const svc = this.opts.resources;
    // Objects are answered in the version the request names (a kind served in several), stored in one.
    const presented = presentedApiVersion(def, group, version);
    const present = <T extends { apiVersion?: unknown }>(o: T) => inApiVersion(o, presented);

    if (subresource === 'scale') return this.serveScale(req, res, method, path, def, ns, name!, q, dryRun);
    if (subresource === 'log') {
      if (method !== 'GET') throw methodNotAllowed(method, path);
      return this.serveLogs(req, res, def, ns!, name!, q);
    }
    if (!name) {
      switch (method) {
        case 'GET':
          if (CollectionEndpoint.isWatch(q)) return this.reads.watch(req, res, def, ns, q, req.headers.accept, presented);
          return this.json(res, 200, await this.reads.list(def, ns, q, req.headers.accept, presented));
        case 'POST': {
          const { value, duplicates } = await this.readObject(req, res, method);
          const fieldManager = managerName(q.get('fieldManager'), req.headers['user-agent'], false);
          const out = await svc.create(def, ns, value, { dryRun, fieldValidation, duplicates, fieldManager });
          return this.json(res, 201, present(out.object), out.warnings);
        }
        case 'DELETE': {
          // As in kube-apiserver, a namespaced kind's collection is deleted one namespace at a time.
          if (def.namespaced && ns === undefined) throw new ApiError(405, 'MethodNotAllowed', `DELETE of ${def.plural} across all namespaces is not supported; delete them per namespace at ${apiPathOf(group, version)}/namespaces/NAMESPACE/${def.plural}`);
          const out = await deleteCollection(svc, def, ns, { labelSelector: q.get('labelSelector') ?? undefined, dryRun });
          return this.json(res, 200, present({ ...out.list, items: out.list.items.map(present) }), out.warnings);
        }
        default:
          throw methodNotAllowed(method, path);
      }
    }
    switch (method) {
      case 'GET':
        return this.json(res, 200, await this.reads.get(def, ns, name, q, req.headers.accept, presented));
      case 'PUT': {
        const { value: body, duplicates } = await this.readObject(req, res, method);
        const fieldManager = managerName(q.get('fieldManager'), req.headers['user-agent'], false);
        const out = subresource === 'status' ? await svc.updateStatus(def, ns, name, body, { dryRun, fieldManager }) : await svc.update(def, ns, name, body, { dryRun, fieldValidation, duplicates, fieldManager });
        return this.json(res, 200, present(out.object), out.warnings);
      }
      case 'PATCH': {
        const media = patchMediaType(req.headers['content-type']);
        const { value: body, duplicates } = await this.readBody(req, res, media);
        const sub = subresource === 'status' ? ('status' as const) : undefined;
        const fieldManager = managerName(q.get('fieldManager'), req.headers['user-agent'], media.patch === 'apply');
        const force = q.get('force');
        if (media.patch === 'apply') {
          const out = await svc.apply(def, ns, name, body, { dryRun, subresource: sub, fieldManager, force: force === 'true', fieldValidation, duplicates });
          return this.json(res, out.created ? 201 : 200, present(out.object), out.warnings);
        }
        if (force !== null) throw invalid('PatchOptions', '', [{ field: 'force', message: 'Forbidden: may not be specified for non-apply patch', reason: 'FieldValueForbidden' }]);
        const out = await svc.patch(def, ns, name, body, { dryRun, subresource: sub, fieldManager, type: media.patch, fieldValidation, duplicates, apiVersion: presented });
        return this.json(res, 200, present(out.object), out.warnings);
      }
      case 'DELETE': {
        if (subresource) throw methodNotAllowed(method, path);
        const out = await svc.delete(def, ns, name, { dryRun, resourceVersion: q.get('resourceVersion') ?? undefined });
        return this.json(res, 200, present(out.object), out.warnings);
      }
      default:
        throw methodNotAllowed(method, path);
    }
  }

  private authorize(principal: Principal, method: string, def: KindDefinition, subresource: string | undefined): void {
    const decision = authorizeResource(principal, { verb: verbOfMethod(method), group: groupOf(def), resource: def.plural, subresource });
    if (!decision.allowed) throw new ApiError(403, 'Forbidden', decision.reason);
  }

  private resolve(group: string, version: string, segs: string[]): { def: KindDefinition; ns?: string; name?: string; subresource?: string } {
    // Kinds listed here plus legacy aliases: /apis/skiff.dev/v1/namespaces still reaches the core Namespace.
    const inGroup = this.opts.resources.kinds.servedAt(group, version);
    const gv = groupVersionString(group, version);
    const unknown = (p: string) => new ApiError(404, 'NotFound', `the server does not know the resource type "${p}" in ${gv}; known types: ${inGroup.map((k) => k.plural).join(', ')}`);
    const find = (plural: string) => inGroup.find((k) => k.plural === plural);
    // Kubernetes' layout: namespaces/{ns}/{plural}[/{name}[/{sub}]] for namespaced kinds, {plural}[/{name}[/{sub}]] otherwise;
    // namespaces/{name}/status is the Namespace's own subresource.
    const namespaceSub = segs.length === 3 && segs[0] === 'namespaces' && segs[2] === 'status' && !find('status')?.namespaced && !!find('namespaces');
    if (segs[0] === 'namespaces' && segs.length >= 3 && !namespaceSub) {
      const def = find(segs[2]!);
      if (!def || !def.namespaced) throw unknown(segs[2]!);
      if (segs.length > 5) throw new ApiError(404, 'NotFound', 'no such path');
      const nsBad = namespaceProblem(segs[1]!);
      if (nsBad) throw badRequest(`the namespace in the URL is not valid: ${nsBad}`);
      return { def, ns: segs[1], name: checkName(def, segs[3]), subresource: segs[4] && checkSub(segs[4], def) };
    }
    const def = find(segs[0]!);
    if (!def) throw unknown(segs[0]!);
    if (segs.length > 3) throw new ApiError(404, 'NotFound', 'no such path');
    if (def.namespaced && segs.length > 1) throw new ApiError(404, 'NotFound', `${def.plural} are namespaced: use ${apiPathOf(group, version)}/namespaces/NAMESPACE/${def.plural}/${segs[1]}`);
    return { def, name: checkName(def, segs[1]), subresource: segs[2] && checkSub(segs[2], def) };
  }

  /** serveScale answers a Function's scale subresource (`kubectl scale`, an autoscaler's target) with an autoscaling/v1 Scale. */
  private async serveScale(req: http.IncomingMessage, res: http.ServerResponse, method: string, path: string, def: KindDefinition, ns: string | undefined, name: string, q: URLSearchParams, dryRun: boolean): Promise<void> {
    const svc = this.opts.resources;
    const opts = { dryRun, fieldManager: managerName(q.get('fieldManager'), req.headers['user-agent'], false) };
    switch (method) {
      case 'GET':
      case 'HEAD':
        return this.json(res, 200, await getScale(svc, def, ns, name));
      case 'PUT': {
        const { value } = req.headers['content-type'] ? await this.readObject(req, res, method) : await this.readBody(req, res, objectMediaType('application/json', method));
        const out = await putScale(svc, def, ns, name, value, opts);
        return this.json(res, 200, out.scale, out.warnings);
      }
      case 'PATCH': {
        const media = patchMediaType(req.headers['content-type']);
        if (media.patch === 'apply') throw new ApiError(415, 'UnsupportedMediaType', 'server-side apply is not supported on the scale subresource; use a merge patch such as {"spec":{"replicas":3}} (kubectl scale)');
        const { value } = await this.readBody(req, res, media);
        const out = await patchScale(svc, def, ns, name, value, media.patch ?? 'merge', opts);
        return this.json(res, 200, out.scale, out.warnings);
      }
      default:
        throw methodNotAllowed(method, path);
    }
  }

  private serveLogs(req: http.IncomingMessage, res: http.ServerResponse, def: KindDefinition, ns: string, name: string, q: URLSearchParams): void {
    if (def.kind !== 'Function') throw new ApiError(404, 'NotFound', 'logs exist for functions only');
    if (!this.opts.logs) throw new ApiError(503, 'ServiceUnavailable', 'function logs are not available on this server');
    // Text for people; JSON lines (format=json) carry every field, trace and span ids included, for tools.
    const format = q.get('format') ?? 'text';
    if (format !== 'text' && format !== 'json') throw new ApiError(400, 'BadRequest', `format "${format}" is not supported: use text or json`);
    const fmt = format === 'json' ? (l: LogLine) => JSON.stringify(l) + '\n' : (l: LogLine) => `${l.time} ${l.requestId ?? '-'} ${l.stream === 'system' ? '[skiff] ' : ''}${l.line}\n`;
    const tail = Number(q.get('tailLines') ?? '200');
    res.writeHead(200, { 'content-type': format === 'json' ? 'application/x-ndjson' : 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    for (const l of this.opts.logs.tail(ns, name, Number.isFinite(tail) && tail >= 0 ? tail : 200)) res.write(fmt(l));
    if (q.get('follow') !== 'true') {
      res.end();
      return;
    }
    const stop = this.opts.logs.follow(ns, name, (l) => {
      // As for watches: a follower that stops reading is dropped rather than buffered for without bound.
      if (res.writableLength > MAX_STREAM_BUFFER) res.destroy();
      else res.write(fmt(l));
    });
    this.watches.add(res);
    res.on('close', () => {
      stop();
      this.watches.delete(res);
    });
    req.on('close', () => res.end());
  }

  /** readObject reads a whole object (POST, PUT): JSON, YAML, or the protobuf that typed clients send for core kinds. */
  private async readObject(req: http.IncomingMessage, res: http.ServerResponse, method: string) {
    if (isProtobuf(req.headers['content-type'])) return { value: objectFromProtobuf(await readBodyBytes(req, res, this.maxBody)), duplicates: [] };
    return this.readBody(req, res, objectMediaType(req.headers['content-type'], method));
  }

  private async readBody(req: http.IncomingMessage, res: http.ServerResponse, media: BodyMediaType) {
    return decodeBodyFields(await readBodyBytes(req, res, this.maxBody), media);
  }

  private json(res: http.ServerResponse, status: number, body: unknown, warnings: string[] = []): void {
    const text = JSON.stringify(body);
    const headers: Record<string, string | number | string[]> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
    // Warning headers carry admission warnings (RFC 7234 code 299, as Kubernetes sends them).
    if (warnings.length) headers.warning = warnings.map((w) => `299 - ${JSON.stringify(w.replace(/[\r\n]+/g, ' '))}`);
    res.writeHead(status, headers);
    res.end(text);
  }

  private text(res: http.ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private fail(res: http.ServerResponse, err: unknown): void {
    let apiErr: ApiError;
    if (err instanceof ApiError) apiErr = err;
    else if (err instanceof StoreUnavailableError) apiErr = new ApiError(503, 'ServiceUnavailable', err.message);
    else {
      this.opts.logger.error({ err }, 'api request failed');
      apiErr = new ApiError(500, 'InternalError', 'internal error; see the server log');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (apiErr.httpStatus === 401) res.setHeader('www-authenticate', 'Bearer realm="skiff"');
    this.json(res, apiErr.httpStatus, apiErr.toStatus(), apiErr.warnings);
  }
}

function checkSub(sub: string, def: KindDefinition): string {
  if (subresourcesOf(def).includes(sub)) return sub;
  throw new ApiError(404, 'NotFound', `${def.plural} have no subresource "${sub}"`);
}

/**
 * splitApiPath reads `/api/VERSION/...` (the core group) and `/apis/GROUP/VERSION/...` into the
 * group, version and the segments after them.
 */
function splitApiPath(segments: string[], path: string): { group: string; version: string; rest: string[] } {
  if (segments[0] === 'api' && segments.length >= 3) return { group: CORE_GROUP, version: segments[1]!, rest: segments.slice(2) };
  if (segments[0] === 'apis' && segments.length >= 4) return { group: segments[1]!, version: segments[2]!, rest: segments.slice(3) };
  throw new ApiError(404, 'NotFound', `no API at ${path}; resources live under /api/v1 (the core group) and /apis/GROUP/VERSION (e.g. /apis/skiff.dev/v1)`);
}

function methodNotAllowed(method: string, path: string): ApiError {
  return new ApiError(405, 'MethodNotAllowed', `${method} is not supported on ${path}`);
}

function checkName(def: KindDefinition, name: string | undefined): string | undefined {
  const bad = name === undefined ? undefined : nameProblem(def, name);
  if (bad) throw badRequest(`the ${def.kind} name in the URL is not valid: ${bad}`);
  return name;
}

/** isLoopback tells whether a listen address only accepts local connections. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}

/** How long a new connection may stay silent before its first byte decides between HTTP and TLS. */
const FIRST_BYTE_TIMEOUT_MS = 10_000;

/**
 * sniff reads a connection's first byte and hands the socket, with the byte put back, to the HTTPS
 * server for a TLS handshake record (content type 22) and to the HTTP server otherwise.
 */
function sniff(socket: net.Socket, plain: http.Server, secure: https.Server): void {
  const fail = () => socket.destroy();
  socket.on('error', fail);
  socket.once('end', fail);
  socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, fail);
  const onReadable = () => {
    const first = socket.read(1) as Buffer | null;
    if (first === null) {
      socket.once('readable', onReadable);
      return;
    }
    socket.removeListener('error', fail);
    socket.removeListener('end', fail);
    socket.setTimeout(0);
    socket.unshift(first);
    (first[0] === 0x16 ? secure : plain).emit('connection', socket);
  };
  // A 'readable' listener starts reading from the handle that pauseOnConnect left unread.
  socket.once('readable', onReadable);
}

/**
 * KUBERNETES_API_LEVEL is the Kubernetes release whose API conventions Skiff follows. Clients read it
 * from `/version` (kubectl's version-skew warning, and the dispatcher that picks a kubectl release).
 */
export const KUBERNETES_API_LEVEL = { major: 1, minor: 32, patch: 0 } as const;

/** versionInfo is `/version` in kube-apiserver's shape, with Skiff's own version in `gitVersion`'s build metadata. */
export function versionInfo(version: string): Record<string, string> {
  const { major, minor, patch } = KUBERNETES_API_LEVEL;
  return {
    major: String(major),
    minor: String(minor),
    gitVersion: `v${major}.${minor}.${patch}+skiff-${version}`,
    gitCommit: '',
    gitTreeState: 'clean',
    buildDate: '',
    goVersion: '',
    compiler: 'node',
    platform: `${process.platform === 'win32' ? 'windows' : process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
    version,
    node: process.version,
  };
}
