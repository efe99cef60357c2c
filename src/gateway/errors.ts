import { SkiffError } from '../util/errors.js';

/**
 * GatewayError is an error raised on purpose while serving a request: `status` is what the client
 * sees and `publicMessage` the short plain-text body (no internal detail).
 */
export class GatewayError extends SkiffError {
  readonly status: number;
  readonly publicMessage: string;
  constructor(code: string, status: number, publicMessage: string, message = publicMessage, options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
    this.publicMessage = publicMessage;
  }
}

/** UpstreamTimeoutError: the upstream or Function did not answer within the route's timeout (504). */
export class UpstreamTimeoutError extends GatewayError {
  constructor(what: string) {
    super('upstream_timeout', 504, 'upstream request timeout\n', `${what} did not answer in time`);
  }
}

/** BadGatewayError: the upstream failed (refused, reset, died mid-response) before an answer (502). */
export class BadGatewayError extends GatewayError {
  constructor(what: string, cause?: unknown) {
    super('bad_gateway', 502, 'bad gateway\n', `${what} failed`, { cause });
  }
}

/** OverloadedError: a limit was reached (in-flight requests, circuit breaker, buffered bytes) (503). */
export class OverloadedError extends GatewayError {
  constructor(what: string) {
    super('overloaded', 503, 'service overloaded, retry later\n', what);
  }
}

/** NoHealthyUpstreamError: the destination has no endpoint to send to (503). */
export class NoHealthyUpstreamError extends GatewayError {
  constructor(service: string) {
    super('no_healthy_upstream', 503, 'no healthy upstream\n', `service ${service} has no available endpoint`);
  }
}

/**
 * NotServedHereError: another node forwarded a request for a Function this node has no ready replica
 * of (503). A forwarded request is never forwarded again, so that two nodes with stale views of each
 * other cannot bounce it between them.
 */
export class NotServedHereError extends GatewayError {
  constructor(fn: string, node: string) {
    super('not_served_here', 503, `function ${fn} has no ready replica on node ${node}; a forwarded request is not forwarded again\n`, `forwarded request for ${fn}: no ready replica on this node`);
  }
}

/** BodyTooLargeError: the request body exceeds the buffering limit (413). */
export class BodyTooLargeError extends GatewayError {
  constructor(limit: number) {
    super('body_too_large', 413, 'request body too large\n', `request body exceeds ${limit} bytes`);
  }
}

/**
 * ConfigError reports an object the gateway cannot compile; `field` is the path from the object root
 * (`spec.http[0].match[0].uri.regex`).
 */
export class ConfigError extends SkiffError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('invalid_config', `${field}: ${message}`);
    this.field = field;
  }
}

/**
 * statusForInvokerError maps an error thrown by a FunctionInvoker to a status and a short public body,
 * following the codes the control plane documents.
 */
export function statusForInvokerError(err: unknown, fn: string): { status: number; body: string } {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'function_not_found':
      return { status: 503, body: `function ${fn} is not available\n` };
    case 'not_ready':
      return { status: 503, body: `function ${fn} is not ready\n` };
    case 'timeout':
      return { status: 504, body: 'function timed out\n' };
    case 'overloaded':
      return { status: 503, body: 'function overloaded, retry later\n' };
    case 'bad_gateway':
      return { status: 502, body: 'bad gateway\n' };
    default:
      if (err instanceof GatewayError) return { status: err.status, body: err.publicMessage };
      return { status: 500, body: 'internal error\n' };
  }
}
