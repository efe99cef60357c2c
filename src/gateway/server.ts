import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSecureServer, createServer as createHttp2Server, type Http2SecureServer, type Http2Server, type Http2ServerRequest, type Http2ServerResponse, type SecureServerOptions, type ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';

import type { GatewayLimits } from './types.js';

/** RequestHandler serves one request (HTTP/1.1 or HTTP/2 compatibility objects). */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** DEFAULT_LIMITS are the listener limits used when GatewayOptions.limits leaves a field out. */
export const DEFAULT_LIMITS: GatewayLimits = {
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 65_000,
  maxConcurrentStreams: 100,
  maxBodyBytes: 8 * 1024 * 1024,
  maxInFlight: 10_000,
  maxBufferedBytes: 256 * 1024 * 1024,
  defaultTimeoutMs: 30_000,
};

/** The default check runs every 30 s, which would let a slow-loris hold a socket far past headersTimeout. */
function checkingInterval(limits: GatewayLimits): number {
  return Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4)));
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Content Too Large', 431: 'Request Header Fields Too Large' };

/**
 * createListener makes the hardened HTTP/1.1 listener: Node's strict parser (no lenient flags) refuses
 * smuggling shapes (Content-Length with Transfer-Encoding, duplicate Content-Length, obs-fold) and we
 * answer those with 400, heads over the limit with 431, and close connections whose head arrives too
 * slowly.
 */
export function createListener(limits: GatewayLimits, handler: RequestHandler): Server {
  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: checkingInterval(limits),
      insecureHTTPParser: false,
      requireHostHeader: true,
      noDelay: true,
    },
    handler,
  );
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || (err as { code?: string }).code === 'ECONNRESET') return void socket.destroy();
    const code = err.code ?? '';
    const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : code === 'HPE_CB_ON_BODY' ? 413 : 400;
    const body = `${STATUS_TEXT[status]!.toLowerCase()}\n`;
    socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    socket.destroySoon?.();
    setTimeout(() => socket.destroy(), 1000).unref();
  });
  return server;
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/**
 * enableH2c lets the HTTP/1.1 listener also serve HTTP/2 with prior knowledge (h2c): the first bytes
 * of each new connection are inspected once, and connections opening with the HTTP/2 preface are
 * handed to an HTTP/2 server. HTTP/1.1 connections continue on the original listener untouched.
 */
export function enableH2c(server: Server, limits: GatewayLimits, handler: RequestHandler): Http2Server {
  const h2 = createHttp2Server({ settings: h2Settings(limits), maxSessionMemory: 32 }, handler as unknown as (req: Http2ServerRequest, res: Http2ServerResponse) => void);
  h2.on('session', (session) => trackSession(h2, session, limits.keepAliveTimeoutMs));
  const http1 = server.listeners('connection') as Array<(s: Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    let seen: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), limits.headersTimeoutMs);
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const isH2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (isH2 && seen.length < H2_PREFACE.length) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      socket.unshift(seen);
      // HTTP/2 takes over the socket and drains what was unshifted itself; HTTP/1.1 reads on resume.
      if (isH2) h2.emit('connection', socket);
      else {
        for (const l of http1) l.call(server, socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
    socket.once('close', () => clearTimeout(timer));
  });
  return h2;
}

/** h2Settings are the SETTINGS every HTTP/2 session announces: bounded streams and header lists. */
function h2Settings(limits: GatewayLimits): { maxHeaderListSize: number; maxConcurrentStreams: number } {
  return { maxHeaderListSize: limits.maxHeaderBytes, maxConcurrentStreams: limits.maxConcurrentStreams };
}

const SESSIONS = Symbol('skiff.sessions');

/**
 * trackSession remembers a session for close() and closes it (GOAWAY) once it has had no open
 * stream for `idleMs`: otherwise an idle HTTP/2 connection would hold its socket and session memory
 * forever. PINGs and SETTINGS do not count as activity. One timer per session, re-armed lazily, so
 * a stream costs a counter and a close listener.
 */
function trackSession(server: Http2Server | Http2SecureServer, session: ServerHttp2Session, idleMs: number): void {
  const s = server as unknown as { [SESSIONS]?: Set<ServerHttp2Session> };
  const set = (s[SESSIONS] ??= new Set());
  set.add(session);
  let open = 0;
  let idleSince = Date.now();
  const check = () => {
    if (session.closed || session.destroyed) return;
    const left = open > 0 ? idleMs : idleSince + idleMs - Date.now();
    if (left <= 0) return void session.close();
    timer = setTimeout(check, left);
    timer.unref();
  };
  let timer = setTimeout(check, idleMs);
  timer.unref();
  session.on('stream', (stream: { once(e: 'close', f: () => void): unknown }) => {
    open++;
    stream.once('close', () => {
      if (--open === 0) idleSince = Date.now();
    });
  });
  session.once('close', () => {
    clearTimeout(timer);
    set.delete(session);
  });
}

/** closeSessions sends GOAWAY to every open HTTP/2 session (in-flight streams finish, no new ones start), or destroys them when `force`. */
export function closeSessions(server: Http2Server | Http2SecureServer, force = false): void {
  const set = (server as unknown as { [SESSIONS]?: Set<ServerHttp2Session> })[SESSIONS];
  if (set) for (const session of set) force ? session.destroy() : session.close();
}

/**
 * createSecureListener serves HTTPS with ALPN (`h2`, then `http/1.1`) using the gateway's workload
 * certificate; it asks clients for a certificate from the internal CA (mutual TLS) and, when
 * `requireClientCert`, refuses those without one.
 */
export function createSecureListener(limits: GatewayLimits, tls: SecureServerOptions, handler: RequestHandler): Http2SecureServer {
  const server = createSecureServer({ ...tls, allowHTTP1: true, ALPNProtocols: ['h2', 'http/1.1'], settings: h2Settings(limits), maxSessionMemory: 32 }, handler as unknown as (req: Http2ServerRequest, res: Http2ServerResponse) => void);
  // HTTP/1.1 over TLS runs Node's HTTP/1 connection handling with these fields, whose defaults
  // (60 s for a head, checked every 30 s, 16 KiB heads) are not the plain listener's limits. They must
  // be set before listening.
  const h1 = server as unknown as { headersTimeout: number; requestTimeout: number; keepAliveTimeout: number; connectionsCheckingInterval: number; maxHeaderSize: number };
  h1.headersTimeout = limits.headersTimeoutMs;
  h1.requestTimeout = limits.requestTimeoutMs;
  h1.keepAliveTimeout = limits.keepAliveTimeoutMs;
  h1.connectionsCheckingInterval = checkingInterval(limits);
  h1.maxHeaderSize = limits.maxHeaderBytes;
  server.on('session', (session) => trackSession(server, session, limits.keepAliveTimeoutMs));
  server.on('tlsClientError', () => undefined);
  return server;
}
