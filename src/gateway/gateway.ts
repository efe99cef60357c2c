import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import { type AddressInfo, isIP, type Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';

import type { Logger } from 'pino';

import type { ResourceObject } from '../api/kinds/types.js';
import { HostDirs, UpstreamGuard } from '../security/index.js';
import type { Tracer } from '../util/tracing.js';

import { ScaleGates } from './activator.js';
import { FORWARDED_CLIENT, FORWARDED_FUNCTION, FORWARDED_PRINCIPAL, MESH_BLOB_PATH, MESH_SAMPLES_PATH, type MeshPolicy, RemoteFunctions } from './cluster/remote-functions.js';
import { compose } from './compose.js';
import type { Dispatch, Handler, OutgoingHeaders } from './context.js';
import { createDispatch, functionDispatch } from './dispatch.js';
import { GatewayError, NotServedHereError } from './errors.js';
import { FILTERS } from './filters/registry.js';
import type { FilterEnv } from './filters/types.js';
import type { LazyIdentity, WorkloadIdentity } from './mtls/identity.js';
import { isNodeId, peerSpiffeId } from './mtls/spiffe.js';
import { type GatewayMetrics, MetricsRegistry, type TrafficSnapshot, type TrafficStats } from './observability/metrics.js';
import { endTrace, startTrace, TRACED_FILTERS, tracedFilter } from './observability/spans.js';
import { IdSource, traceFrom } from './observability/trace.js';
import { type BodyBudget,RequestContext } from './request-context.js';
import { BadPathError, DEFAULT_PATH_OPTIONS, ESCAPED_SLASHES_ACTIONS, normalizePath, originForm, type PathOptions,PathRedirect } from './request-path.js';
import { compileRoute } from './router/compile-route.js';
import { RouteTable, type TableEntry } from './router/route-table.js';
import { closeSessions, createListener, createSecureListener, DEFAULT_LIMITS, enableH2c } from './server.js';
import type { Authorizer, ConfigProblem, FunctionInvoker, GatewayConfig, GatewayLimits, GatewayOptions } from './types.js';
import { Cluster, type ClusterEnv, type ClusterState } from './upstream/cluster.js';
import { responseHeaders } from './upstream/forward.js';
import { compileService } from './upstream/service-spec.js';
import { WorkloadTable } from './workloads.js';
import { WriteBatch } from './write-batch.js';

type Chain = { run: Dispatch; stats: TrafficStats; key: string };

interface Snapshot {
  table: RouteTable<Chain>;
  clusters: ReadonlyMap<string, Cluster>;
}

function creationOrder(a: ResourceObject, b: ResourceObject): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  const ka = `${a.metadata.namespace ?? ''}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace ?? ''}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function bind(server: Server | Http2SecureServer, host: string, port: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address() as AddressInfo;
      resolve({ host: addr.address, port: addr.port });
    });
  });
}

const PEER = Symbol('skiff.peer');

function closeConnection(h: OutgoingHeaders): void {
  h.connection = 'close';
}

/** peerOf reads (once per connection) the SPIFFE ID of a mutual-TLS client. */
function peerOf(req: IncomingMessage): string | undefined {
  const sock = ((req as unknown as { stream?: { session?: { socket?: TLSSocket } } }).stream?.session?.socket ?? req.socket) as TLSSocket & { [PEER]?: string | null };
  if (!sock.encrypted) return undefined;
  if (sock[PEER] === undefined) sock[PEER] = (sock.authorized && peerSpiffeId(sock.getPeerCertificate()?.subjectaltname)) || null;
  return sock[PEER] ?? undefined;
}

function hostOf(raw: string | undefined): string {
  if (!raw) return '';
  const h = raw.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const i = h.indexOf(':');
  return i < 0 ? h : h.slice(0, i);
}

/**
 * Gateway is Skiff's edge: it matches each request against the Routes, runs the rule's filter chain
 * and sends it to a Function or an HTTP upstream. Configuration is compiled in `update()` and swapped
 * atomically; a request keeps the snapshot it started with.
 *
 * @example
 * const gw = new Gateway({ functions: invoker, logger });
 * gw.update({ routes: [helloRoute], services: [] });
 * const { port } = await gw.listen('127.0.0.1', 0);
 */
export class Gateway {
  private readonly functions: FunctionInvoker;
  private readonly logger: Logger;
  private readonly authorizer?: Authorizer;
  private readonly limits: GatewayLimits;
  private readonly accessLog: boolean;
  private readonly paths: Readonly<PathOptions>;
  private readonly ids = new IdSource();
  private readonly metricsRegistry = new MetricsRegistry();
  private readonly carries = new Map<string, Map<string, unknown>>();
  private clusters = new Map<string, Cluster>();
  private snapshot: Snapshot = { table: new RouteTable<Chain>([]), clusters: new Map() };
  private listeners: Array<{ server: Server | Http2SecureServer; h2: Http2Server | Http2SecureServer; sockets?: Set<Socket> }> = [];
  private inFlight = 0;
  private readonly budget: BodyBudget;
  private readonly writes = new WriteBatch();
  private closing = false;
  private drained?: () => void;
  /** This node's mesh identity, presented only to Services with `tls.mode: ISTIO_MUTUAL` (see useIdentity). */
  private identity?: WorkloadIdentity | LazyIdentity;
  private readonly upstreams: UpstreamGuard;
  private readonly hostDirs: HostDirs;
  private readonly clusterEnv: ClusterEnv;
  /** Where sampled requests' spans go; undefined (tracing off) costs the request path nothing. */
  private tracer?: Tracer;
  /** The container and VM Functions' replicas, kept up to date by the workload controller. */
  readonly workloads: WorkloadTable;
  /** Every Function's gate: what the autoscaler samples, and the activator's queue at zero. */
  readonly scaling = new ScaleGates();
  /** In a cluster (useMesh): the Functions other nodes serve, and this node's place among them. */
  private mesh?: { remote: RemoteFunctions; trustDomain: string; node: string; chains: Map<string, Chain>; blobs?: (hex: string) => Promise<Uint8Array | undefined>; samples?: () => unknown };

  constructor(opts: GatewayOptions) {
    this.functions = opts.functions;
    this.logger = opts.logger.child({ component: 'gateway' });
    this.authorizer = opts.authorizer as Authorizer | undefined;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.accessLog = opts.accessLog !== false;
    this.paths = { ...DEFAULT_PATH_OPTIONS, ...opts.paths };
    if (!ESCAPED_SLASHES_ACTIONS.includes(this.paths.escapedSlashes)) throw new TypeError(`paths.escapedSlashes must be one of ${ESCAPED_SLASHES_ACTIONS.join(', ')}`);
    this.budget = { bufferedBytes: 0, maxBodyBytes: this.limits.maxBodyBytes };
    this.upstreams = opts.upstreams ?? UpstreamGuard.from([]);
    this.hostDirs = opts.hostDirs ?? HostDirs.none();
    this.clusterEnv = { upstreams: this.upstreams, logger: this.logger, tls: { hostDirs: this.hostDirs, identity: () => this.identity?.clientOptions() } };
    this.workloads = new WorkloadTable(this.metricsRegistry, this.clusterEnv);
  }

  /** listen starts the plain listener (HTTP/1.1 and h2c); port 0 picks a free port. */
  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    const handler = (req: IncomingMessage, res: ServerResponse) => this.handle(req, res);
    const server = createListener(this.limits, handler);
    const h2 = enableH2c(server, this.limits, handler);
    this.listeners.push({ server, h2 });
    return this.own(await bind(server, host, port));
  }

  /** own records a listener of this gateway so that no Service or JWKS URL can send traffic back into it. */
  private own(addr: { host: string; port: number }): { host: string; port: number } {
    this.upstreams.addOwnListener(addr);
    return addr;
  }

  /**
   * listenSecure starts a TLS listener (HTTP/2 and HTTP/1.1 by ALPN) presenting the workload
   * identity's certificate. Clients with a certificate from the internal CA are identified by their
   * SPIFFE ID (`peerIdentity`, usable by authorization policies); with `requireClientCert` other
   * clients are refused. Certificate rotation applies to new connections without dropping others.
   */
  async listenSecure(host: string, port: number, identity: WorkloadIdentity, opts: { requireClientCert?: boolean; acceptPeer?: (cert: PeerCertificate) => boolean } = {}): Promise<{ host: string; port: number }> {
    const server = createSecureListener(this.limits, identity.serverOptions(opts.requireClientCert === true), (req, res) => this.handle(req, res));
    identity.onRotate(() => server.setSecureContext(identity.serverOptions(opts.requireClientCert === true)));
    const sockets = new Set<Socket>();
    const accept = opts.acceptPeer;
    server.on('secureConnection', (s: TLSSocket) => {
      // A chain that verifies is not enough when the caller decides which holders are current: the
      // connection is closed in the handshake's own tick, before any request on it is read.
      if (accept && !(s.authorized && accept(s.getPeerCertificate()))) {
        s.destroy();
        return;
      }
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    this.listeners.push({ server, h2: server, sockets });
    return this.own(await bind(server, host, port));
  }

  /**
   * useIdentity gives the gateway this node's workload identity: Services with `tls.mode: ISTIO_MUTUAL`
   * present it, and only those (SIMPLE and MUTUAL never do). A LazyIdentity is made when the first
   * such connection opens, which waits for it.
   */
  useIdentity(identity: WorkloadIdentity | LazyIdentity): void {
    this.identity = identity;
  }

  /**
   * useMesh makes this gateway one node of a cluster: a Function with no healthy replica here is
   * forwarded over mutual TLS to another node's mesh listener (`remote`, fed with the other nodes'
   * EndpointSlices), and requests other nodes forward are served here. Call before the first update().
   * Node-to-node connections present this gateway's identity (useIdentity) and accept only node
   * identities of `trustDomain`; they bypass the operator's upstream grants, which are about what
   * routes may reach, not about the cluster's own nodes. With `blobs`, the mesh listener also serves
   * this node's uploaded modules by digest (MESH_BLOB_PATH) to other nodes, and only to them; with
   * `samples`, the autoscaler's view of this node's traffic (MESH_SAMPLES_PATH, as JSON), likewise.
   */
  useMesh(opts: { trustDomain: string; node: string; policy?: MeshPolicy; blobs?: (hex: string) => Promise<Uint8Array | undefined>; samples?: () => unknown }): RemoteFunctions {
    const env: ClusterEnv = { ...this.clusterEnv, upstreams: UpstreamGuard.permissive() };
    const remote = new RemoteFunctions(env, opts.trustDomain, (k) => this.metricsRegistry.upstream(k), opts.policy);
    this.mesh = { remote, trustDomain: opts.trustDomain, node: opts.node, chains: new Map(), blobs: opts.blobs, samples: opts.samples };
    return remote;
  }

  /** remoteFunctions is the cluster's view of other nodes (undefined outside a cluster). */
  get remoteFunctions(): RemoteFunctions | undefined {
    return this.mesh?.remote;
  }

  /**
   * useTracer turns tracing on (or off with undefined). Filter spans are wired when routes are
   * compiled, so call it before the first update().
   */
  useTracer(tracer: Tracer | undefined): void {
    this.tracer = tracer;
  }

  /**
   * update compiles and swaps the whole configuration. Objects that fail to compile are skipped and
   * reported; everything else takes effect for requests that start after the call.
   */
  update(config: GatewayConfig): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const report = (o: ResourceObject, message: string) => problems.push({ kind: o.kind, namespace: o.metadata.namespace ?? 'default', name: o.metadata.name, message });

    const clusters = new Map<string, Cluster>();
    for (const obj of config.services) {
      const { service, errors } = compileService(obj);
      if (!service) {
        report(obj, errors.map((e) => `${e.field}: ${e.message}`).join('; '));
        continue;
      }
      const key = `${service.namespace}/${service.name}`;
      const existing = this.clusters.get(key);
      if (existing) {
        existing.reconfigure(service);
        clusters.set(key, existing);
      } else clusters.set(key, new Cluster(service, this.metricsRegistry.upstream(key), Date.now, this.clusterEnv));
    }
    for (const [key, c] of this.clusters) if (!clusters.has(key)) void c.close();
    this.clusters = clusters;

    const groups: Array<{ hosts: string[]; entries: TableEntry<Chain>[] }> = [];
    const usedCarries = new Set<string>();
    for (const obj of [...config.routes].sort(creationOrder)) {
      const { route, errors } = compileRoute(obj);
      if (!route) {
        report(obj, errors.map((e) => `${e.field}: ${e.message}`).join('; '));
        continue;
      }
      try {
        const entries: TableEntry<Chain>[] = route.rules.map((rule) => {
          const key = `${rule.routeKey}#${rule.name}`;
          const stats = this.metricsRegistry.route(key);
          const handlers: Handler[] = rule.filters.map((decl) => {
            const carryKey = `${rule.routeKey} ${decl.field}`;
            usedCarries.add(carryKey);
            let carry = this.carries.get(carryKey);
            if (!carry) this.carries.set(carryKey, (carry = new Map()));
            const env: FilterEnv = { logger: this.logger, authorizer: this.authorizer, now: Date.now, where: `${rule.routeKey} ${decl.field}`, field: decl.field, carry, upstreams: this.upstreams, hostDirs: this.hostDirs };
            const h = FILTERS.get(decl.name)!.create(decl.config, env);
            return this.tracer && TRACED_FILTERS.has(decl.name) ? tracedFilter(decl.name, decl.config, h) : h;
          });
          const dispatch = createDispatch(rule, { functions: this.functions, clusters, workloads: this.workloads, scaling: this.scaling, remote: this.mesh?.remote, routeStats: stats, upstreamStats: (k) => this.metricsRegistry.upstream(k), logger: this.logger });
          // Without filters the dispatch is the chain, and an answer it has at once is written at once.
          return { rule, data: { run: handlers.length === 0 ? dispatch : compose(handlers, dispatch), stats, key } };
        });
        groups.push({ hosts: route.hosts, entries });
      } catch (err) {
        report(obj, `cannot set up the route's filters: ${(err as Error).message}`);
      }
    }
    // State kept for filters of routes that are gone (rate-limit buckets, JWKS caches) goes with them.
    for (const key of this.carries.keys()) if (!usedCarries.has(key)) this.carries.delete(key);
    this.snapshot = { table: new RouteTable(groups), clusters };
    return problems;
  }

  /** metrics returns the per-route and per-upstream counters and latency histograms. */
  metrics(): GatewayMetrics {
    return this.metricsRegistry.snapshot(this.inFlight);
  }

  /**
   * upstreamMetrics returns one upstream's counters (`fn:NAMESPACE/NAME` for a Function), without
   * copying every route's and upstream's as `metrics()` does: rollouts read one Function each interval.
   */
  upstreamMetrics(key: string): TrafficSnapshot | undefined {
    return this.metricsRegistry.upstreams.get(key)?.snapshot();
  }

  /**
   * meshCounters are the cluster's per-node counters: attempts forwarded to each node by status (or
   * `connect_error`, `reset`, `timeout`) as `NODE CODE` keys, and outlier ejections by node.
   */
  meshCounters(): { forwarded: ReadonlyMap<string, number>; ejections: ReadonlyMap<string, number> } | undefined {
    return this.mesh?.remote.counters;
  }

  /** clusterStates is each Service cluster's circuit-breaker and outlier state, by `namespace/name`. */
  clusterStates(): Map<string, ClusterState> {
    return new Map([...this.clusters].map(([k, c]) => [k, c.state()]));
  }

  /** close stops accepting connections, lets in-flight requests finish (up to `graceMs`), then closes everything. */
  async close(graceMs = 10_000): Promise<void> {
    this.closing = true;
    const closed = this.listeners.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve())));
    for (const l of this.listeners) {
      if ('closeIdleConnections' in l.server) l.server.closeIdleConnections();
      closeSessions(l.h2);
    }
    if (this.inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((r) => (this.drained = r)), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    // Answers finished this turn are still queued: write them before the connections go.
    this.writes.flush();
    for (const l of this.listeners) {
      if ('closeAllConnections' in l.server) l.server.closeAllConnections();
      closeSessions(l.h2, true);
      for (const s of l.sockets ?? []) s.destroy();
    }
    await Promise.all(closed);
    this.listeners = [];
    await Promise.all([...this.clusters.values()].map((c) => c.close()));
    await this.workloads.close();
    await this.mesh?.remote.close();
  }

  private shed(res: ServerResponse, why: string): void {
    this.metricsRegistry.shed++;
    this.logger.warn({ why }, 'shedding request');
    res.writeHead(503, res.req?.httpVersionMajor === 2 ? { 'content-type': 'text/plain', 'retry-after': '1' } : { 'content-type': 'text/plain', 'retry-after': '1', connection: 'close' });
    res.end('service overloaded, retry later\n');
  }

  /** handle serves one request; it never throws. */
  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.inFlight >= this.limits.maxInFlight) return this.shed(res, 'too many requests in flight');
    if (this.budget.bufferedBytes >= this.limits.maxBufferedBytes) return this.shed(res, 'too many buffered request bytes');
    const snap = this.snapshot;
    this.inFlight++;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const headers = req.headers;
    let target = q < 0 ? url : url.slice(0, q);
    // Matching, filters, logs and the upstream all see the normalised path; the query is left as sent.
    let path: string | PathRedirect | BadPathError;
    if (target.charCodeAt(0) === 47) path = normalizePath(target, this.paths);
    else {
      // Only HTTP/1.1 has the absolute form; HTTP/2's :path is always a path (or `*`).
      const form = req.httpVersionMajor < 2 ? originForm(target) : new BadPathError('the request target must be a path starting with /');
      if (form instanceof BadPathError) path = form;
      else {
        // RFC 9112 §3.2.2: the target's authority replaces Host, so routing and the upstream agree on it.
        if (form.authority !== undefined) headers.host = form.authority;
        target = form.path;
        path = normalizePath(target, this.paths);
      }
    }
    const rid = headers['x-request-id'];
    const ctx = new RequestContext(
      req,
      res,
      {
        path: typeof path === 'string' ? path : target,
        rawQuery: q < 0 ? '' : url.slice(q + 1),
        host: hostOf((headers.host ?? headers[':authority']) as string | undefined),
        requestId: typeof rid === 'string' && rid.length > 0 && rid.length <= 200 ? rid : this.ids.requestId(),
        trace: traceFrom(headers.traceparent as string | undefined, headers.tracestate as string | undefined, this.ids),
        timeoutMs: this.limits.defaultTimeoutMs,
        startedAt: performance.now(),
      },
      this.budget,
    );
    if (this.tracer !== undefined) startTrace(ctx, this.tracer);
    if ((req.socket as TLSSocket).encrypted || req.httpVersionMajor === 2) ctx.peerIdentity = peerOf(req);
    const forwarded = headers[FORWARDED_FUNCTION];
    if (forwarded !== undefined || headers[FORWARDED_CLIENT] !== undefined || headers[FORWARDED_PRINCIPAL] !== undefined) {
      if (this.fromNode(ctx)) {
        // Another node vouches for the original client: policies and Functions see that client's
        // address, and the forwarding node as the peer (source.principal).
        const client = headers[FORWARDED_CLIENT];
        if (typeof client === 'string' && isIP(client) !== 0) {
          ctx.remoteAddress = client;
          // The entry node appended the client to X-Forwarded-For already; this node appends
          // remoteAddress again on the way out, so the entry's last element goes.
          const xff = headers['x-forwarded-for'];
          if (typeof xff === 'string') {
            const cut = xff.lastIndexOf(',');
            if (xff.slice(cut + 1).trim() === client) headers['x-forwarded-for'] = cut < 0 ? undefined : xff.slice(0, cut);
          }
        }
        headers[FORWARDED_CLIENT] = undefined;
        if (typeof forwarded === 'string') {
          headers[FORWARDED_FUNCTION] = undefined;
          if (typeof path === 'string') return this.serveForwarded(ctx, forwarded);
        }
      } else {
        // From anyone but a node these are forgeries: removed before any filter, log or Function sees them.
        headers[FORWARDED_FUNCTION] = undefined;
        headers[FORWARDED_CLIENT] = undefined;
        headers[FORWARDED_PRINCIPAL] = undefined;
      }
    }
    // HTTP/2 frames its own writes per session; HTTP/1.x writes straight to the connection.
    if (req.httpVersionMajor < 2) ctx.writes = this.writes;
    // While draining, tell HTTP/1.1 clients not to reuse the connection (streamed answers included).
    if (this.closing && req.httpVersionMajor < 2) ctx.responseHeaderEdits.push(closeConnection);
    if (typeof path !== 'string') return this.refusePath(ctx, path);
    if (ctx.peerIdentity !== undefined && path.startsWith(MESH_BLOB_PATH) && this.mesh?.blobs !== undefined && this.fromNode(ctx)) return this.serveBlob(ctx, path.slice(MESH_BLOB_PATH.length), this.mesh.blobs);
    if (ctx.peerIdentity !== undefined && path === MESH_SAMPLES_PATH && this.mesh?.samples !== undefined && this.fromNode(ctx)) return this.serveSamples(ctx, this.mesh.samples);
    const hit = snap.table.lookup(ctx);
    if (!hit) {
      this.metricsRegistry.notFound++;
      this.writeBuffered(ctx, 404, { 'content-type': 'text/plain; charset=utf-8' }, 'no route matched\n');
      this.finish(ctx, 404, undefined);
      return;
    }
    ctx.matchedPrefix = hit.match?.prefix;
    this.serve(ctx, hit.entry.data);
  }

  /** fromNode: the request came over mutual TLS from a node identity of this cluster's trust domain. */
  private fromNode(ctx: RequestContext): boolean {
    return this.mesh !== undefined && ctx.peerIdentity !== undefined && isNodeId(ctx.peerIdentity, this.mesh.trustDomain);
  }

  /**
   * serveForwarded serves a request another node forwarded for the Function `NS/NAME`, with this
   * node's replicas only. No route is looked up and no filter runs: the entry node matched the route
   * and ran its chain (JWT, authz, rate limits) before choosing this node, and the mutual-TLS check
   * (a node certificate of the trust domain) is what this node re-checks. Running the chain again
   * would count rate limits twice and fetch JWKS on every node.
   */
  private serveForwarded(ctx: RequestContext, fn: string): void {
    const mesh = this.mesh!;
    ctx.forwardedBy = ctx.peerIdentity;
    const slash = fn.indexOf('/');
    const namespace = fn.slice(0, slash);
    const name = fn.slice(slash + 1);
    let chain = mesh.chains.get(fn);
    if (chain === undefined) {
      if (slash <= 0 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(fn) || fn.length > 317) {
        this.writeBuffered(ctx, 400, { 'content-type': 'text/plain; charset=utf-8' }, `bad request: ${FORWARDED_FUNCTION} must be NAMESPACE/NAME\n`);
        this.finish(ctx, 400, undefined);
        return;
      }
      const key = `mesh:${fn}#forwarded`;
      const stats = this.metricsRegistry.route(key);
      const run = functionDispatch(namespace, name, { functions: this.functions, clusters: this.snapshot.clusters, workloads: this.workloads, scaling: this.scaling, routeStats: stats, upstreamStats: (k) => this.metricsRegistry.upstream(k), logger: this.logger });
      chain = { run, stats, key };
      if (mesh.chains.size >= 4096) mesh.chains.clear();
      mesh.chains.set(fn, chain);
    }
    const w = this.workloads.get(fn);
    const here = w !== undefined ? w.healthy() : this.functions.has?.(namespace, name) ?? true;
    if (!here) return this.failed(ctx, chain, new NotServedHereError(fn, mesh.node));
    this.serve(ctx, chain);
  }

  /** serveBlob answers another node's request for an uploaded module by its sha256 hex digest. */
  private serveBlob(ctx: RequestContext, hex: string, blobs: (hex: string) => Promise<Uint8Array | undefined>): void {
    const text = { 'content-type': 'text/plain; charset=utf-8' };
    if (!/^[0-9a-f]{64}$/.test(hex) || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) {
      this.writeBuffered(ctx, 400, text, 'bad request: GET a sha256 hex digest\n');
      return this.finish(ctx, 400, undefined);
    }
    blobs(hex).then(
      (bytes) => {
        if (bytes === undefined) this.writeBuffered(ctx, 404, text, `blob sha256:${hex} is not on node ${this.mesh!.node}\n`);
        else this.writeBuffered(ctx, 200, { 'content-type': 'application/octet-stream' }, ctx.method === 'HEAD' ? '' : bytes);
        this.finish(ctx, bytes === undefined ? 404 : 200, undefined);
      },
      (err: unknown) => {
        this.logger.warn({ err: (err as Error).message, blob: hex }, 'serving a module to another node failed');
        this.writeBuffered(ctx, 500, text, 'internal error\n');
        this.finish(ctx, 500, undefined);
      },
    );
  }

  /** serveSamples answers another node's (the leader's) request for this node's autoscaler samples. */
  private serveSamples(ctx: RequestContext, samples: () => unknown): void {
    if (ctx.method !== 'GET') {
      this.writeBuffered(ctx, 405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET' }, 'method not allowed: GET the samples\n');
      return this.finish(ctx, 405, undefined);
    }
    let body: string;
    try {
      body = JSON.stringify({ node: this.mesh!.node, functions: samples() });
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'serving autoscaler samples to another node failed');
      this.writeBuffered(ctx, 500, { 'content-type': 'text/plain; charset=utf-8' }, 'internal error\n');
      return this.finish(ctx, 500, undefined);
    }
    this.writeBuffered(ctx, 200, { 'content-type': 'application/json', 'cache-control': 'no-store' }, body);
    this.finish(ctx, 200, undefined);
  }

  /** refusePath answers a path that cannot be normalised (400), or redirects to its decoded form. */
  private refusePath(ctx: RequestContext, why: PathRedirect | BadPathError): void {
    this.metricsRegistry.pathRefused(why instanceof PathRedirect ? 307 : why.status);
    if (why instanceof PathRedirect) {
      const location = ctx.rawQuery ? `${why.path}?${ctx.rawQuery}` : why.path;
      this.writeBuffered(ctx, 307, { location }, '');
      this.finish(ctx, 307, undefined);
      return;
    }
    this.writeBuffered(ctx, why.status, { 'content-type': 'text/plain; charset=utf-8' }, why.publicMessage);
    this.finish(ctx, why.status, undefined);
  }

  /**
   * serve runs the rule's chain and writes whatever the chain left to write; it never throws. A chain
   * that finished at once (a function that ran on this thread) is answered at once, without a promise.
   */
  private serve(ctx: RequestContext, chain: Chain): void {
    let pending: Promise<void> | undefined;
    try {
      pending = chain.run(ctx);
    } catch (err) {
      return this.failed(ctx, chain, err);
    }
    if (pending === undefined) return this.answer(ctx, chain);
    pending.then(
      () => this.answer(ctx, chain),
      (err) => this.failed(ctx, chain, err),
    );
  }

  private answer(ctx: RequestContext, chain: Chain): void {
    const res = ctx.res;
    try {
      const r = ctx.response;
      if (!res.headersSent && !res.writableEnded) {
        if (r) this.writeBuffered(ctx, r.status, r.headers, r.body);
        else this.writeBuffered(ctx, 500, { 'content-type': 'text/plain' }, 'internal error\n');
      }
    } catch (err) {
      return this.failed(ctx, chain, err);
    }
    this.finish(ctx, res.statusCode, chain);
  }

  private failed(ctx: RequestContext, chain: Chain, err: unknown): void {
    const res = ctx.res;
    let status = 500;
    let body = 'internal error\n';
    if (err instanceof GatewayError) {
      status = err.status;
      body = err.publicMessage;
    } else this.logger.error({ err, requestId: ctx.requestId, route: chain.key }, 'request failed');
    if (status === 499 || res.headersSent) res.destroy();
    else this.writeBuffered(ctx, status, { 'content-type': 'text/plain; charset=utf-8' }, body);
    this.finish(ctx, status, chain);
  }

  private writeBuffered(ctx: RequestContext, status: number, headers: OutgoingHeaders, body: Uint8Array | string): void {
    const h = responseHeaders(ctx, headers);
    const length = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
    h['content-length'] = String(length);
    ctx.responseBytes = length;
    if (this.closing && ctx.rawBody.httpVersionMajor < 2) h.connection = 'close';
    ctx.res.writeHead(status, h);
    if (ctx.writes) ctx.writes.end(ctx.res, body);
    else ctx.res.end(body);
  }

  private finish(ctx: RequestContext, status: number, chain: Chain | undefined): void {
    const end = performance.now();
    const us = (end - ctx.startedAt) * 1000;
    if (chain) {
      chain.stats.record(status, us);
      chain.stats.recordSizes(requestBytes(ctx), ctx.responseBytes);
    }
    if (ctx.tracer !== undefined) endTrace(ctx, ctx.tracer, status, chain?.key, end);
    ctx.releaseBody();
    if (this.accessLog && this.logger.isLevelEnabled('info')) {
      this.logger.info(
        {
          msg: 'access',
          method: ctx.method,
          path: ctx.path,
          host: ctx.host,
          status,
          durationUs: Math.round(us),
          requestId: ctx.requestId,
          trace_id: ctx.trace.traceId,
          span_id: ctx.trace.spanId,
          route: chain?.key,
          upstream: ctx.upstream,
          remoteAddress: ctx.remoteAddress,
        },
        'access',
      );
    }
    if (--this.inFlight === 0 && this.drained) this.drained();
  }
}

/**
 * requestBytes is the request body's size: what the gateway buffered, else the declared length. A
 * chunked body streamed to an upstream without buffering is not counted (its length is never known
 * to the gateway without a counting pass on the hot path).
 */
function requestBytes(ctx: RequestContext): number {
  if (ctx.body) return ctx.body.byteLength;
  const declared = ctx.rawBody.headers['content-length'];
  const n = declared === undefined ? 0 : Number(declared);
  return Number.isFinite(n) && n >= 0 ? n : 0;
}
