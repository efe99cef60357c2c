import type { CancelToken } from '../cancel.js';
import type { GatewayContext } from '../context.js';
import { NoHealthyUpstreamError } from '../errors.js';
import type { DestinationRef } from '../router/compile-route.js';
import { forward, type ForwardOptions } from '../upstream/forward.js';

import { cookie, hasBody, upstreamHeaders } from './request.js';
import type { Destination, DestinationDeps } from './types.js';

/** ServiceRef names a Service destination (optionally a version subset). */
export type ServiceRef = Extract<DestinationRef, { kind: 'service' }>;

/**
 * ServiceDestination forwards a request to one of a Service's endpoints through its cluster (see
 * upstream/forward.ts: balancing, circuit breaker, retries, hedging, outlier detection) and streams
 * the answer to the client. It always answers later. The body streams through unless a retry, a
 * hedge or an earlier reader needs it buffered.
 */
export class ServiceDestination implements Destination {
  private readonly key: string;

  constructor(private readonly dest: ServiceRef, private readonly deps: DestinationDeps) {
    this.key = `${dest.namespace}/${dest.name}`;
  }

  // Deliberately not async: the upstream path is the hot one and each async layer costs a promise.
  send(ctx: GatewayContext, path: string, cancel: CancelToken): Promise<void> {
    const headers = upstreamHeaders(ctx);
    const cluster = this.deps.clusters.get(this.key);
    if (!cluster) return Promise.reject(new NoHealthyUpstreamError(this.key));
    const lb = cluster.spec.loadBalancer;
    const hashKey = lb.kind !== 'consistent_hash' ? undefined : lb.header ? (ctx.headers[lb.header] as string | undefined) : cookie(ctx, lb.cookie!);
    const fullPath = ctx.rawQuery ? `${path}?${ctx.rawQuery}` : path;
    const opts = { subset: this.dest.subset, path: fullPath, headers, body: undefined as ForwardOptions['body'], hashKey, cancel, routeStats: this.deps.routeStats };
    if (!hasBody(ctx)) return forward(ctx, cluster, opts);
    const replay = ctx.retry !== undefined || ctx.hedge !== undefined || ctx.body !== undefined;
    if (!replay) {
      opts.body = ctx.rawBody;
      return forward(ctx, cluster, opts);
    }
    return ctx.readBody().then((body) => {
      opts.body = body;
      return forward(ctx, cluster, opts);
    });
  }
}

/**
 * ServiceShadow sends a mirror's copy of a request to one endpoint of a Service, once, and throws the
 * answer away: no retries, no circuit breaker or outlier bookkeeping, no stats (shadow traffic must
 * not change how the primary traffic is served). It always answers later.
 */
export class ServiceShadow implements Destination {
  private readonly key: string;

  constructor(private readonly dest: ServiceRef, private readonly deps: DestinationDeps) {
    this.key = `${dest.namespace}/${dest.name}`;
  }

  send(ctx: GatewayContext, path: string, cancel: CancelToken): Promise<void> {
    return this.shadow(ctx, path, cancel.signal);
  }

  private async shadow(ctx: GatewayContext, path: string, signal: AbortSignal): Promise<void> {
    const cluster = this.deps.clusters.get(this.key);
    const ep = cluster?.pick(this.dest.subset, undefined);
    if (!cluster || !ep) return;
    const r = await cluster.pool(ep).request({ path: ctx.rawQuery ? `${path}?${ctx.rawQuery}` : path, method: ctx.method as 'GET', headers: upstreamHeaders(ctx), body: ctx.body && ctx.body.length > 0 ? ctx.body : undefined, signal });
    await r.body.dump();
  }
}
