import { AbortReason, type CancelToken } from './cancel.js';
import type { Dispatch, GatewayContext } from './context.js';
import { DirectResponseDestination, RedirectDestination } from './destinations/fixed.js';
import { FunctionDestination } from './destinations/function.js';
import { MirrorDestination } from './destinations/mirror.js';
import { ServiceDestination } from './destinations/service.js';
import type { Destination, DestinationDeps } from './destinations/types.js';
import type { CompiledRule, DestinationRef } from './router/compile-route.js';
import { replaceAll } from './router/values.js';

/** DispatchDeps are what the terminal step needs from the gateway's current configuration. */
export type DispatchDeps = DestinationDeps;

function expire(cancel: CancelToken): void {
  cancel.cancel(new AbortReason('deadline'));
}

/** withDeadline cancels the request when what is left of the route's deadline passes first. */
function withDeadline(ctx: GatewayContext, ms: number, pending: Promise<void>): Promise<void> {
  const timer = setTimeout(expire, Math.max(0, ms), ctx.cancel);
  return pending.finally(() => clearTimeout(timer));
}

function destinationFor(ref: DestinationRef, deps: DispatchDeps): Destination {
  return ref.kind === 'function' ? new FunctionDestination(ref, deps) : new ServiceDestination(ref, deps);
}

/** weighted returns a chooser of one destination by weight (the first, without a draw, when there is one). */
function weighted(list: ReadonlyArray<{ destination: Destination; weight: number }>): () => Destination {
  if (list.length === 1) {
    const only = list[0]!.destination;
    return () => only;
  }
  const cumulative: number[] = [];
  let acc = 0;
  for (const d of list) cumulative.push((acc += d.weight));
  return () => {
    const r = Math.random() * acc;
    for (let i = 0; i < cumulative.length; i++) if (r < cumulative[i]!) return list[i]!.destination;
    return list[list.length - 1]!.destination;
  };
}

/** rewrittenPath applies the rule's `rewrite` (and its authority to the Host header) and returns the path to send. */
function rewrittenPath(ctx: GatewayContext, rw: NonNullable<CompiledRule['rewrite']>): string {
  let path = ctx.path;
  if (rw.uri !== undefined) {
    if (ctx.matchedPrefix !== undefined) {
      const rest = path.slice(ctx.matchedPrefix.length);
      path = rw.uri.endsWith('/') && rest.startsWith('/') ? rw.uri + rest.slice(1) : rw.uri + rest;
    } else path = rw.uri;
    if (path === '') path = '/';
  } else if (rw.regex) path = replaceAll(rw.regex, path);
  if (rw.authority !== undefined) ctx.headers.host = rw.authority;
  return path;
}

/**
 * functionDispatch sends every request to one Function, under the request's deadline: what a node
 * runs for a request another node forwarded to it (no route, no filters: the entry node ran them).
 */
export function functionDispatch(namespace: string, name: string, deps: DispatchDeps): Dispatch {
  const dest = new FunctionDestination({ kind: 'function', namespace, name }, deps);
  return (ctx) => {
    const t0 = performance.now();
    const pending = dest.send(ctx, ctx.path, ctx.cancel);
    if (pending === undefined) return undefined;
    return withDeadline(ctx, ctx.timeoutMs - (performance.now() - t0), pending);
  };
}

/**
 * createDispatch builds a rule's terminal step: it chooses the destination (the redirect or direct
 * response, else one of the weighted destinations after the rewrite, with the mirror's copy sent
 * first) and holds the route's deadline over it. The destinations themselves live in destinations/.
 *
 * It answers now or later (see Dispatch). A destination that answered at once needs no deadline
 * timer: nothing else ran meanwhile, and a Function run on this thread is bounded by its fuel. When
 * the answer is still to come, the timer is set for what is left of the deadline.
 */
export function createDispatch(rule: CompiledRule, deps: DispatchDeps): Dispatch {
  const fixed = rule.redirect ? new RedirectDestination(rule.redirect) : rule.directResponse ? new DirectResponseDestination(rule.directResponse) : undefined;
  if (fixed) return (ctx) => fixed.send(ctx);
  const choose = weighted(rule.destinations.map((d) => ({ destination: destinationFor(d.destination, deps), weight: d.weight })));
  const rw = rule.rewrite;
  const mirror = rule.mirror ? new MirrorDestination(rule.mirror, deps) : undefined;

  const run = (ctx: GatewayContext, path: string): Promise<void> | undefined => {
    const t0 = performance.now();
    const pending = choose().send(ctx, path, ctx.cancel);
    if (pending === undefined) return undefined;
    return withDeadline(ctx, ctx.timeoutMs - (performance.now() - t0), pending);
  };

  return function dispatch(ctx) {
    const path = rw ? rewrittenPath(ctx, rw) : ctx.path;
    if (!mirror) return run(ctx, path);
    const copied = mirror.send(ctx, path);
    return copied === undefined ? run(ctx, path) : copied.then(() => run(ctx, path));
  };
}
