import { AbortReason, CancelToken } from '../cancel.js';
import type { GatewayContext } from '../context.js';
import type { DestinationRef } from '../router/compile-route.js';

import { FunctionDestination } from './function.js';
import { hasBody } from './request.js';
import { ServiceShadow } from './service.js';
import type { Destination, DestinationDeps } from './types.js';

function expire(cancel: CancelToken): void {
  cancel.cancel(new AbortReason('deadline'));
}

/**
 * MirrorDestination sends a shadow copy of a share (`percent`) of a rule's requests to another
 * destination, as Istio's `mirror` does: with its own deadline (the route's timeout) and its own
 * cancellation (the copy goes on when the client leaves), a copy of the headers and the buffered body,
 * and a response that is thrown away; failures are only logged. `send` buffers a request body first,
 * so the primary destination can send it too; it answers at once (undefined) when there is none, else
 * once the body is read and the copy started. It never waits for the copy.
 */
export class MirrorDestination implements Destination {
  private readonly target: Destination;

  constructor(private readonly mirror: { destination: DestinationRef; percent: number }, private readonly deps: DestinationDeps) {
    const d = mirror.destination;
    this.target = d.kind === 'function' ? new FunctionDestination(d, deps) : new ServiceShadow(d, deps);
  }

  send(ctx: GatewayContext, path: string): Promise<void> | undefined {
    if (!hasBody(ctx)) return this.copy(ctx, path);
    return ctx.readBody().then(() => this.copy(ctx, path));
  }

  private copy(ctx: GatewayContext, path: string): undefined {
    if (Math.random() * 100 >= this.mirror.percent) return undefined;
    const cancel = new CancelToken();
    const timer = setTimeout(expire, ctx.timeoutMs, cancel);
    // The copy inherits everything from the request (including readBody) and overrides what must differ.
    const copy = Object.create(ctx) as GatewayContext;
    Object.assign(copy, {
      headers: { ...ctx.headers, host: `${ctx.host}-shadow` },
      responseHeaderEdits: [],
      res: { writeHead: () => undefined, write: () => true, end: () => undefined, destroy: () => undefined, headersSent: false, writableEnded: false },
      retry: undefined,
      hedge: undefined,
    });
    let pending: Promise<void> | undefined;
    try {
      pending = this.target.send(copy, path, cancel);
    } catch (err) {
      pending = Promise.reject(err);
    }
    if (pending === undefined) {
      clearTimeout(timer);
      return undefined;
    }
    pending.catch((err) => this.deps.logger.debug({ err, requestId: ctx.requestId }, 'mirror request failed')).finally(() => clearTimeout(timer));
    return undefined;
  }
}
