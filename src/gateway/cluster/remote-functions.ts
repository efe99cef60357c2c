import type { CancelToken } from '../cancel.js';
import type { GatewayContext, RetryPolicy } from '../context.js';
import { hasBody, upstreamHeaders } from '../destinations/request.js';
import type { TrafficStats } from '../observability/metrics.js';
import { Cluster, type ClusterEnv, type ClusterObserver } from '../upstream/cluster.js';
import type { Endpoint } from '../upstream/endpoint.js';
import { forward, type ForwardOptions } from '../upstream/forward.js';
import type { EndpointSpec, ServiceSpec } from '../upstream/service-spec.js';

/**
 * The headers one node's gateway adds when it forwards a request to another node's mesh listener.
 * They are believed only on a mutual-TLS connection from a node identity of the trust domain; from
 * anyone else (the plain listener, a workload certificate) they are removed before routing.
 */
export const FORWARDED_FUNCTION = 'x-skiff-forwarded-function';
/** The original client's address, as the entry node saw it. */
export const FORWARDED_CLIENT = 'x-skiff-forwarded-client';
/** The original client's SPIFFE ID, when it came over mutual TLS to the entry node. */
export const FORWARDED_PRINCIPAL = 'x-skiff-forwarded-principal';

/**
 * MESH_BLOB_PATH is where a node's mesh listener serves its uploaded modules by digest
 * (`MESH_BLOB_PATH + HEX`) to other nodes, and to nothing else.
 */
export const MESH_BLOB_PATH = '/_skiff/blobs/sha256/';

/**
 * MESH_SAMPLES_PATH is where a node's mesh listener serves its own gates' latest autoscaler samples
 * (JSON) to other nodes, and to nothing else: the leader adds them to its own before deciding.
 */
export const MESH_SAMPLES_PATH = '/_skiff/autoscaler/samples';

/** NodeEndpoint is one other node that serves a Function: its mesh listener and how many ready replicas it has there. */
export interface NodeEndpoint {
  node: string;
  host: string;
  port: number;
  /** Ready replicas (endpoints) of the Function on that node; the node's balancing weight. */
  ready: number;
}

/** MeshPolicy tunes the node-to-node clusters: how fast a failing node is ejected and for how long. */
export interface MeshPolicy {
  connectTimeoutMs: number;
  /** Consecutive connect failures, resets and 502-504 answers that eject a node. */
  consecutiveGatewayErrors: number;
  /** Consecutive 5xx answers of any kind that eject a node. */
  consecutive5xx: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  /** Retries to another node after a connect failure, or after a reset of an idempotent request. */
  retries: number;
}

/**
 * DEFAULT_MESH_POLICY: a node that refuses connections twice in a row is skipped at once (its
 * heartbeat would take tens of seconds to expire), for a base ejection that grows with each new
 * ejection; one retry to another node hides the failure from the client that met it.
 */
export const DEFAULT_MESH_POLICY: MeshPolicy = { connectTimeoutMs: 2_000, consecutiveGatewayErrors: 2, consecutive5xx: 5, baseEjectionMs: 10_000, maxEjectionMs: 300_000, retries: 1 };

// RFC 9110 §9.2.2: what may be sent twice without changing the outcome.
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** meshRetry is the retry policy of a forwarded request whose route sets none, as Envoy's `retry_on: connect-failure,reset`. */
function meshRetry(method: string, retries: number): RetryPolicy {
  return { attempts: retries, onConnectFailure: true, onReset: IDEMPOTENT.has(method), on5xx: false, onGatewayError: false, retriableStatusCodes: new Set(), baseIntervalMs: 2, maxIntervalMs: 20 };
}

/** NodeCounters are the mesh's per-node counters: forwarded attempts by code, and ejections. */
export class NodeCounters {
  /** `NODE CODE` → attempts. */
  readonly forwarded = new Map<string, number>();
  /** NODE → ejections. */
  readonly ejections = new Map<string, number>();

  attempt(node: string, code: string): void {
    const k = `${node} ${code}`;
    this.forwarded.set(k, (this.forwarded.get(k) ?? 0) + 1);
  }

  ejected(node: string): void {
    this.ejections.set(node, (this.ejections.get(node) ?? 0) + 1);
  }
}

/**
 * RemoteFunction is one Function as served by other nodes: a Cluster (the same balancing, retries,
 * outlier detection and ISTIO_MUTUAL connections as a Service) whose endpoints are those nodes' mesh
 * listeners, weighted by their ready replicas.
 */
export class RemoteFunction implements ClusterObserver {
  readonly cluster: Cluster;
  /** Endpoint key (`host:port`) → node name. */
  private nodes = new Map<string, string>();

  constructor(readonly key: string, spec: ServiceSpec, stats: TrafficStats, env: ClusterEnv, private readonly counters: NodeCounters, private readonly policy: MeshPolicy) {
    this.cluster = new Cluster(spec, stats, Date.now, env);
    this.cluster.observer = this;
  }

