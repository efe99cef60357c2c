import type { Dispatcher } from 'undici';

import { AbortReason, type CancelToken } from '../cancel.js';
import type { GatewayContext } from '../context.js';
import { BadGatewayError, GatewayError, NoHealthyUpstreamError, OverloadedError, UpstreamTimeoutError } from '../errors.js';
import { backoffMs } from '../filters/retry/index.js';
import type { TrafficStats } from '../observability/metrics.js';

import { Attempt, type AttemptGroup, type Outcome } from './attempt.js';
import type { Cluster } from './cluster.js';
import type { Endpoint } from './endpoint.js';

export { HOP_BY_HOP, responseHeaders } from './attempt.js';
export { AbortReason };

const never = () => false;

function retriableFailure(ctx: GatewayContext, o: Outcome): boolean {
  const r = ctx.retry;
  if (!r || o.kind === 'committed') return false;
  if (o.kind === 'discarded') return true;
  switch (o.cause) {
    case 'connect':
      return r.onConnectFailure || r.onGatewayError;
    case 'reset':
      return r.onReset || r.onGatewayError;
    case 'per_try':
      return r.onGatewayError;
    default:
      return false;
  }
}

function retriableStatus(ctx: GatewayContext, status: number): boolean {
  const r = ctx.retry;
  if (!r) return false;
  return (r.on5xx && status >= 500) || (r.onGatewayError && status >= 502 && status <= 504) || r.retriableStatusCodes.has(status);
}

function errorFor(o: Outcome, cluster: Cluster): GatewayError {
  if (o.kind !== 'failed') return new BadGatewayError(`service ${cluster.key}`);
  switch (o.cause) {
    case 'deadline':
    case 'per_try':
      return new UpstreamTimeoutError(`service ${cluster.key}`);
    case 'connect':
      return new GatewayError('upstream_connect_error', 503, 'upstream connect error\n', `could not connect to service ${cluster.key}`, { cause: o.err });
    case 'client':
      return new GatewayError('client_closed', 499, '', 'client went away');
    default:
      return new BadGatewayError(`service ${cluster.key}`, o.err);
  }
}

const sleep = (ms: number, cancel: CancelToken) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      cancel.off(done);
      resolve();
    };
    const t = setTimeout(done, ms);
    cancel.on(done);
  });

/** ForwardOptions are the per-request inputs the dispatcher computed. */
export interface ForwardOptions {
  subset?: string;
  path: string;
  headers: Record<string, string | string[]>;
  body: Uint8Array | GatewayContext['rawBody'] | undefined;
  hashKey?: string;
  /** Cancelled at the route deadline or when the client goes away. */
  cancel: CancelToken;
  routeStats: TrafficStats;
}

/**
 * forward sends the request to one of the Service's endpoints and streams the answer to the client,
 * applying the circuit breaker, retries within the retry budget, hedging, and outlier detection.
 * It throws a GatewayError when no response could be delivered.
 */
export function forward(ctx: GatewayContext, cluster: Cluster, o: ForwardOptions): Promise<void> {
  if (ctx.retry || ctx.hedge) return forwardWithPolicies(ctx, cluster, o);
  // The common case (one attempt) avoids the async retry loop: it is most of the per-request cost here.
  if (!cluster.tryAcquire()) return Promise.reject(overloaded(ctx, cluster));
  const ep = cluster.pick(o.subset, o.hashKey);
  if (!ep) {
    cluster.release();
    return Promise.reject(new NoHealthyUpstreamError(cluster.key));
  }
  ctx.upstream = cluster.key;
  const options: Dispatcher.DispatchOptions = { path: o.path, method: ctx.method as Dispatcher.HttpMethod, headers: o.headers, body: o.body as Uint8Array | undefined };
  return new Attempt({ ctx, cluster, options, cancel: o.cancel, live: [] }, ep, never).start().then((out) => {
    cluster.release();
    if (out.kind !== 'committed') throw errorFor(out, cluster);
  });
}

function overloaded(ctx: GatewayContext, cluster: Cluster): GatewayError {
  ctx.responseHeaderEdits.push((h) => void (h['x-skiff-overloaded'] = 'true'));
  return new OverloadedError(`service ${cluster.key}: circuit breaker open`);
}

/** forwardWithPolicies is forward with retries (within the retry budget) and hedging. */
async function forwardWithPolicies(ctx: GatewayContext, cluster: Cluster, o: ForwardOptions): Promise<void> {
  if (!cluster.tryAcquire()) throw overloaded(ctx, cluster);
  ctx.upstream = cluster.key;
  const options: Dispatcher.DispatchOptions = { path: o.path, method: ctx.method as Dispatcher.HttpMethod, headers: o.headers, body: o.body as Uint8Array | undefined };
  const g: AttemptGroup = { ctx, cluster, options, cancel: o.cancel, live: [] };
  const maxAttempts = 1 + (ctx.retry?.attempts ?? 0);
  let last: Outcome | undefined;
  let prev: Endpoint | undefined;
  try {
    for (let n = 1; n <= maxAttempts; n++) {
      const isRetry = n > 1;
      if (isRetry) {
        cluster.activeRetries++;
        cluster.stats.retries++;
        await sleep(backoffMs(ctx.retry!, n - 1), o.cancel);
        if (o.cancel.cancelled) {
          cluster.activeRetries--;
          last = { kind: 'failed', cause: o.cancel.reason!.why, err: o.cancel.reason };
          break;
        }
      }
      try {
        const ep = cluster.pick(o.subset, o.hashKey, prev);
        if (!ep) throw new NoHealthyUpstreamError(cluster.key);
        prev = ep;
        const lastTry = n === maxAttempts;
        const mayDiscard = lastTry || !ctx.retry ? never : (status: number) => retriableStatus(ctx, status) && cluster.canRetry();
        const replayable = !o.body || o.body instanceof Uint8Array;
        last = ctx.hedge && !isRetry && replayable ? await hedged(g, ep, o, mayDiscard) : await new Attempt(g, ep, mayDiscard).start();
      } finally {
        if (isRetry) cluster.activeRetries--;
      }
      if (last.kind === 'committed') return;
      if (n === maxAttempts || !retriableFailure(ctx, last) || (last.kind === 'failed' && !cluster.canRetry())) break;
    }
    throw errorFor(last ?? { kind: 'failed', cause: 'deadline', err: undefined }, cluster);
  } finally {
    cluster.release();
  }
}

async function hedged(g: AttemptGroup, ep: Endpoint, o: ForwardOptions, mayDiscard: (status: number) => boolean): Promise<Outcome> {
  const h = g.ctx.hedge!;
  const p95 = o.routeStats.latency.quantile(0.95);
  const delay = h.delayMs ?? Math.max(h.minDelayMs, p95 === undefined ? Infinity : p95 / 1000);
  const first = new Attempt(g, ep, mayDiscard).start();
  if (!Number.isFinite(delay)) return first;
  let timer: NodeJS.Timeout | undefined;
  const fired = await Promise.race([first.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(r, delay, true)))]);
  clearTimeout(timer);
  if (!fired || g.winner || g.cancel.cancelled) return first;
  g.cluster.stats.hedges++;
  const ep2 = g.cluster.pick(o.subset, o.hashKey, ep) ?? ep;
  const second = new Attempt(g, ep2, mayDiscard, true).start();
  const [i, won] = await Promise.race([first.then((x) => [0, x] as const), second.then((x) => [1, x] as const)]);
  if (won.kind === 'committed') return won;
  // The earlier finisher failed or was discarded; the other attempt decides.
  return i === 0 ? second : first;
}
