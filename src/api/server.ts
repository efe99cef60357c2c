import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import type { Logger } from 'pino';
import { StoreUnavailableError } from '../store/index.js';
import { ApiError, badRequest } from './errors.js';
import { groupOf, type KindDefinition } from './kinds/types.js';
import type { ResourceService } from './resources.js';
import type { BlobEndpoint } from './blob-endpoint.js';

/** One line a function wrote to stderr (or a line the platform logged about it). */
export interface LogLine {
  time: string;
  requestId?: string;
  stream: 'stderr' | 'system';
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
  /** Required as a bearer token for writes when the server listens beyond loopback. */
  token?: string;
  /** The token that may write the status subresource (controllers). */
  controllerToken?: string;
  logs?: LogSource;
  /** Largest accepted request body in bytes (413 beyond it). */
  maxBodyBytes?: number;
  /** Serves module uploads under /blobs (it checks the bearer token itself). */
  blobs?: BlobEndpoint;
}

const GROUP_PREFIX = '/apis/skiff.dev/v1';

/**
 * ApiServer serves the resource API over HTTP with Kubernetes' URL layout, verbs and Status errors.
 * It is a thin translation layer: every rule about objects lives in ResourceService.
 */
export class ApiServer {
  private server?: http.Server;
  private readonly maxBody: number;
  private requireTokenForWrites = false;
  private readonly watches = new Set<http.ServerResponse>();

