import type { GatewayContext } from '../context.js';
import type { CompiledRule } from '../router/compile-route.js';

import type { Destination } from './types.js';

/** RedirectDestination answers every request with the rule's redirect, at once. */
export class RedirectDestination implements Destination {
  constructor(private readonly redirect: NonNullable<CompiledRule['redirect']>) {}

  send(ctx: GatewayContext): undefined {
    const r = this.redirect;
    const port = r.port ? `:${r.port}` : '';
    const location = `${r.scheme ?? 'http'}://${r.authority ?? ctx.host}${port}${r.uri ?? ctx.path}${ctx.rawQuery ? `?${ctx.rawQuery}` : ''}`;
    ctx.response = { status: r.code, headers: { location }, body: '' };
    return undefined;
  }
}

/** DirectResponseDestination answers every request with the rule's fixed status and body, at once. */
export class DirectResponseDestination implements Destination {
  constructor(private readonly direct: NonNullable<CompiledRule['directResponse']>) {}

  send(ctx: GatewayContext): undefined {
    ctx.response = { status: this.direct.status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: this.direct.body };
    return undefined;
  }
}
