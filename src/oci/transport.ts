import http from 'node:http';
import https from 'node:https';
import type { LookupFunction, Socket } from 'node:net';
import { rootCertificates } from 'node:tls';

import { type UpstreamGuard, UpstreamRefusedError } from '../security/index.js';

import { OciError, OciInsecureError, OciTimeoutError, OciTooLargeError, OciUnreachableError, OciUpstreamRefusedError } from './errors.js';
import { registryHostPort } from './reference.js';

/** TransportOptions: how the client reaches registries. */
export interface TransportOptions {
  /** Which network targets may be reached; every hop (redirects, token realms) is checked. */
  upstreams: UpstreamGuard;
  /** `HOST:PORT` registries spoken to over plain HTTP (`--insecure-registry`); every other one over HTTPS. */
  insecure?: Iterable<string>;
  /** PEM CA certificates trusted for HTTPS registries (in addition to the system's when `systemCAs` is true). */
  ca?: string | string[];
  /** Keep trusting the system CAs beside `ca` (default true). */
  systemCAs?: boolean;
  /** Deadline for a response's headers, per attempt (default 30 s). */
  requestTimeoutMs?: number;
  /** Longest pause between two chunks of a body before the download counts as stalled (default 30 s). */
  stallTimeoutMs?: number;
  /** Attempts per request on connection errors, 5xx and 429 (default 3). */
  attempts?: number;
  /** First retry delay; it doubles each attempt, with jitter, capped at 2 s (default 200 ms). */
  retryBaseMs?: number;
  /** Redirects followed at most (default 5). */
  maxRedirects?: number;
  /** The User-Agent sent (default `skiff`). */
  userAgent?: string;
}

/** One request as the client asks for it. */
export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Record<string, string>;
  /** The request body: bytes, so that a retry can send them again. */
  body?: Uint8Array;
  /** Follow 3xx redirects (blob downloads to storage); the Authorization header is dropped on another host. */
  followRedirects?: boolean;
  /** What the request is about, for messages (`manifest 127.0.0.1:5000/app:v1`). */
  what: string;
}

/** A response whose body has not been read yet; call `bytes`, `text` or `discard`. */
export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The URL that answered (after redirects). */
  url: URL;
  /** bytes reads the whole body, failing with OciTooLargeError past `max`. */
  bytes(max: number): Promise<Uint8Array>;
  /** stream yields the body chunk by chunk, with the stall timeout applied. */
  stream(): AsyncIterable<Uint8Array>;
  /** text reads at most `max` bytes as UTF-8 (for error bodies and small JSON). */
  text(max?: number): Promise<string>;
  discard(): void;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);
const RETRY_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'ECONNABORTED']);
const TLS_PLAINTEXT = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'EPROTO', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST']);
const TLS_TRUST = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_NOT_YET_VALID', 'UNABLE_TO_GET_ISSUER_CERT']);

/**
 * Transport sends registry requests: HTTPS (with the operator's CA bundle) unless the registry is in
 * the insecure list, every target checked by the upstream guard before connecting and again at the
 * address the socket reached, a deadline per attempt, bounded retries with backoff on connection
 * errors, 5xx and 429, and redirects followed with the registry's credentials dropped on another host.
 */
export class Transport {
  private readonly insecure: Set<string>;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  readonly stallTimeoutMs: number;

