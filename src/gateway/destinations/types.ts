import type { Logger } from 'pino';

import type { ScaleGate } from '../activator.js';
import type { CancelToken } from '../cancel.js';
import type { GatewayContext } from '../context.js';
import type { TrafficStats } from '../observability/metrics.js';
import type { FunctionInvoker } from '../types.js';
import type { Cluster } from '../upstream/cluster.js';

/**
 * Destination is one place a rule sends requests to: a Function (function.ts), a Service
 * (service.ts), a mirror's shadow copy (mirror.ts), or a fixed answer (fixed.ts). `send` answers now
 * or later, as a rule's Dispatch does (context.ts): it returns undefined when the answer is already
 * in `ctx.response`, else a promise that settles once the answer is there or streamed to the client,
 * and rejects when the request must end in an error (a GatewayError's status, else 500). It never
 * throws. `cancel` fires at the deadline or when the client goes away; the dispatcher owns the
 * deadline timer.
 */
export interface Destination {
  send(ctx: GatewayContext, path: string, cancel: CancelToken): Promise<void> | undefined;
}

/** DestinationDeps are what destinations need from the gateway's current configuration. */
export interface DestinationDeps {
  functions: FunctionInvoker;
  clusters: ReadonlyMap<string, Cluster>;
  routeStats: TrafficStats;
  /** Stats per upstream, for Function destinations (`fn:namespace/name`). */
  upstreamStats: (key: string) => TrafficStats;
  logger: Logger;
  /**
   * The container and VM Functions by `namespace/name` (workloads.ts): a Function found here is sent
   * to its replicas through the upstream machinery; one not found runs through `functions`.
   */
  workloads?: { get(key: string): WorkloadSender | undefined };
  /** The Functions' gates by `namespace/name` (activator.ts): counted for the autoscaler, held at zero replicas. */
  scaling?: { get(key: string): ScaleGate | undefined };
  /**
   * In a cluster, the Functions other nodes serve by `namespace/name` (cluster/remote-functions.ts):
   * a Function with no healthy replica on this node is forwarded to one of them.
   */
  remote?: { get(key: string): RemoteSender | undefined };
}

/** RemoteSender forwards a request to another node serving the Function. */
export interface RemoteSender {
  readonly available: boolean;
  send(ctx: GatewayContext, path: string, cancel: CancelToken, routeStats: TrafficStats): Promise<void>;
}

/** WorkloadSender forwards a request to a container or VM Function's replicas. */
export interface WorkloadSender {
  /** Whether a replica is ready and not ejected by outlier detection. */
  healthy(): boolean;
  send(ctx: GatewayContext, path: string, cancel: CancelToken, routeStats: TrafficStats): Promise<void>;
}
