import { epochMs, type SpanAttributes, SpanKind, type Tracer } from '../../util/tracing.js';
import type { GatewayContext, Handler } from '../context.js';

/**
 * Spans of a gateway request. The server span's id is the span id the gateway already made and
 * forwards (`ctx.trace.spanId`), so what the next hop sees as its parent is the exported span. A
 * request carries `ctx.tracer` only when its trace is sampled; everything here is skipped otherwise.
 */

/**
 * startTrace makes the sampling decision for a request (once per trace: a caller's sampled flag is
 * honoured by the parent-based samplers) and writes it into the flags forwarded downstream.
 */
export function startTrace(ctx: GatewayContext, tracer: Tracer): void {
  const t = ctx.trace;
  const parentSampled = t.parentSpanId === undefined ? undefined : (parseInt(t.flags, 16) & 1) === 1;
  const sampled = tracer.sample(t.traceId, parentSampled);
  t.flags = sampled ? '01' : '00';
  if (sampled) ctx.tracer = tracer;
}

/** endTrace records the request's SERVER span (HTTP semantic conventions; Error status on 5xx). */
export function endTrace(ctx: GatewayContext, tracer: Tracer, status: number, route: string | undefined, endedAt: number): void {
  const ua = ctx.headers['user-agent'];
  const attributes: SpanAttributes = {
    'http.request.method': ctx.method,
    'url.path': ctx.path,
    'http.route': route,
    'http.response.status_code': status,
    'server.address': ctx.host || undefined,
    'client.address': ctx.remoteAddress || undefined,
    'user_agent.original': typeof ua === 'string' ? ua : undefined,
    'skiff.request_id': ctx.requestId,
    'skiff.upstream': ctx.upstream,
  };
  tracer.record({
    traceId: ctx.trace.traceId,
    spanId: ctx.trace.spanId,
    parentSpanId: ctx.trace.parentSpanId,
    name: route ? `${ctx.method} ${route}` : ctx.method,
    kind: SpanKind.SERVER,
    startMs: epochMs(ctx.startedAt),
    endMs: epochMs(endedAt),
    attributes,
    error: status >= 500 ? `HTTP ${status}` : undefined,
  });
}

/** The filters that do work of their own, and so get a span each; the others only set fields. */
export const TRACED_FILTERS: ReadonlySet<string> = new Set(['jwt', 'authz', 'rateLimit']);

/** outcome describes how a filter ended, in its span's own attribute names. */
function outcome(name: string, config: unknown, ctx: GatewayContext, passed: boolean): SpanAttributes {
  switch (name) {
    case 'jwt':
      // The subject and other claims may identify a person: only the issuer goes into the span.
      return { 'skiff.jwt.outcome': !passed ? 'rejected' : ctx.claims ? 'verified' : 'missing_allowed', 'skiff.jwt.issuer': passed && typeof ctx.claims?.iss === 'string' ? ctx.claims.iss : undefined };
    case 'authz': {
      const policy = (config as { policy?: unknown } | undefined)?.policy;
      return { 'skiff.authz.policy': typeof policy === 'string' ? policy : '(default)', 'skiff.authz.decision': passed ? 'allow' : 'deny' };
    }
    case 'rateLimit':
      return { 'skiff.ratelimit.outcome': passed ? 'allowed' : 'limited' };
    default:
      return {};
  }
}

/**
 * tracedFilter wraps a filter's handler with an INTERNAL span covering the filter's own work: it ends
 * when the filter passes the request on (next) or answers it itself. Installed only when a tracer is
 * configured; an unsampled request goes straight to the filter.
 */
export function tracedFilter(name: string, config: unknown, h: Handler): Handler {
  const spanName = `filter ${name}`;
  return function traced(ctx, next) {
    const tracer = ctx.tracer;
    if (tracer === undefined) return h(ctx, next);
    const start = performance.now();
    let ended = false;
    const end = (passed: boolean, err?: unknown) => {
      if (ended) return;
      ended = true;
      const attrs = outcome(name, config, ctx, passed);
      attrs['skiff.filter'] = name;
      if (!passed && ctx.response) attrs['http.response.status_code'] = ctx.response.status;
      tracer.record({ traceId: ctx.trace.traceId, spanId: tracer.spanId(), parentSpanId: ctx.trace.spanId, name: spanName, kind: SpanKind.INTERNAL, startMs: epochMs(start), endMs: epochMs(performance.now()), attributes: attrs, error: err === undefined ? undefined : String((err as Error)?.message ?? err) });
    };
    return h(ctx, () => {
      end(true);
      return next();
    }).then(
      () => end(false),
      (err) => {
        end(false, err);
        throw err;
      },
    );
  };
}
