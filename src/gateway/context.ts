import type { Readable } from 'node:stream';

import type { Tracer } from '../util/tracing.js';

import type { CancelToken } from './cancel.js';
import type { TraceContext } from './observability/trace.js';
import type { OutgoingHeaders, ResponseWriter } from './response-writer.js';
import type { WriteBatch } from './write-batch.js';

export type { OutgoingHeaders, ResponseWriter } from './response-writer.js';

/** BufferedResponse is a complete response a filter or a Function produced. */
export interface BufferedResponse {
  status: number;
  headers: OutgoingHeaders;
  body: Uint8Array | string;
}

/** RetryPolicy is a compiled retry configuration (see filters/retry). */
export interface RetryPolicy {
  attempts: number;
  perTryTimeoutMs?: number;
  on5xx: boolean;
  onGatewayError: boolean;
  onReset: boolean;
  onConnectFailure: boolean;
  retriableStatusCodes: ReadonlySet<number>;
  baseIntervalMs: number;
  maxIntervalMs: number;
}

/** HedgePolicy is a compiled hedging configuration (see filters/hedge). */
export interface HedgePolicy {
  /** Fixed delay before the second attempt, or undefined to use the route's observed p95. */
  delayMs?: number;
  /** Lower bound when the delay comes from the observed p95. */
  minDelayMs: number;
}

/**
 * GatewayContext carries one request through the filter chain to the destination. Filters read and
 * change the request fields, short-circuit by setting `response`, and register response-header edits.
 */
export interface GatewayContext {
  method: string;
  /** Path without the query; rewrites change it. */
  path: string;
  rawQuery: string;
  /** Request headers (lower-case names) as they will be forwarded. */
  headers: Record<string, string | string[] | undefined>;
  /** Host header without the port. */
  host: string;
  remoteAddress: string;
  requestId: string;
  trace: TraceContext;
  /** Set only when the request's trace is sampled: where its spans go (the server span is `trace.spanId`). */
  tracer?: Tracer;
  /** The incoming body stream; use readBody() when the whole body is needed. */
  rawBody: Readable;
  /** The buffered body once readBody() has run. */
  body?: Uint8Array;
  readBody(): Promise<Uint8Array>;
  /** The whole body when it is already known (read, or a request that has none); else undefined and readBody() is needed. */
  bodyNow?(): Uint8Array | undefined;
  /** Verified JWT claims, set by the jwt filter. */
  claims?: Record<string, unknown>;
  /** The peer's SPIFFE identity when the connection used mutual TLS. */
  peerIdentity?: string;
  /**
   * Set on a request another node forwarded over the mesh (the forwarding node's SPIFFE ID): it is
   * served by this node's own replicas only, never forwarded again.
   */
  forwardedBy?: string;
  /** A response that ends the chain; written after the chain returns unless already streamed. */
  response?: BufferedResponse;
  /** Response header edits applied to whatever response is written (buffered or streamed). */
  responseHeaderEdits: Array<(h: OutgoingHeaders, ctx: GatewayContext) => void>;
  /** Overall time for the destination to answer. */
  timeoutMs: number;
  retry?: RetryPolicy;
  hedge?: HedgePolicy;
  /** Aborted when the client goes away or the route deadline passes (created on first use). */
  readonly signal: AbortSignal;
  /** The same as `signal` in the cheap form the hot path uses. */
  readonly cancel: CancelToken;
  startedAt: number;
  res: ResponseWriter;
  /** Holds an HTTP/1.x answer's writes until the end of the event-loop turn (see write-batch.ts); unset for HTTP/2. */
  writes?: WriteBatch;
  /** Free-form values filters share (e.g. the authz decision cache key). */
  state: Record<string, unknown>;
  /** The `uri.prefix` of the match entry that selected the rule, for prefix rewrites. */
  matchedPrefix?: string;
  /** The upstream that served the request, for logs and metrics. */
  upstream?: string;
  /** Bytes of response body written to the client so far, for the size metrics. */
  responseBytes: number;
}

/** Next runs the rest of the chain (the following filters, then the rule's dispatch) and always returns a promise. */
export type Next = () => Promise<void>;

/** Handler is one filter step: it may act before and after calling next, or answer without it. */
export type Handler = (ctx: GatewayContext, next: Next) => Promise<void>;

/**
 * Dispatch is a rule's terminal step (dispatch.ts), and a whole chain as the gateway runs it. It
 * answers now or later: undefined means the answer is already in `ctx.response` (a redirect, a direct
 * response, a Function that ran on the gateway's thread), written by the gateway in the same call
 * stack; otherwise the promise settles once the answer is there or streamed. Filters never see this
 * shape: behind filters, `compose` turns it into a promise.
 */
export type Dispatch = (ctx: GatewayContext) => Promise<void> | undefined;
