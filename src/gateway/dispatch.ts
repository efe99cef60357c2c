import type { GatewayContext, Handler, OutgoingHeaders } from './context.js';
import type { CompiledRule, DestinationRef } from './router/compile-route.js';
import { replaceAll } from './router/values.js';
import type { Cluster } from './upstream/cluster.js';
import { forward, HOP_BY_HOP, type ForwardOptions } from './upstream/forward.js';
import { AbortReason, CancelToken } from './cancel.js';
import { GatewayError, NoHealthyUpstreamError, UpstreamTimeoutError, statusForInvokerError } from './errors.js';
import type { FunctionInvoker, FunctionResponse, GatewayRequest } from './types.js';
import type { TrafficStats } from './observability/metrics.js';
import { formatTraceparent } from './observability/trace.js';
import type { Logger } from 'pino';

/** DispatchDeps are what the terminal step needs from the gateway's current configuration. */
export interface DispatchDeps {
  functions: FunctionInvoker;
  clusters: ReadonlyMap<string, Cluster>;
  routeStats: TrafficStats;
  /** Stats per upstream, for Function destinations (`fn:namespace/name`). */
  upstreamStats: (key: string) => TrafficStats;
  logger: Logger;
}

/** Handed to invokers that declare they ignore their signal; nothing ever aborts it. */
const NEVER_ABORTED: AbortSignal = new AbortController().signal;

/**
 * untilCancelled settles with the invocation, or rejects as soon as the request is cancelled (route
 * deadline, client gone): the answer must not wait for a function that ignores cancellation (a guest
 * cannot be interrupted; its own deadline stops it, and its late result is dropped).
 */
function untilCancelled<T>(p: Promise<T>, cancel: CancelToken): Promise<T> {
  if (cancel.reason) return Promise.reject(cancel.reason);
  return new Promise<T>((resolve, reject) => {
    const listener = { onCancel: reject };
    cancel.on(listener);
    p.then(
      (v) => {
        cancel.off(listener);
        resolve(v);
      },
      (err) => {
        cancel.off(listener);
        reject(err);
      },
    );
  });
}

function expire(cancel: CancelToken): void {
  cancel.cancel(new AbortReason('deadline'));
}

/**
 * upstreamHeaders prepares the request headers for a Function or upstream in place (they are ours):
 * hop-by-hop and HTTP/2 pseudo-headers are blanked (undici skips undefined values), forwarding and
 * tracing headers are added.
 */
export function upstreamHeaders(ctx: GatewayContext): Record<string, string | string[]> {
  const h = ctx.headers;
  const conn = h.connection;
  // Headers named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
  if (typeof conn === 'string' && conn !== 'keep-alive' && conn !== 'close') for (const name of conn.toLowerCase().split(',')) h[name.trim()] = undefined;
  for (const k in h) if (h[k] !== undefined && (HOP_BY_HOP.has(k) || k.charCodeAt(0) === 58)) h[k] = undefined;
  const xff = h['x-forwarded-for'];
  h['x-forwarded-for'] = xff ? `${xff}, ${ctx.remoteAddress}` : ctx.remoteAddress;
  if (!h['x-forwarded-proto']) h['x-forwarded-proto'] = ctx.peerIdentity !== undefined ? 'https' : 'http';
  h['x-request-id'] = ctx.requestId;
  h.traceparent = formatTraceparent(ctx.trace);
  h.tracestate = ctx.trace.tracestate;
  if (h.host === undefined && ctx.host) h.host = ctx.host;
  return h as Record<string, string | string[]>;
}

