import type { IncomingMessage, ServerResponse } from 'node:http';

import type { Tracer } from '../util/tracing.js';

import { AbortReason, CancelToken } from './cancel.js';
import type { BufferedResponse, GatewayContext, HedgePolicy, OutgoingHeaders, RetryPolicy } from './context.js';
import { BodyTooLargeError, GatewayError } from './errors.js';
import type { TraceContext } from './observability/trace.js';
import type { WriteBatch } from './write-batch.js';

const EMPTY: Uint8Array = new Uint8Array(0);

/** BodyBudget is the gateway-wide account of buffered request bytes, used to shed load before memory runs out. */
export interface BodyBudget {
  bufferedBytes: number;
  readonly maxBodyBytes: number;
}

const kCtx = Symbol('skiff.ctx');

function onResponseClose(this: ServerResponse & { [kCtx]?: RequestContext }): void {
  const ctx = this[kCtx];
  if (ctx && !this.writableFinished) ctx.cancel.cancel(new AbortReason('client'));
}

/**
 * RequestContext is the gateway's GatewayContext. It is a class, not an object literal with
 * closures, because it is built for every request: methods live on the prototype and the abort
 * signal is only created when something asks for it.
 */
export class RequestContext implements GatewayContext {
  method: string;
  path: string;
  rawQuery: string;
  headers: Record<string, string | string[] | undefined>;
  host: string;
  remoteAddress: string;
  requestId: string;
  trace: TraceContext;
  tracer?: Tracer;
  rawBody: IncomingMessage;
  body?: Uint8Array;
  claims?: Record<string, unknown>;
  peerIdentity?: string;
  forwardedBy?: string = undefined;
  response?: BufferedResponse;
  responseHeaderEdits: Array<(h: OutgoingHeaders, ctx: GatewayContext) => void> = [];
  timeoutMs: number;
  retry?: RetryPolicy;
  hedge?: HedgePolicy;
  readonly cancel = new CancelToken();
  startedAt: number;
  res: ServerResponse;
  writes?: WriteBatch;
  state: Record<string, unknown> = {};
  matchedPrefix?: string;
  upstream?: string;
  /** Bytes of response body written to the client so far. */
  responseBytes = 0;
  private abortController?: AbortController;
  private parsedQuery?: URLSearchParams;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    fields: { path: string; rawQuery: string; host: string; requestId: string; trace: TraceContext; timeoutMs: number; startedAt: number },
    private readonly budget: BodyBudget,
  ) {
    this.method = req.method ?? 'GET';
    this.path = fields.path;
    this.rawQuery = fields.rawQuery;
    this.headers = req.headers as Record<string, string | string[] | undefined>;
    this.host = fields.host;
    this.remoteAddress = req.socket.remoteAddress ?? '';
    this.requestId = fields.requestId;
    this.trace = fields.trace;
    this.rawBody = req;
    this.timeoutMs = fields.timeoutMs;
    this.startedAt = fields.startedAt;
    this.res = res;
    (res as ServerResponse & { [kCtx]?: RequestContext })[kCtx] = this;
    // `on`, not `once`: the response is discarded after 'close', and once() allocates a wrapper.
    res.on('close', onResponseClose);
  }

  get signal(): AbortSignal {
    if (!this.abortController) {
      const ac = (this.abortController = new AbortController());
      this.cancel.on((r) => ac.abort(r));
    }
    return this.abortController.signal;
  }

  /** query parses the query string once, for matchers that need it. */
  query(): URLSearchParams {
    return (this.parsedQuery ??= new URLSearchParams(this.rawQuery));
  }

  bodyNow(): Uint8Array | undefined {
    if (this.body) return this.body;
    const req = this.rawBody;
    if (req.readableEnded || (Number(req.headers['content-length'] ?? 0) === 0 && req.headers['transfer-encoding'] === undefined && req.httpVersionMajor < 2)) return (this.body = EMPTY);
    return undefined;
  }

  readBody(): Promise<Uint8Array> {
    if (this.body) return Promise.resolve(this.body);
    const req = this.rawBody;
    const budget = this.budget;
    const limit = budget.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) return Promise.reject(new BodyTooLargeError(limit));
    const known = this.bodyNow();
    if (known) return Promise.resolve(known);
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const onData = (c: Buffer) => {
        size += c.length;
        budget.bufferedBytes += c.length;
        if (size > limit) {
          cleanup();
          budget.bufferedBytes -= size;
          reject(new BodyTooLargeError(limit));
          return;
        }
        chunks.push(c);
      };
      const onEnd = () => {
        cleanup();
        // The budget keeps counting this body until the request finishes (see releaseBody()).
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
        this.body = body;
        resolve(body);
      };
      const onError = (err: unknown) => {
        cleanup();
        budget.bufferedBytes -= size;
        reject(new GatewayError('client_closed', 499, '', 'client went away while sending the body', { cause: err }));
      };
      const cleanup = () => {
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
        this.cancel.off(onError);
      };
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('error', onError);
      this.cancel.on(onError);
    });
  }

  /** releaseBody returns the buffered body's bytes to the gateway's budget. */
  releaseBody(): void {
    if (this.body) this.budget.bufferedBytes -= this.body.byteLength;
  }
}
