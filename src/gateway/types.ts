import type { Logger } from 'pino';

import type { ResourceObject } from '../api/kinds/types.js';
import type { HostDirs, UpstreamGuard } from '../security/index.js';

import type { Cancellation } from './cancel.js';
import type { PathOptions } from './request-path.js';

/** GatewayRequest is one HTTP request as a Function sees it (header names are lower-case). */
export interface GatewayRequest {
  method: string;
  path: string;
  rawQuery: string;
  headers: Record<string, string | string[]>;
  body: Uint8Array;
  remoteAddress: string;
  requestId: string;
  traceparent?: string;
}

/** FunctionResponse is what a Function answers: status, ordered headers and a complete body. */
export interface FunctionResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Uint8Array;
}

/**
 * FunctionInvoker is implemented by the control plane: it runs a Skiff Function (a WASI module) for
 * one request, through one of two entry points. The gateway's dispatcher calls `tryInline` first and
 * `invoke` only when it returned undefined.
 *
 * Failures carry a `code`: `function_not_found` and `not_ready` → 503, `timeout` → 504,
 * `overloaded` → 503, `bad_gateway` → 502, anything else → 500.
 */
export interface FunctionInvoker {
  /**
   * tryInline answers now, on the gateway's thread, if it can: the response, or the failure as an
   * Error value (returned, not thrown), or undefined when the answer can only come later (then the
   * gateway calls `invoke` with the same request object). It must never throw nor return a promise;
   * an invoker that never answers at once returns undefined.
   */
  tryInline(namespace: string, name: string, req: GatewayRequest): FunctionResponse | Error | undefined;
  /**
   * invoke answers later. `cancel.signal` aborts when the client goes away or the route deadline
   * passes; the gateway answers 504 or 499 at that moment whether or not invoke settles, and drops a
   * late answer. The signal is built on first read: an invoker that cannot be interrupted need not
   * read it, and then costs the request no AbortController.
   */
  invoke(namespace: string, name: string, req: GatewayRequest, cancel: Cancellation): Promise<FunctionResponse>;
  /**
   * has tells whether the Function is loaded on this node and can serve. In a cluster a Wasm Function
   * not loaded here is sent to a node that has it; an invoker without `has` is taken to serve all.
   */
  has?(namespace: string, name: string): boolean;
}

/** AuthzDecision is an authorizer's answer; `headers` are added to the upstream request when allowed, to the denial otherwise. */
export interface AuthzDecision {
  allowed: boolean;
  headers?: Record<string, string>;
  status?: number;
  body?: string;
}

/**
 * Authorizer evaluates a policy over an Envoy ext_authz-shaped input (`attributes.request.http`,
 * `parsed_path`, `parsed_query`, the JWT claims, the peer identity). The policy engine implements it;
 * `options.policy` is the query or policy name the route's authz filter names, when it names one, and
 * `options.timeoutMs` the decision's deadline. A decision past its deadline rejects with an error whose
 * `code` is `eval_cancel_error`; a policy short-circuited after repeated deadline failures rejects at
 * once with `policy_backoff`. The filter fails closed on both.
 */
export interface Authorizer {
  check(input: object, options?: { policy?: string; timeoutMs?: number }): Promise<AuthzDecision>;
}

/** GatewayConfig is the whole routing configuration: every stored Route and Service object. */
export interface GatewayConfig {
  routes: ResourceObject[];
  services: ResourceObject[];
}

/** GatewayOptions configures a Gateway; only `functions` and `logger` are required. */
export interface GatewayOptions {
  functions: FunctionInvoker;
  logger: Logger;
  /** The policy hook used by `authz` filters (an {@link Authorizer}). */
  authorizer?: unknown;
  /** Listener limits; every field has a safe default. */
  limits?: Partial<GatewayLimits>;
  /** Writes one JSON access-log line per request at `info` level (default true). */
  accessLog?: boolean;
  /**
   * Request path normalisation (default: `%2F`, `%5C` and a raw backslash refused with 400, slashes merged). Dot
   * segments and escapes of unreserved characters are always normalised.
   */
  paths?: Partial<PathOptions>;
  /**
   * Where Services and JWKS URLs may connect (`skiff up --allow-upstream`). Default: the strict guard
   * (no loopback, link-local, multicast or unspecified target); tests that proxy to loopback pass
   * `UpstreamGuard.permissive()`. The gateway's own listeners are refused whatever the guard allows.
   */
  upstreams?: UpstreamGuard;
  /** Host directories the gateway may read on a route's behalf: JWKS files, upstream CA and client certificates (default: none). */
  hostDirs?: HostDirs;
}

/** GatewayLimits are the listener's protective limits. */
export interface GatewayLimits {
  /** Largest request head in bytes; larger gets 431. */
  maxHeaderBytes: number;
  /** Time allowed to receive the complete request head; slower connections are closed. */
  headersTimeoutMs: number;
  /** Time allowed to receive the whole request. */
  requestTimeoutMs: number;
  /** Idle keep-alive time of an HTTP/1.1 connection, and of an HTTP/2 session with no open stream. */
  keepAliveTimeoutMs: number;
  /** Streams an HTTP/2 client may have open at once on one session (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams: number;
  /** Largest request body buffered for a Function or a filter that needs it; larger gets 413. */
  maxBodyBytes: number;
  /** Requests in flight beyond this are shed with 503. */
  maxInFlight: number;
  /** Total bytes of buffered request bodies beyond which new requests are shed with 503. */
  maxBufferedBytes: number;
  /** Default time a Function or upstream may take when the route sets no timeout. */
  defaultTimeoutMs: number;
}

/** ConfigProblem reports one object that could not be compiled and was skipped. */
export interface ConfigProblem {
  kind: string;
  namespace: string;
  name: string;
  message: string;
}