/** definedHeaders drops blanked entries, for consumers (Functions) that expect only strings. */
function definedHeaders(h: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in h) {
    const v = h[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function hasBody(ctx: GatewayContext): boolean {
  const h = ctx.headers;
  if ((h['content-length'] !== undefined && h['content-length'] !== '0') || h['transfer-encoding'] !== undefined) return true;
  // HTTP/2 bodies need no Content-Length: whether one follows is only known from the stream.
  const raw = ctx.rawBody as { httpVersionMajor?: number; readableEnded?: boolean };
  return raw.httpVersionMajor === 2 && !raw.readableEnded && ctx.method !== 'GET' && ctx.method !== 'HEAD';
}

function toOutgoing(pairs: Array<[string, string]>): OutgoingHeaders {
  const out: OutgoingHeaders = {};
  for (const [k0, v] of pairs) {
    const k = k0.toLowerCase();
    if (k === 'content-length') continue;
    const cur = out[k];
    out[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  return out;
}

function cookie(ctx: GatewayContext, name: string): string | undefined {
  const c = ctx.headers.cookie;
  const s = Array.isArray(c) ? c.join('; ') : c;
  if (!s) return undefined;
  for (const part of s.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/**
 * createDispatch builds a rule's terminal step: redirect, direct response, or rewrite then send to
 * one of the weighted destinations (a Function through the invoker, a Service through its cluster),
 * with the route's deadline, and mirror a copy when asked.
 */
export function createDispatch(rule: CompiledRule, deps: DispatchDeps): Handler {
  const dests = rule.destinations;
  const cumulative: number[] = [];
  let acc = 0;
  for (const d of dests) cumulative.push((acc += d.weight));
  const choose = (): DestinationRef => {
    if (dests.length === 1) return dests[0]!.destination;
    const r = Math.random() * acc;
    for (let i = 0; i < cumulative.length; i++) if (r < cumulative[i]!) return dests[i]!.destination;
    return dests[dests.length - 1]!.destination;
  };
  const rw = rule.rewrite;
  const redirect = rule.redirect;
  const direct = rule.directResponse;
  const mirror = rule.mirror;

  // The upstream name and its counters per function destination, looked up once rather than per request.
  const fnUpstreams = new Map<DestinationRef, { key: string; stats: ReturnType<DispatchDeps['upstreamStats']> }>();

  /**
   * sendToFunction runs the request through the function and leaves its answer (or the error's) in
   * ctx.response. It returns nothing when the function answered at once (it ran on this thread; see
   * the invoker's `call`), else a promise.
   */
  const sendToFunction = (ctx: GatewayContext, dest: Extract<DestinationRef, { kind: 'function' }>, path: string, cancel: CancelToken): Promise<void> | void => {
    const body = ctx.bodyNow?.();
    if (body === undefined) return ctx.readBody().then((b) => sendToFunctionWith(ctx, dest, path, cancel, b));
    return sendToFunctionWith(ctx, dest, path, cancel, body);
  };

  const sendToFunctionWith = (ctx: GatewayContext, dest: Extract<DestinationRef, { kind: 'function' }>, path: string, cancel: CancelToken, body: Uint8Array): Promise<void> | void => {
    const headers = upstreamHeaders(ctx);
    const req: GatewayRequest = {
      method: ctx.method,
      path,
      rawQuery: ctx.rawQuery,
      headers: definedHeaders(headers),
      body,
      remoteAddress: ctx.remoteAddress,
      requestId: ctx.requestId,
      traceparent: headers.traceparent as string,
    };
    let up = fnUpstreams.get(dest);
    if (!up) {
      const key = `fn:${dest.namespace}/${dest.name}`;
      fnUpstreams.set(dest, (up = { key, stats: deps.upstreamStats(key) }));
    }
    ctx.upstream = up.key;
    const stats = up.stats;
    const t0 = performance.now();
    const fns = deps.functions;
    const signal = fns.ignoresSignal ? NEVER_ABORTED : cancel.toSignal();
    let r: FunctionResponse | Promise<FunctionResponse>;
    try {
      r = fns.call ? fns.call(dest.namespace, dest.name, req, signal) : fns.invoke(dest.namespace, dest.name, req, signal);
    } catch (err) {
      return functionFailed(ctx, dest, stats, t0, cancel, err);
    }
    if (r instanceof Promise) {
      return untilCancelled(r, cancel).then(
        (res) => functionAnswered(ctx, dest, stats, t0, cancel, res),
        (err) => functionFailed(ctx, dest, stats, t0, cancel, err),
      );
    }
    functionAnswered(ctx, dest, stats, t0, cancel, r);
  };

  const functionAnswered = (ctx: GatewayContext, dest: Extract<DestinationRef, { kind: 'function' }>, stats: TrafficStats, t0: number, cancel: CancelToken, r: FunctionResponse): void => {
    if (cancel.reason) return functionFailed(ctx, dest, stats, t0, cancel, cancel.reason);
    ctx.response = { status: r.status, headers: toOutgoing(r.headers), body: r.body };
    stats.record(r.status, (performance.now() - t0) * 1000);
  };

  /** functionFailed answers for a failed invocation, or throws when the client left or the deadline passed. */
  const functionFailed = (ctx: GatewayContext, dest: Extract<DestinationRef, { kind: 'function' }>, stats: TrafficStats, t0: number, cancel: CancelToken, err: unknown): void => {
    stats.record(cancel.reason?.why === 'deadline' ? 504 : statusForInvokerError(err, dest.name).status, (performance.now() - t0) * 1000);
    if (cancel.reason) {
      if (cancel.reason.why === 'client') throw new GatewayError('client_closed', 499, '', 'client went away');
      throw new UpstreamTimeoutError(`function ${dest.namespace}/${dest.name}`);
    }
    const mapped = statusForInvokerError(err, dest.name);
    if (mapped.status === 500) deps.logger.error({ err, fn: `${dest.namespace}/${dest.name}`, requestId: ctx.requestId }, 'function invocation failed');
    ctx.response = { status: mapped.status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: mapped.body };
  };

  // Deliberately not async: the upstream path is the hot one and each async layer costs a promise.
  const sendToService = (ctx: GatewayContext, dest: Extract<DestinationRef, { kind: 'service' }>, path: string, cancel: CancelToken): Promise<void> => {
    const headers = upstreamHeaders(ctx);
    const cluster = deps.clusters.get(`${dest.namespace}/${dest.name}`);
    if (!cluster) return Promise.reject(new NoHealthyUpstreamError(`${dest.namespace}/${dest.name}`));
    const lb = cluster.spec.loadBalancer;
    const hashKey = lb.kind !== 'consistent_hash' ? undefined : lb.header ? (ctx.headers[lb.header] as string | undefined) : cookie(ctx, lb.cookie!);
    const fullPath = ctx.rawQuery ? `${path}?${ctx.rawQuery}` : path;
    const opts = { subset: dest.subset, path: fullPath, headers, body: undefined as ForwardOptions['body'], hashKey, cancel, routeStats: deps.routeStats };
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
  };

  /**
   * run sends to one weighted destination under the route deadline. A function that answers at once
   * needs no deadline timer (nothing else runs meanwhile, and an inline run is bounded by its fuel);
   * the timer starts when the answer is still to come, for what is left of the deadline.
   */
  const run = (ctx: GatewayContext, path: string): Promise<void> | void => {
    const dest = choose();
    if (dest.kind !== 'function') return withDeadline(ctx, ctx.timeoutMs, sendToService(ctx, dest, path, ctx.cancel));
    const t0 = performance.now();
    const pending = sendToFunction(ctx, dest, path, ctx.cancel);
    if (pending === undefined) return;
    return withDeadline(ctx, ctx.timeoutMs - (performance.now() - t0), pending);
  };

  const withDeadline = (ctx: GatewayContext, ms: number, pending: Promise<void>): Promise<void> => {
    const timer = setTimeout(expire, Math.max(0, ms), ctx.cancel);
    return pending.finally(() => clearTimeout(timer));
  };

  const mirrored = async (ctx: GatewayContext, path: string): Promise<void> => {
    if (hasBody(ctx)) await ctx.readBody();
    shadow(ctx, path);
    return run(ctx, path);
  };

  const shadow = (ctx: GatewayContext, path: string) => {
    if (!mirror || Math.random() * 100 >= mirror.percent) return;
    // Shadow traffic: its own deadline, a copy of the body, the response thrown away, errors only logged.
    const cancel = new CancelToken();
    const t = setTimeout(() => cancel.cancel(new AbortReason('deadline')), ctx.timeoutMs);
    // The copy inherits everything from the request (including readBody) and overrides what must differ.
    const copy = Object.create(ctx) as GatewayContext;
    Object.assign(copy, {
      headers: { ...ctx.headers, host: `${ctx.host}-shadow` },
      responseHeaderEdits: [],
      res: { writeHead: () => undefined, write: () => true, end: () => undefined, destroy: () => undefined, headersSent: false, writableEnded: false },
      retry: undefined,
      hedge: undefined,
    });
    const dest = mirror.destination;
    let run: Promise<void>;
    try {
      run = Promise.resolve(dest.kind === 'function' ? sendToFunction(copy, dest, path, cancel) : shadowToService(copy, dest, path, cancel.toSignal()));
    } catch (err) {
      run = Promise.reject(err);
    }
    run.catch((err) => deps.logger.debug({ err, requestId: ctx.requestId }, 'mirror request failed')).finally(() => clearTimeout(t));
  };

  const shadowToService = async (ctx: GatewayContext, dest: Extract<DestinationRef, { kind: 'service' }>, path: string, signal: AbortSignal) => {
    const cluster = deps.clusters.get(`${dest.namespace}/${dest.name}`);
    const ep = cluster?.pick(dest.subset, undefined);
    if (!cluster || !ep) return;
    const r = await cluster.pool(ep).request({ path: ctx.rawQuery ? `${path}?${ctx.rawQuery}` : path, method: ctx.method as 'GET', headers: upstreamHeaders(ctx), body: ctx.body && ctx.body.length > 0 ? ctx.body : undefined, signal });
    await r.body.dump();
  };

  const done = Promise.resolve();
  return function dispatch(ctx) {
    if (redirect) {
      const port = redirect.port ? `:${redirect.port}` : '';
      const location = `${redirect.scheme ?? 'http'}://${redirect.authority ?? ctx.host}${port}${redirect.uri ?? ctx.path}${ctx.rawQuery ? `?${ctx.rawQuery}` : ''}`;
      ctx.response = { status: redirect.code, headers: { location }, body: '' };
      return done;
    }
    if (direct) {
      ctx.response = { status: direct.status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: direct.body };
      return done;
    }
    let path = ctx.path;
    if (rw) {
      if (rw.uri !== undefined) {
        if (ctx.matchedPrefix !== undefined) {
          const rest = path.slice(ctx.matchedPrefix.length);
          path = rw.uri.endsWith('/') && rest.startsWith('/') ? rw.uri + rest.slice(1) : rw.uri + rest;
        } else path = rw.uri;
        if (path === '') path = '/';
      } else if (rw.regex) path = replaceAll(rw.regex, path);
      if (rw.authority !== undefined) ctx.headers.host = rw.authority;
    }
    return mirror ? mirrored(ctx, path) : run(ctx, path);
  };
}
