import type { Dispatcher } from 'undici';

import { epochMs, SpanKind, type Tracer } from '../../util/tracing.js';
import { AbortReason, type CancelToken } from '../cancel.js';
import type { GatewayContext, OutgoingHeaders } from '../context.js';

import type { Cluster } from './cluster.js';
import type { Endpoint } from './endpoint.js';

/** Outcome is how one upstream attempt ended. */
export type Outcome =
  | { kind: 'committed'; status: number }
  | { kind: 'discarded'; status: number }
  | { kind: 'failed'; cause: 'connect' | 'reset' | 'per_try' | 'deadline' | 'client' | 'hedge_lost'; err: unknown };

/** HOP_BY_HOP are headers that describe one connection and must not be forwarded (RFC 9110 §7.6.1). */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect', 'http2-settings']);

/**
 * responseHeaders prepares upstream headers for the client in place (the object is ours, freshly
 * parsed): hop-by-hop headers go, the request id is added, then the route's edits run.
 */
export function responseHeaders(ctx: GatewayContext, h: Record<string, string | string[] | undefined>): OutgoingHeaders {
  for (const k in h) if (h[k] === undefined || HOP_BY_HOP.has(k)) delete h[k];
  h['x-request-id'] = ctx.requestId;
  const edits = ctx.responseHeaderEdits;
  for (let i = 0; i < edits.length; i++) edits[i]!(h as OutgoingHeaders, ctx);
  return h as OutgoingHeaders;
}

// upstream_refused: the operator's upstream grants refused the target (see connector.ts); the client sees a connect failure.
const CONNECT_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'upstream_refused']);

/** AttemptGroup is shared by the attempts of one request: the first to answer owns the client response. */
export interface AttemptGroup {
  ctx: GatewayContext;
  cluster: Cluster;
  options: Dispatcher.DispatchOptions;
  cancel: CancelToken;
  winner?: Attempt;
  /** Attempts in flight (two while hedging). */
  live: Attempt[];
  /** Attempts started so far, counted only for sampled requests (their spans' attempt number). */
  started?: number;
}

/**
 * Attempt sends the request once to one endpoint as an undici dispatch handler, streaming the answer
 * straight into the client response with backpressure. Writing the handler by hand (instead of
 * `Pool.stream()` with an AbortSignal) keeps the per-request cost to a few objects; this is the
 * gateway's hottest path.
 */
export class Attempt implements Dispatcher.DispatchHandler {
  private controller?: Dispatcher.DispatchController;
  private abortedWith?: AbortReason;
  private committed = false;
  private discarding = false;
  private settled = false;
  private status = 0;
  private timer?: NodeJS.Timeout;
  private startedAt = 0;
  private resolve!: (o: Outcome) => void;
  readonly done: Promise<Outcome>;
  /** Set for a sampled request: this attempt's CLIENT span id, forwarded as the upstream's parent. */
  private spanId?: string;
  private options?: Dispatcher.DispatchOptions;
  /** This attempt's number within the request (1 for the first), for its span. */
  private attempt = 0;

  constructor(
    private readonly g: AttemptGroup,
    private readonly ep: Endpoint,
    private readonly mayDiscard: (status: number) => boolean,
    /** Whether this is the hedged second attempt (for its span). */
    private readonly hedge = false,
  ) {
    this.done = new Promise((r) => (this.resolve = r));
  }

  start(): Promise<Outcome> {
    const g = this.g;
    g.live.push(this);
    this.ep.active++;
    this.startedAt = performance.now();
    g.cancel.on(this);
    if (g.ctx.tracer !== undefined) this.traced(g.ctx.tracer);
    const perTry = g.ctx.retry?.perTryTimeoutMs;
    if (perTry) this.timer = setTimeout(() => this.abort(new AbortReason('per_try')), perTry);
    if (!this.settled) {
      try {
        g.cluster.pool(this.ep).dispatch(this.options ?? g.options, this);
      } catch (err) {
        this.settle({ kind: 'failed', cause: 'reset', err });
      }
    }
    return this.done;
  }

  /**
   * traced gives a sampled request's attempt its own span id and forwards it in `traceparent`, so
   * the upstream's spans hang under this attempt's span (its own copy of the headers: a hedged
   * attempt may be in flight with another span id).
   */
  private traced(tracer: Tracer): void {
    const g = this.g;
    this.spanId = tracer.spanId();
    this.attempt = g.started = (g.started ?? 0) + 1;
    const t = g.ctx.trace;
    this.options = { ...g.options, headers: { ...(g.options.headers as Record<string, string | string[]>), traceparent: `00-${t.traceId}-${this.spanId}-${t.flags}` } };
  }