  constructor(private readonly opts: ApiServerOptions) {
    this.maxBody = opts.maxBodyBytes ?? 3 * 1024 * 1024;
  }

  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    this.requireTokenForWrites = !isLoopback(host);
    const server = http.createServer({ keepAliveTimeout: 5000, requestTimeout: 60_000 }, (req, res) => {
      this.handle(req, res).catch((err) => this.fail(res, err));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    return { host, port: addr.port };
  }

  /** close stops accepting, ends open watches, and waits for in-flight requests. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    for (const res of this.watches) res.end();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (path === '/healthz' || path === '/readyz' || path === '/livez') return this.text(res, 200, 'ok\n');
    if (path === '/version') return this.json(res, 200, { version: this.opts.version, platform: `${process.platform}/${process.arch}`, node: process.version });
    if (this.opts.blobs?.matches(path)) return this.opts.blobs.handle(req, res, path);
    if (path === '/apis') return this.json(res, 200, this.groupList());
    const gv = /^\/apis\/([^/]+)\/([^/]+)(?:\/(.*))?$/.exec(path);
    if (!gv) throw new ApiError(404, 'NotFound', `no API at ${path}; resources live under /apis/GROUP/VERSION (e.g. ${GROUP_PREFIX})`);
    const [, group, version, rest] = gv as unknown as [string, string, string, string | undefined];
    if (!this.opts.resources.kinds.groupVersions().some((x) => x.group === group && x.version === version)) throw new ApiError(404, 'NotFound', `the server has no API group ${group}/${version}`);
    if (!rest) return this.json(res, 200, this.discovery(group, version));

    const segs = rest.split('/').map(decodeURIComponent);
    const target = this.resolve(group, version, segs);
    const isWrite = method !== 'GET' && method !== 'HEAD';
    if (isWrite) this.authorize(req, target.subresource === 'status');
    const q = url.searchParams;
    const dryRun = q.get('dryRun') === 'All';
    const { def, ns, name, subresource } = target;
    const svc = this.opts.resources;

    if (subresource === 'log') {
      if (method !== 'GET') throw methodNotAllowed(method, path);
      return this.serveLogs(req, res, def, ns!, name!, q);
    }
    if (!name) {
      switch (method) {
        case 'GET':
          if (q.get('watch') === 'true' || q.get('watch') === '1') return this.serveWatch(req, res, def, ns, q);
          return this.json(res, 200, await this.listBody(def, ns, q));
        case 'POST': {
          const out = await svc.create(def, ns, await this.readBody(req, res), { dryRun });
          return this.json(res, 201, out.object, out.warnings);
        }
        default:
          throw methodNotAllowed(method, path);
      }
    }
    switch (method) {
      case 'GET':
        return this.json(res, 200, await svc.get(def, ns, name));
      case 'PUT': {
        const body = await this.readBody(req, res);
        const out = subresource === 'status' ? await svc.updateStatus(def, ns, name, body, { dryRun }) : await svc.update(def, ns, name, body, { dryRun });
        return this.json(res, 200, out.object, out.warnings);
      }
      case 'PATCH': {
        const ct = String(req.headers['content-type'] ?? 'application/merge-patch+json');
        if (!/merge-patch\+json|application\/json/.test(ct)) throw new ApiError(415, 'UnsupportedMediaType', `unsupported patch type "${ct}": use application/merge-patch+json`);
        const out = await svc.patch(def, ns, name, await this.readBody(req, res), { dryRun, subresource: subresource === 'status' ? 'status' : undefined });
        return this.json(res, 200, out.object, out.warnings);
      }
      case 'DELETE': {
        if (subresource) throw methodNotAllowed(method, path);
        const out = await svc.delete(def, ns, name, { dryRun, resourceVersion: q.get('resourceVersion') ?? undefined });
        return this.json(res, 200, out.object, out.warnings);
      }
      default:
        throw methodNotAllowed(method, path);
    }
  }

  private resolve(group: string, version: string, segs: string[]): { def: KindDefinition; ns?: string; name?: string; subresource?: string } {
    const kinds = this.opts.resources.kinds;
    const inGroup = kinds.all().filter((k) => groupOf(k) === group && (k.version ?? 'v1') === version);
    const unknown = (p: string) => new ApiError(404, 'NotFound', `the server does not know the resource type "${p}" in ${group}/${version}; known types: ${inGroup.map((k) => k.plural).join(', ')}`);
    const find = (plural: string) => inGroup.find((k) => k.plural === plural);
    // Kubernetes' layout: namespaces/{ns}/{plural}[/{name}[/{sub}]] for namespaced kinds, {plural}[/{name}] otherwise.
    if (segs[0] === 'namespaces' && segs.length >= 3) {
      const def = find(segs[2]!);
      if (!def || !def.namespaced) throw unknown(segs[2]!);
      if (segs.length > 5) throw new ApiError(404, 'NotFound', 'no such path');
      return { def, ns: segs[1], name: segs[3], subresource: segs[4] && checkSub(segs[4], def) };
    }
    // `namespaces` itself is Skiff's cluster-scoped kind; other groups reach it under skiff.dev only.
    const def = find(segs[0]!);
    if (!def) throw unknown(segs[0]!);
    if (segs.length > 3) throw new ApiError(404, 'NotFound', 'no such path');
    if (def.namespaced && segs.length > 1) throw new ApiError(404, 'NotFound', `${def.plural} are namespaced: use /apis/${group}/${version}/namespaces/NAMESPACE/${def.plural}/${segs[1]}`);
    return { def, name: segs[1], subresource: segs[2] && checkSub(segs[2], def) };
  }

  private authorize(req: http.IncomingMessage, statusWrite: boolean): void {
    const header = String(req.headers.authorization ?? '');
    const presented = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    if (statusWrite) {
      if (!this.opts.controllerToken || !safeEqual(presented, this.opts.controllerToken)) {
        throw new ApiError(403, 'Forbidden', 'the status subresource is written by controllers only (present the controller token)');
      }
      return;
    }
    if (!this.requireTokenForWrites) return;
    const ok = (this.opts.token && safeEqual(presented, this.opts.token)) || (this.opts.controllerToken && safeEqual(presented, this.opts.controllerToken));
    if (!ok) throw new ApiError(401, 'Unauthorized', 'writes to this server need a bearer token: the CLI reads it from DATA_DIR/token, or set SKIFF_TOKEN');
  }

  private async listBody(def: KindDefinition, ns: string | undefined, q: URLSearchParams) {
    const limit = q.get('limit') ? Number(q.get('limit')) : undefined;
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) throw badRequest('limit must be a non-negative integer');
    const out = await this.opts.resources.list(def, ns, { labelSelector: q.get('labelSelector') ?? undefined, limit, continue: q.get('continue') ?? undefined });
    return { apiVersion: 'skiff.dev/v1', kind: `${def.kind}List`, metadata: { resourceVersion: out.resourceVersion, ...(out.continue ? { continue: out.continue } : {}) }, items: out.items };
  }

  private async serveWatch(req: http.IncomingMessage, res: http.ServerResponse, def: KindDefinition, ns: string | undefined, q: URLSearchParams): Promise<void> {
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'cache-control': 'no-store' });
    };
    let closed = false;
    const pending: string[] = [];
    // Events that arrive together (a replay, a burst) go out in one write.
    const flush = () => {
      if (!closed && pending.length) res.write(pending.join(''));
      pending.length = 0;
    };
    const watcher = await this.opts.resources.watch(
      def,
      ns,
      { resourceVersion: q.get('resourceVersion') ?? undefined, labelSelector: q.get('labelSelector') ?? undefined },
      (ev) => {
        if (closed) return;
        start();
        // A client that stops reading must not make the server buffer without bound: drop it; it resumes from its last resourceVersion.
        if (res.writableLength > 8 * 1024 * 1024) {
          closed = true;
          res.destroy();
          return;
        }
        pending.push(JSON.stringify(ev) + '\n');
        if (pending.length === 1) queueMicrotask(flush);
      },
      () => {
        closed = true;
        res.end();
      },
    );
    start();
    res.flushHeaders();
    this.watches.add(res);
    const timeoutSec = Number(q.get('timeoutSeconds') ?? '0');
    const timer = timeoutSec > 0 ? setTimeout(() => res.end(), timeoutSec * 1000) : undefined;
    const done = () => {
      closed = true;
      watcher.close();
      this.watches.delete(res);
      if (timer) clearTimeout(timer);
    };
    res.on('close', done);
    req.on('close', () => {
      if (!res.writableEnded) res.end();
    });
  }

  private serveLogs(req: http.IncomingMessage, res: http.ServerResponse, def: KindDefinition, ns: string, name: string, q: URLSearchParams): void {
    if (def.kind !== 'Function') throw new ApiError(404, 'NotFound', 'logs exist for functions only');
    if (!this.opts.logs) throw new ApiError(503, 'ServiceUnavailable', 'function logs are not available on this server');
    const fmt = (l: LogLine) => `${l.time} ${l.requestId ?? '-'} ${l.stream === 'system' ? '[skiff] ' : ''}${l.line}\n`;
    const tail = Number(q.get('tailLines') ?? '200');
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    for (const l of this.opts.logs.tail(ns, name, Number.isFinite(tail) && tail >= 0 ? tail : 200)) res.write(fmt(l));
    if (q.get('follow') !== 'true') {
      res.end();
      return;
    }
    const stop = this.opts.logs.follow(ns, name, (l) => res.write(fmt(l)));
    this.watches.add(res);
    res.on('close', () => {
      stop();
      this.watches.delete(res);
    });
    req.on('close', () => res.end());
  }

  private groupList() {
    const byGroup = new Map<string, string[]>();
    for (const { group, version } of this.opts.resources.kinds.groupVersions()) byGroup.set(group, [...(byGroup.get(group) ?? []), version]);
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: [...byGroup].map(([name, versions]) => ({
        name,
        versions: versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v })),
        preferredVersion: { groupVersion: `${name}/${versions[0]}`, version: versions[0] },
      })),
    };
  }

  private discovery(group: string, version: string) {
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: `${group}/${version}`,
      resources: this.opts.resources.kinds
        .all()
        .filter((k) => groupOf(k) === group && (k.version ?? 'v1') === version)
        .map((k) => ({
          name: k.plural,
          singularName: k.singular,
          namespaced: k.namespaced,
          kind: k.kind,
          shortNames: k.shortNames ?? [],
          verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
          columns: k.printerColumns.map((c) => ({ name: c.name, wide: !!c.wide, ...(c.jsonPath ? { jsonPath: c.jsonPath } : {}) })),
        })),
    };
  }

  private readBody(req: http.IncomingMessage, res: http.ServerResponse): Promise<unknown> {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > this.maxBody) {
      // Read and discard a moderately oversized body so the client sees the 413 instead of a reset;
      // beyond that, the connection is closed after the answer.
      if (declared <= 8 * this.maxBody) req.resume();
      else req.socket.once('finish', () => req.socket.destroy());
      return Promise.reject(tooLarge(this.maxBody));
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > this.maxBody) {
          req.removeAllListeners('data');
          req.resume();
          res.setHeader('connection', 'close');
          reject(tooLarge(this.maxBody));
          return;
        }
        chunks.push(c);
      });
      req.on('error', reject);
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (text.trim() === '') return reject(badRequest('the request has no body; send the object as JSON'));
        const ct = String(req.headers['content-type'] ?? '');
        try {
          resolve(/yaml/.test(ct) ? parseYaml(text) : JSON.parse(text));
        } catch (err) {
          reject(badRequest(`the request body is not valid ${/yaml/.test(ct) ? 'YAML' : 'JSON'}: ${(err as Error).message}`));
        }
      });
    });
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
    this.json(res, apiErr.httpStatus, apiErr.toStatus(), apiErr.warnings);
  }
}

function checkSub(sub: string, def: KindDefinition): string {
  if (sub === 'status' || (sub === 'log' && def.kind === 'Function')) return sub;
  throw new ApiError(404, 'NotFound', `${def.plural} have no subresource "${sub}"`);
}

function methodNotAllowed(method: string, path: string): ApiError {
  return new ApiError(405, 'MethodNotAllowed', `${method} is not supported on ${path}`);
}

function tooLarge(limit: number): ApiError {
  return new ApiError(413, 'RequestEntityTooLarge', `the request body is larger than the limit of ${limit} bytes`);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** isLoopback tells whether a listen address only accepts local connections. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}