  reconfigure(spec: ServiceSpec, nodes: Map<string, string>): void {
    this.nodes = nodes;
    this.cluster.reconfigure(spec);
  }

  attempt(e: Endpoint, code: string): void {
    this.counters.attempt(this.nodes.get(e.key) ?? e.key, code);
  }

  ejected(e: Endpoint): void {
    this.counters.ejected(this.nodes.get(e.key) ?? e.key);
  }

  /** available: some node is known to serve the Function (ejected ones included: with all of them ejected the cluster spreads over all). */
  get available(): boolean {
    return this.cluster.endpoints.length > 0;
  }

  /** send forwards the request to one of the nodes; it always answers later. */
  send(ctx: GatewayContext, path: string, cancel: CancelToken, routeStats: TrafficStats): Promise<void> {
    const headers = upstreamHeaders(ctx);
    headers[FORWARDED_FUNCTION] = this.key;
    headers[FORWARDED_CLIENT] = ctx.remoteAddress;
    if (ctx.peerIdentity !== undefined) headers[FORWARDED_PRINCIPAL] = ctx.peerIdentity;
    ctx.retry ??= meshRetry(ctx.method, this.policy.retries);
    const opts: ForwardOptions = { subset: undefined, path: ctx.rawQuery ? `${path}?${ctx.rawQuery}` : path, headers, body: undefined, cancel, routeStats };
    if (!hasBody(ctx)) return forward(ctx, this.cluster, opts);
    // A retry to another node must replay the body, so it is read whole first.
    return ctx.readBody().then((body) => {
      opts.body = body;
      return forward(ctx, this.cluster, opts);
    });
  }
}

/**
 * RemoteFunctions holds, by `namespace/name`, the Functions other nodes serve, as the owner of the
 * EndpointSlices (the composition root's informer) reports them. A Function destination asks it only
 * when this node has no ready replica of its own.
 */
export class RemoteFunctions {
  private readonly byKey = new Map<string, RemoteFunction>();
  readonly counters = new NodeCounters();

  constructor(
    private readonly env: ClusterEnv,
    private readonly trustDomain: string,
    private readonly stats: (key: string) => TrafficStats,
    readonly policy: MeshPolicy = DEFAULT_MESH_POLICY,
  ) {}

  get(key: string): RemoteFunction | undefined {
    return this.byKey.get(key);
  }

  /** set publishes the other nodes serving a Function (those with no ready replica are left out); an empty list forgets it. */
  set(namespace: string, name: string, nodes: readonly NodeEndpoint[]): void {
    const key = `${namespace}/${name}`;
    const serving = nodes.filter((n) => n.ready > 0);
    if (serving.length === 0) return this.remove(namespace, name);
    const endpoints: EndpointSpec[] = serving.map((n) => ({ address: n.host.replace(/^\[|\]$/g, ''), port: n.port, weight: Math.min(1000, n.ready) }));
    const byEndpoint = new Map(serving.map((n, i) => [endpointKey(endpoints[i]!), n.node]));
    const spec = this.spec(namespace, name, endpoints);
    const existing = this.byKey.get(key);
    if (existing) existing.reconfigure(spec, byEndpoint);
    else {
      const r = new RemoteFunction(key, spec, this.stats(`mesh:${key}`), this.env, this.counters, this.policy);
      r.reconfigure(spec, byEndpoint);
      this.byKey.set(key, r);
    }
  }

  remove(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const r = this.byKey.get(key);
    if (!r) return;
    this.byKey.delete(key);
    void r.cluster.close();
  }

  /** keys lists the Functions other nodes serve. */
  keys(): string[] {
    return [...this.byKey.keys()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.byKey.values()].map((r) => r.cluster.close()));
    this.byKey.clear();
  }

  private spec(namespace: string, name: string, endpoints: EndpointSpec[]): ServiceSpec {
    const p = this.policy;
    return {
      namespace,
      name,
      endpoints,
      tls: { mode: 'ISTIO_MUTUAL', nodesOf: this.trustDomain },
      loadBalancer: { kind: 'least_request' },
      connectionPool: { maxConnections: 256, maxPendingRequests: 1024, maxRequests: 4096, connectTimeoutMs: p.connectTimeoutMs, idleTimeoutMs: 60_000 },
      // Every node may be ejected: with all of them out the cluster's panic mode spreads over all again.
      outlierDetection: { consecutive5xx: p.consecutive5xx, consecutiveGatewayErrors: p.consecutiveGatewayErrors, baseEjectionMs: p.baseEjectionMs, maxEjectionMs: p.maxEjectionMs, maxEjectionPercent: 100 },
      retryBudget: { percent: 20, minRetryConcurrency: 3 },
    };
  }
}

function endpointKey(e: EndpointSpec): string {
  return `${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}`;
}
