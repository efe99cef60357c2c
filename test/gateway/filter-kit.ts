import { Readable } from 'node:stream';

import { pino } from 'pino';
import { expect } from 'vitest';

import { CancelToken } from '../../src/gateway/cancel.js';
import type { GatewayContext, OutgoingHeaders } from '../../src/gateway/context.js';
import type { FilterEnv, FilterModule } from '../../src/gateway/filters/types.js';
import { HostDirs, UpstreamGuard } from '../../src/security/index.js';

/** fakeCtx builds a request context for filter unit tests. */
export function fakeCtx(over: Partial<GatewayContext> = {}): GatewayContext {
  const body = over.body;
  const ctx: GatewayContext = {
    method: 'GET',
    path: '/',
    rawQuery: '',
    headers: {},
    host: 'example.com',
    remoteAddress: '127.0.0.1',
    requestId: 'req-1',
    trace: { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), flags: '01' },
    rawBody: Readable.from([]),
    readBody: async () => body ?? new Uint8Array(),
    responseHeaderEdits: [],
    timeoutMs: 30_000,
    signal: new AbortController().signal,
    cancel: new CancelToken(),
    startedAt: 0,
    res: { writeHead: () => undefined, write: () => true, end: () => undefined, destroy: () => undefined, headersSent: false, writableEnded: false },
    state: {},
    responseBytes: 0,
    ...over,
  };
  return ctx;
}

/** env builds a FilterEnv with a controllable clock; filter tests may reach loopback servers but read no host files unless granted. */
export function fakeEnv(over: Partial<FilterEnv> = {}): FilterEnv & { clock: { t: number } } {
  const clock = { t: 1_700_000_000_000 };
  return { logger: pino({ level: 'silent' }), now: () => clock.t, where: 'test', carry: new Map(), upstreams: UpstreamGuard.permissive(), hostDirs: HostDirs.none(), clock, ...over };
}

/** run applies a filter to ctx; it reports whether next() was called and the response headers its edits produce. */
export async function run(mod: FilterModule, config: unknown, ctx: GatewayContext, env: FilterEnv = fakeEnv()): Promise<{ passed: boolean; responseHeaders: OutgoingHeaders }> {
  expect(mod.validate(config, 'f')).toEqual([]);
  const h = mod.create(config, env);
  let passed = false;
  await h(ctx, async () => {
    passed = true;
  });
  const responseHeaders: OutgoingHeaders = {};
  for (const e of ctx.responseHeaderEdits) e(responseHeaders, ctx);
  return { passed, responseHeaders };
}
