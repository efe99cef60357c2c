import type { GatewayContext, OutgoingHeaders } from '../context.js';
import { formatTraceparent } from '../observability/trace.js';
import { HOP_BY_HOP } from '../upstream/forward.js';

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
export function definedHeaders(h: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in h) {
    const v = h[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** hasBody: whether the request carries a body (which a mirror or a retried upstream request must buffer). */
export function hasBody(ctx: GatewayContext): boolean {
  const h = ctx.headers;
  if ((h['content-length'] !== undefined && h['content-length'] !== '0') || h['transfer-encoding'] !== undefined) return true;
  // HTTP/2 bodies need no Content-Length: whether one follows is only known from the stream.
  const raw = ctx.rawBody as { httpVersionMajor?: number; readableEnded?: boolean };
  return raw.httpVersionMajor === 2 && !raw.readableEnded && ctx.method !== 'GET' && ctx.method !== 'HEAD';
}

/** toOutgoing turns a Function's ordered header pairs into response headers (the gateway sets Content-Length). */
export function toOutgoing(pairs: Array<[string, string]>): OutgoingHeaders {
  const out: OutgoingHeaders = {};
  for (const [k0, v] of pairs) {
    const k = k0.toLowerCase();
    if (k === 'content-length') continue;
    const cur = out[k];
    out[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  return out;
}

/** cookie reads one request cookie, for consistent-hash load balancing. */
export function cookie(ctx: GatewayContext, name: string): string | undefined {
  const c = ctx.headers.cookie;
  const s = Array.isArray(c) ? c.join('; ') : c;
  if (!s) return undefined;
  for (const part of s.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
