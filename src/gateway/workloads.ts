import type { CancelToken } from './cancel.js';
import type { GatewayContext } from './context.js';
import { cookie, hasBody, upstreamHeaders } from './destinations/request.js';
import { GatewayError } from './errors.js';
import type { MetricsRegistry } from './observability/metrics.js';
import type { TrafficStats } from './observability/metrics.js';
import { Cluster, type ClusterEnv } from './upstream/cluster.js';
import { forward, type ForwardOptions } from './upstream/forward.js';
import type { EndpointSpec, ServiceSpec } from './upstream/service-spec.js';

/** WorkloadEndpoint is one ready replica of a container or VM Function. */
export type WorkloadEndpoint = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** NoReplicaError: a container or VM Function has no ready replica (503); the activator (activator.ts) waited for one before. */
export class NoReplicaError extends GatewayError {
  constructor(fn: string, why: string) {
    super('no_ready_replica', 503, 'no ready replica\n', `function ${fn} has no ready replica: ${why}`);
  }
}

/** The traffic policy every workload cluster gets: the replicas are ours, so failures are ejected fast. */
function workloadSpec(namespace: string, name: string, endpoints: EndpointSpec[]): ServiceSpec {
  return {
    namespace,
    name,
    endpoints,
    internal: true,
    loadBalancer: { kind: 'least_request' },
    connectionPool: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, connectTimeoutMs: 5_000, idleTimeoutMs: 30_000 },
    outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 3, baseEjectionMs: 5_000, maxEjectionMs: 60_000, maxEjectionPercent: 50 },
    retryBudget: { percent: 20, minRetryConcurrency: 3 },
  };
}

/**
 * Workload is one container or VM Function as the gateway sees it: a Cluster whose endpoints are
 * its ready replicas (so balancing, outlier detection, retries and hedging work as for a Service),
 * sent to only once the activator (activator.ts) has a ready replica.
 */
export class Workload {
  readonly cluster: Cluster;

  constructor(readonly key: string, spec: ServiceSpec, stats: TrafficStats, env: ClusterEnv) {
    this.cluster = new Cluster(spec, stats, Date.now, env);
  }

  /** healthy: some replica is ready and not ejected (locality first: a cluster prefers these to other nodes). */
  healthy(): boolean {
    const n = this.cluster.endpoints.length;
    return n > 0 && this.cluster.state().ejected < n;
  }

  /**
   * send forwards a request to a ready replica. It always answers later (see Destination in
   * destinations/types.ts). The activator let the request through when a replica was ready; one that
   * stopped since gets 503.
   */
  send(ctx: GatewayContext, path: string, cancel: CancelToken, routeStats: TrafficStats): Promise<void> {
    if (this.cluster.endpoints.length > 0) return this.forward(ctx, path, cancel, routeStats);
    return Promise.reject(new NoReplicaError(this.key, 'the replica it was sent to stopped before it could answer'));
  }

  private forward(ctx: GatewayContext, path: string, cancel: CancelToken, routeStats: TrafficStats): Promise<void> {
    const lb = this.cluster.spec.loadBalancer;
    const hashKey = lb.kind !== 'consistent_hash' ? undefined : lb.header ? (ctx.headers[lb.header] as string | undefined) : cookie(ctx, lb.cookie!);
    const opts: ForwardOptions = { subset: undefined, path: ctx.rawQuery ? `${path}?${ctx.rawQuery}` : path, headers: upstreamHeaders(ctx), body: undefined, hashKey, cancel, routeStats };
    if (!hasBody(ctx)) return forward(ctx, this.cluster, opts);
    if (ctx.retry === undefined && ctx.hedge === undefined && ctx.body === undefined) {
      opts.body = ctx.rawBody;
      return forward(ctx, this.cluster, opts);
    }
    return ctx.readBody().then((body) => {
      opts.body = body;
      return forward(ctx, this.cluster, opts);
    });
  }
}

/**
 * WorkloadTable holds the container and VM Functions the gateway can send to, by `namespace/name`.
 * The owner of the replicas (the workload controller) sets a Function's ready endpoints whenever they
 * change; Function destinations look their Function up here on each request, so a Function that
 * changes class is served the new way at once. Wasm Functions are never here.
 */
export class WorkloadTable {
  private readonly byKey = new Map<string, Workload>();

  constructor(private readonly metrics: MetricsRegistry, private readonly env: ClusterEnv) {}

  get(key: string): Workload | undefined {
    return this.byKey.get(key);
  }

  /** set publishes a Function's ready replicas (possibly none). */
  set(namespace: string, name: string, endpoints: readonly WorkloadEndpoint[]): void {
    const key = `${namespace}/${name}`;
    const specs: EndpointSpec[] = endpoints.map((e) => (e.kind === 'unix' ? { address: 'localhost', port: 0, socketPath: e.path, weight: 1 } : { address: e.host, port: e.port, weight: 1 }));
    const spec = workloadSpec(namespace, name, specs);
    let w = this.byKey.get(key);
    if (w) w.cluster.reconfigure(spec);
    else this.byKey.set(key, (w = new Workload(key, spec, this.metrics.upstream(`fn:${key}`), this.env)));
  }

  /** remove forgets a Function (deleted, or back to wasm) and closes its connections. */
  remove(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const w = this.byKey.get(key);
    if (!w) return;
    this.byKey.delete(key);
    void w.cluster.close();
  }

  async close(): Promise<void> {
    await Promise.all([...this.byKey.values()].map((w) => w.cluster.close()));
    this.byKey.clear();
  }
}