  constructor(private readonly opts: TransportOptions) {
    this.insecure = new Set([...(opts.insecure ?? [])].map((h) => h.trim().toLowerCase()));
    const ca = opts.ca === undefined ? undefined : Array.isArray(opts.ca) ? opts.ca : [opts.ca];
    // A `ca` option replaces Node's bundled roots; keep them beside the operator's unless told not to.
    const withSystem = ca && opts.systemCAs !== false ? [...ca, ...rootCertificates] : ca;
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 8, ...(withSystem ? { ca: withSystem } : {}) });
    this.stallTimeoutMs = opts.stallTimeoutMs ?? 30_000;
  }

  /** baseUrl is where a registry's API lives: `http://` only for a registry in the insecure list. */
  baseUrl(registry: string): URL {
    const endpoint = registry === 'docker.io' ? 'registry-1.docker.io' : registry;
    return new URL(`${this.isInsecure(registry) ? 'http' : 'https'}://${endpoint}/`);
  }

  /** isInsecure tells whether plain HTTP is allowed for `HOST:PORT` (a bare host matches port 80/443 too). */
  isInsecure(hostPort: string): boolean {
    const k = hostPort.toLowerCase();
    return this.insecure.has(k) || (!k.includes(':') && this.insecure.has(`${k}:80`));
  }

  /** request sends one request, retrying and following redirects as configured; the caller reads or discards the body. */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const attempts = Math.max(1, this.opts.attempts ?? 3);
    for (let attempt = 1; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await this.followed(req);
      } catch (err) {
        if (attempt < attempts && retryable(err)) {
          await sleep(this.backoff(attempt));
          continue;
        }
        throw err;
      }
      if (attempt < attempts && RETRY_STATUS.has(res.status)) {
        const after = retryAfterMs(res.headers['retry-after']);
        res.discard();
        await sleep(after ?? this.backoff(attempt));
        continue;
      }
      return res;
    }
  }

  /** close drops pooled connections. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private backoff(attempt: number): number {
    const base = this.opts.retryBaseMs ?? 200;
    return Math.min(2_000, base * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
  }

  private async followed(req: HttpRequest): Promise<HttpResponse> {
    const maxRedirects = this.opts.maxRedirects ?? 5;
    const origin = req.url;
    let url = req.url;
    let headers = { ...(req.headers ?? {}) };
    for (let hop = 0; ; hop++) {
      const res = await this.once(req, url, headers);
      if (!req.followRedirects || !REDIRECTS.has(res.status)) return res;
      res.discard();
      if (hop >= maxRedirects) throw new OciUnreachableError(`${req.what}: the registry redirected more than ${maxRedirects} times`);
      const location = res.headers.location;
      let next: URL | undefined;
      try {
        next = location ? new URL(location, url) : undefined;
      } catch {
        next = undefined;
      }
      if (!next || (next.protocol !== 'http:' && next.protocol !== 'https:')) throw new OciUnreachableError(`${req.what}: the registry answered HTTP ${res.status} without an http(s) Location to follow`);
      if (next.protocol === 'http:' && !this.isInsecure(next.host)) {
        throw new OciInsecureError(`${req.what}: the registry redirected to plain HTTP at ${next.host}, which is not allowed; start with --insecure-registry ${next.host} if that is intended`);
      }
      // Credentials are for the registry: blob storage on another host gets none (it signs its URLs).
      if (next.host !== origin.host) {
        const { authorization: _dropped, ...rest } = headers;
        headers = rest;
      }
      url = next;
    }
  }

  private once(req: HttpRequest, url: URL, headers: Record<string, string>): Promise<HttpResponse> {
    const guard = this.opts.upstreams;
    const secure = url.protocol === 'https:';
    if (!secure && !this.isInsecure(url.host)) {
      return Promise.reject(new OciInsecureError(`${req.what}: ${url.host} would be reached over plain HTTP, which is not allowed; start with --insecure-registry ${url.host} if it is a plain-HTTP registry`));
    }
    const { host, port } = registryHostPort(url.host, secure ? 443 : 80);
    const timeoutMs = this.opts.requestTimeoutMs ?? 30_000;
    return guard.check(host, port).then(
      () =>
        new Promise<HttpResponse>((resolve, reject) => {
          const lib = secure ? https : http;
          const body = req.body;
          const request = lib.request(
            {
              protocol: url.protocol,
              hostname: host,
              port,
              path: `${url.pathname}${url.search}`,
              method: req.method,
              agent: secure ? this.httpsAgent : this.httpAgent,
              lookup: guard.lookup(port) as unknown as LookupFunction,
              servername: secure && !/^[\d.]+$|:/.test(host) ? host : undefined,
              headers: { 'user-agent': this.opts.userAgent ?? 'skiff', ...headers, ...(body ? { 'content-length': String(body.length) } : req.method === 'PUT' || req.method === 'POST' || req.method === 'PATCH' ? { 'content-length': '0' } : {}) },
            },
            (res) => {
              clearTimeout(timer);
              resolve(this.wrap(res, url, req.what));
            },
          );
          const timer = setTimeout(() => request.destroy(new OciTimeoutError(`${req.what}: ${url.host} did not answer within ${timeoutMs} ms`)), timeoutMs);
          request.once('socket', (socket: Socket) => {
            const check = () => {
              const why = socket.remoteAddress ? guard.checkAddress(host, socket.remoteAddress, port) : 'the connection has no remote address';
              if (why) request.destroy(new OciUpstreamRefusedError(`${req.what}: ${why}; nothing was sent to it`));
            };
            if (socket.remoteAddress && !socket.connecting) check();
            else socket.once('connect', check);
          });
          request.once('error', (err) => {
            clearTimeout(timer);
            reject(this.translate(err, req, url));
          });
          request.end(body ? Buffer.from(body.buffer, body.byteOffset, body.length) : undefined);
        }),
      (err: unknown) => {
        throw this.translate(err, req, url);
      },
    );
  }

  private translate(err: unknown, req: HttpRequest, url: URL): unknown {
    if (err instanceof OciError) return err;
    if (err instanceof UpstreamRefusedError) return new OciUpstreamRefusedError(`${req.what}: ${err.message}; nothing was sent to it`, { cause: err });
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (url.protocol === 'https:' && (TLS_PLAINTEXT.has(code) || /wrong version number|packet length too long|http request/i.test((err as Error).message))) {
      return new OciInsecureError(`${req.what}: ${url.host} does not speak TLS; if it is a plain-HTTP registry, allow it with --insecure-registry ${url.host}`);
    }
    if (TLS_TRUST.has(code)) return new OciUnreachableError(`${req.what}: the TLS certificate of ${url.host} is not trusted (${code}); pass the registry's CA certificate with --registry-ca FILE`, { cause: err });
    return new OciUnreachableError(`${req.what}: cannot reach ${url.host} (${code || (err as Error).message})`, { cause: err });
  }

  private wrap(res: http.IncomingMessage, url: URL, what: string): HttpResponse {
    const stallMs = this.stallTimeoutMs;
    let consumed = false;
    const stream = async function* (): AsyncGenerator<Uint8Array> {
      consumed = true;
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => res.destroy(new OciTimeoutError(`${what}: the download from ${url.host} stalled (no data for ${stallMs} ms)`)), stallMs);
      };
      arm();
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) {
          arm();
          yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
        }
      } catch (err) {
        if (err instanceof OciError) throw err;
        throw new OciUnreachableError(`${what}: the download from ${url.host} broke off (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
      } finally {
        if (timer) clearTimeout(timer);
      }
    };
    const bytes = async (max: number): Promise<Uint8Array> => {
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (declared > max) {
        res.destroy();
        throw new OciTooLargeError(`${what} is ${declared} bytes; the limit is ${max}`);
      }
      const chunks: Uint8Array[] = [];
      let size = 0;
      for await (const c of stream()) {
        size += c.length;
        if (size > max) {
          res.destroy();
          throw new OciTooLargeError(`${what} is larger than the limit of ${max} bytes`);
        }
        chunks.push(c);
      }
      const buf = Buffer.concat(chunks);
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
    };
    return {
      status: res.statusCode ?? 0,
      headers: res.headers,
      url,
      bytes,
      stream,
      text: async (max = 64 * 1024) => {
        try {
          return Buffer.from(await bytes(max)).toString('utf8');
        } catch {
          return '';
        }
      },
      discard: () => {
        if (!consumed) res.resume();
        if (!res.complete) res.destroy();
      },
    };
  }
}

function retryable(err: unknown): boolean {
  if (err instanceof OciTimeoutError) return true;
  if (!(err instanceof OciUnreachableError)) return false;
  const code = ((err.cause as NodeJS.ErrnoException | undefined)?.code ?? '') as string;
  return RETRY_CODES.has(code);
}

function retryAfterMs(h: string | string[] | undefined): number | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return undefined;
  const s = Number(v);
  if (Number.isFinite(s) && s >= 0) return Math.min(5_000, s * 1000);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.min(5_000, Math.max(0, at - Date.now())) : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