  /** recordSpan records the attempt's CLIENT span: which endpoint, which try, how it ended. */
  private recordSpan(tracer: Tracer, o: Outcome, endedAt: number): void {
    const g = this.g;
    const status = o.kind === 'failed' ? undefined : o.status;
    tracer.record({
      traceId: g.ctx.trace.traceId,
      spanId: this.spanId!,
      parentSpanId: g.ctx.trace.spanId,
      name: `${g.options.method} ${g.cluster.key}`,
      kind: SpanKind.CLIENT,
      startMs: epochMs(this.startedAt),
      endMs: epochMs(endedAt),
      attributes: {
        'http.request.method': g.options.method,
        'url.path': g.options.path,
        'server.address': this.ep.socketPath ?? this.ep.address,
        'server.port': this.ep.socketPath ? undefined : this.ep.port,
        'http.response.status_code': status,
        'http.request.resend_count': this.attempt > 1 ? this.attempt - 1 : undefined,
        'skiff.upstream.service': g.cluster.key,
        'skiff.upstream.attempt': this.attempt,
        'skiff.upstream.hedge': this.hedge,
        'skiff.upstream.outcome': o.kind === 'failed' ? o.cause : o.kind,
      },
      error: o.kind === 'failed' ? (o.cause === 'hedge_lost' ? undefined : `upstream ${o.cause}`) : o.status >= 500 ? `HTTP ${o.status}` : undefined,
    });
  }

  /** onCancel lets the attempt listen to the request's CancelToken without a closure. */
  onCancel(r: AbortReason): void {
    this.abort(r);
  }

  /** abort cancels the attempt; before the response head it settles at once, even if undici has not started it. */
  abort(reason: AbortReason): void {
    if (this.settled || this.abortedWith) return;
    this.abortedWith = reason;
    // Settle before aborting: undici reports the abort synchronously through onResponseError.
    if (!this.committed) this.settle({ kind: 'failed', cause: reason.why, err: reason });
    this.controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.abortedWith) controller.abort(this.abortedWith);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200 || this.settled) return;
    const g = this.g;
    this.status = statusCode;
    if (g.winner && g.winner !== this) return this.abort(new AbortReason('hedge_lost'));
    if (this.mayDiscard(statusCode)) {
      this.discarding = true;
      return;
    }
    this.committed = true;
    g.winner = this;
    // The first response wins: cancel the other hedged attempt.
    if (g.live.length > 1) for (const other of g.live.slice()) if (other !== this) other.abort(new AbortReason('hedge_lost'));
    if (this.timer) clearTimeout(this.timer);
    const res = g.ctx.res;
    res.writeHead(statusCode, responseHeaders(g.ctx, headers));
    // The head and what arrives this turn go out together at the end of the turn (see write-batch.ts).
    g.ctx.writes?.cork(res);
    this.controller = controller;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.committed) return;
    const res = this.g.ctx.res as GatewayContext['res'] & { once(ev: 'drain', fn: () => void): void };
    this.g.ctx.responseBytes += chunk.byteLength;
    if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    if (this.committed) {
      const ctx = this.g.ctx;
      if (ctx.writes) ctx.writes.finish(ctx.res);
      else ctx.res.end();
    }
    this.settle(this.committed ? { kind: 'committed', status: this.status } : { kind: 'discarded', status: this.status });
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.committed) {
      // The head is already out: all we can do is cut the client connection so it sees the failure.
      this.g.ctx.res.destroy(err);
      return this.settle({ kind: 'committed', status: this.status });
    }
    if (this.discarding) return this.settle({ kind: 'discarded', status: this.status });
    const code = (err as { code?: string }).code ?? '';
    this.settle({ kind: 'failed', cause: CONNECT_CODES.has(code) ? 'connect' : 'reset', err });
  }

  private settle(o: Outcome): void {
    if (this.settled) return;
    this.settled = true;
    const g = this.g;
    this.ep.active--;
    const i = g.live.indexOf(this);
    if (i >= 0) g.live.splice(i, 1);
    g.cancel.off(this);
    if (this.timer) clearTimeout(this.timer);
    // Per-upstream stats count attempts (a retried request counts once per try); cancelled losers are left out.
    const endedAt = performance.now();
    const us = (endedAt - this.startedAt) * 1000;
    if (this.spanId !== undefined && g.ctx.tracer !== undefined) this.recordSpan(g.ctx.tracer, o, endedAt);
    const obs = g.cluster.observer;
    if (obs !== undefined && !(o.kind === 'failed' && (o.cause === 'client' || o.cause === 'hedge_lost' || o.cause === 'deadline'))) obs.attempt(this.ep, o.kind !== 'failed' ? String(o.status) : o.cause === 'connect' ? 'connect_error' : o.cause === 'per_try' ? 'timeout' : 'reset');
    if (o.kind !== 'failed') {
      g.cluster.record(this.ep, o.status >= 502 && o.status <= 504 ? 'gateway_error' : o.status >= 500 ? '5xx' : 'success');
      g.cluster.stats.record(o.status, us);
    } else if (o.cause === 'connect' || o.cause === 'reset' || o.cause === 'per_try') {
      g.cluster.record(this.ep, 'gateway_error');
      g.cluster.stats.record(o.cause === 'per_try' ? 504 : o.cause === 'connect' ? 503 : 502, us);
    }
    this.resolve(o);
  }
}
