import type { ScaleGate } from '../activator.js';
import type { CancelToken } from '../cancel.js';
import type { GatewayContext } from '../context.js';
import { GatewayError, statusForInvokerError,UpstreamTimeoutError } from '../errors.js';
import type { TrafficStats } from '../observability/metrics.js';
import type { DestinationRef } from '../router/compile-route.js';
import type { FunctionResponse, GatewayRequest } from '../types.js';

import { definedHeaders, toOutgoing, upstreamHeaders } from './request.js';
import type { Destination, DestinationDeps } from './types.js';

/** FunctionRef names a Function destination. */
export type FunctionRef = Extract<DestinationRef, { kind: 'function' }>;

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

/**
 * FunctionDestination sends a request to a Function. A container or VM Function (found in
 * `deps.workloads`) goes to its replicas like a Service's endpoints; a Wasm one through the invoker's
 * two entry points. It is
 * the one place that branches on them: `tryInline` first, whose answer (a response or a failure) is
 * put in `ctx.response` at once, so `send` returns undefined; `invoke` only when tryInline declined,
 * handed the request's cancellation (whose signal it builds only if it reads it), and then `send`
 * returns a promise that also rejects as soon as the request is cancelled. The body
 * is buffered first (a Function gets it whole).
 */
export class FunctionDestination implements Destination {
  /** `namespace/name`, for logs and errors. */
  private readonly fn: string;
  /** The upstream name in logs and metrics. */
  private readonly upstream: string;
  /** Its counters, registered with the first request. */
  private stats?: TrafficStats;

  constructor(private readonly dest: FunctionRef, private readonly deps: DestinationDeps) {
    this.fn = `${dest.namespace}/${dest.name}`;
    this.upstream = `fn:${this.fn}`;
  }

  send(ctx: GatewayContext, path: string, cancel: CancelToken): Promise<void> | undefined {
    // Locality first: another node is asked only when no replica here is ready and healthy; a
    // request another node forwarded never leaves this one (see gateway.ts, serveForwarded).
    const remote = this.deps.remote?.get(this.fn);
    if (remote !== undefined && remote.available && ctx.forwardedBy === undefined && !this.servedHere()) {
      ctx.upstream = `mesh:${this.fn}`;
      return remote.send(ctx, path, cancel, this.deps.routeStats);
    }
    const gate = this.deps.scaling?.get(this.fn);
    if (gate === undefined) return this.sendNow(ctx, path, cancel);
    gate.enter();
    let admitted: Promise<void> | undefined;
    try {
      admitted = gate.admit(() => cancel.signal);
    } catch (err) {
      gate.leave();
      return this.failed(ctx, performance.now(), cancel, err);
    }
    if (admitted === undefined) return this.counted(gate, this.sendNow(ctx, path, cancel));
    const t0 = performance.now();
    return admitted.then(
      () => this.counted(gate, this.sendNow(ctx, path, cancel)),
      (err: unknown) => {
        gate.leave();
        return this.activationFailed(ctx, t0, cancel, err);
      },
    );
  }

  /** servedHere: a replica of the Function is ready and healthy on this node (a Wasm one: loaded here). */
  servedHere(): boolean {
    const w = this.deps.workloads?.get(this.fn);
    if (w !== undefined) return w.healthy();
    return this.deps.functions.has?.(this.dest.namespace, this.dest.name) ?? true;
  }

  /** counted ends the gate's count of a request once its answer is there. */
  private counted(gate: ScaleGate, pending: Promise<void> | undefined): Promise<void> | undefined {
    if (pending === undefined) {
      gate.leave();
      return undefined;
    }
    return pending.finally(() => gate.leave());
  }

  /** activationFailed answers a request that found no replica and could not get one: 503 with Retry-After, or the cancellation's error. */
  private activationFailed(ctx: GatewayContext, t0: number, cancel: CancelToken, err: unknown): Promise<void> | undefined {
    if (cancel.reason || !(err instanceof GatewayError)) return this.failed(ctx, t0, cancel, err);
    (this.stats ??= this.deps.upstreamStats(this.upstream)).record(err.status, (performance.now() - t0) * 1000);
    this.deps.logger.warn({ fn: this.fn, requestId: ctx.requestId, code: err.code }, err.message);
    ctx.upstream = this.upstream;
    ctx.response = { status: err.status, headers: { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1' }, body: err.publicMessage };
    return undefined;
  }

  private sendNow(ctx: GatewayContext, path: string, cancel: CancelToken): Promise<void> | undefined {
    const workload = this.deps.workloads?.get(this.fn);
    if (workload) {
      ctx.upstream = this.upstream;
      return workload.send(ctx, path, cancel, this.deps.routeStats);
    }
    const body = ctx.bodyNow?.();
    if (body === undefined) return ctx.readBody().then((b) => this.sendWith(ctx, path, cancel, b));
    return this.sendWith(ctx, path, cancel, body);
  }

  private sendWith(ctx: GatewayContext, path: string, cancel: CancelToken, body: Uint8Array): Promise<void> | undefined {
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
    ctx.upstream = this.upstream;
    const t0 = performance.now();
    const fns = this.deps.functions;
    const { namespace, name } = this.dest;
    let now: FunctionResponse | Error | undefined;
    let later: Promise<FunctionResponse>;
    try {
      now = fns.tryInline(namespace, name, req);
      if (now !== undefined) return now instanceof Error ? this.failed(ctx, t0, cancel, now) : this.answered(ctx, t0, cancel, now);
      later = fns.invoke(namespace, name, req, cancel);
    } catch (err) {
      // Neither entry point may throw; an invoker that does anyway is answered as if it had failed.
      return this.failed(ctx, t0, cancel, err);
    }
    return untilCancelled(later, cancel).then(
      (res) => this.answered(ctx, t0, cancel, res),
      (err) => this.failed(ctx, t0, cancel, err),
    );
  }

  private answered(ctx: GatewayContext, t0: number, cancel: CancelToken, r: FunctionResponse): Promise<void> | undefined {
    if (cancel.reason) return this.failed(ctx, t0, cancel, cancel.reason);
    ctx.response = { status: r.status, headers: toOutgoing(r.headers), body: r.body };
    (this.stats ??= this.deps.upstreamStats(this.upstream)).record(r.status, (performance.now() - t0) * 1000);
    return undefined;
  }

  /**
   * failed answers for a failed invocation with the status its code maps to, or, when the client left
   * or the deadline passed, ends the request with that error instead (a rejected promise).
   */
  private failed(ctx: GatewayContext, t0: number, cancel: CancelToken, err: unknown): Promise<void> | undefined {
    const mapped = statusForInvokerError(err, this.dest.name);
    const reason = cancel.reason;
    (this.stats ??= this.deps.upstreamStats(this.upstream)).record(reason?.why === 'deadline' ? 504 : mapped.status, (performance.now() - t0) * 1000);
    if (reason) return Promise.reject(reason.why === 'client' ? new GatewayError('client_closed', 499, '', 'client went away') : new UpstreamTimeoutError(`function ${this.fn}`));
    if (mapped.status === 500) this.deps.logger.error({ err, fn: this.fn, requestId: ctx.requestId }, 'function invocation failed');
    ctx.response = { status: mapped.status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: mapped.body };
    return undefined;
  }
}
