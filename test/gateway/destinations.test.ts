import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';

import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { AbortReason, type Cancellation,CancelToken } from '../../src/gateway/cancel.js';
import type { GatewayContext } from '../../src/gateway/context.js';
import { DirectResponseDestination, RedirectDestination } from '../../src/gateway/destinations/fixed.js';
import { FunctionDestination } from '../../src/gateway/destinations/function.js';
import { MirrorDestination } from '../../src/gateway/destinations/mirror.js';
import { ServiceShadow } from '../../src/gateway/destinations/service.js';
import type { DestinationDeps } from '../../src/gateway/destinations/types.js';
import { createDispatch } from '../../src/gateway/dispatch.js';
import { GatewayError } from '../../src/gateway/errors.js';
import { TrafficStats } from '../../src/gateway/observability/metrics.js';
import { compileRoute } from '../../src/gateway/router/compile-route.js';
import type { FunctionInvoker, FunctionResponse, GatewayRequest } from '../../src/gateway/types.js';
import { Cluster } from '../../src/gateway/upstream/cluster.js';
import { compileService } from '../../src/gateway/upstream/service-spec.js';
import { HostDirs, UpstreamGuard } from '../../src/security/index.js';

import { fakeCtx } from './filter-kit.js';
import { route, service, startUpstream, type Upstream } from './helpers.js';

const text = (s: string, status = 200): FunctionResponse => ({ status, headers: [['content-type', 'text/plain'], ['X-Multi', 'a'], ['x-multi', 'b'], ['content-length', '999']], body: Buffer.from(s) });
const bodyOf = (ctx: GatewayContext) => Buffer.from(ctx.response!.body as Uint8Array).toString();

/** ScriptedInvoker answers through the entry point the test scripts, and records what each saw. */
class ScriptedInvoker implements FunctionInvoker {
  inline: GatewayRequest[] = [];
  invoked: Array<{ req: GatewayRequest; cancel: Cancellation }> = [];
  now: (req: GatewayRequest) => FunctionResponse | Error | undefined = (req) => text(`now ${req.path}`);
  later: (req: GatewayRequest, cancel: Cancellation) => Promise<FunctionResponse> = async (req) => text(`later ${req.path}`);
  tryInline(_ns: string, _name: string, req: GatewayRequest) {
    this.inline.push(req);
    return this.now(req);
  }
  invoke(_ns: string, _name: string, req: GatewayRequest, cancel: Cancellation) {
    this.invoked.push({ req, cancel });
    return this.later(req, cancel);
  }
}

function deps(functions: FunctionInvoker, clusters = new Map<string, Cluster>()): DestinationDeps & { stats: Map<string, TrafficStats>; errors: unknown[]; debug: unknown[] } {
  const stats = new Map<string, TrafficStats>();
  const errors: unknown[] = [];
  const debug: unknown[] = [];
  const logger = pino({ level: 'silent' });
  vi.spyOn(logger, 'error').mockImplementation(((o: unknown) => void errors.push(o)) as never);
  vi.spyOn(logger, 'debug').mockImplementation(((o: unknown) => void debug.push(o)) as never);
  return {
    functions,
    clusters,
    routeStats: new TrafficStats(),
    upstreamStats: (k) => {
      let s = stats.get(k);
      if (!s) stats.set(k, (s = new TrafficStats()));
      return s;
    },
    logger,
    stats,
    errors,
    debug,
  };
}

/** ctxWith is a request context whose body is already known (empty), as the gateway's is for a GET. */
function ctxWith(over: Partial<GatewayContext> = {}): GatewayContext {
  const ctx = fakeCtx({ headers: { host: 'example.com', 'user-agent': 't', connection: 'keep-alive' }, path: '/p', ...over });
  ctx.bodyNow = () => ctx.body ?? new Uint8Array(0);
  return ctx;
}

const fn = { kind: 'function' as const, namespace: 'default', name: 'f' };

afterEach(() => {
  vi.restoreAllMocks();
});

describe('FunctionDestination', () => {
  it('answers at once when tryInline answers: no promise, no invoke, the response and the stats in place', () => {
    const inv = new ScriptedInvoker();
    const d = deps(inv);
    const ctx = ctxWith();
    expect(new FunctionDestination(fn, d).send(ctx, '/rewritten', ctx.cancel)).toBeUndefined();
    expect(ctx.response!.status).toBe(200);
    expect(bodyOf(ctx)).toBe('now /rewritten');
    // Header pairs fold into the response's headers; the gateway computes Content-Length itself.
    expect(ctx.response!.headers).toEqual({ 'content-type': 'text/plain', 'x-multi': ['a', 'b'] });
    expect(ctx.upstream).toBe('fn:default/f');
    expect(d.stats.get('fn:default/f')!.requests).toBe(1);
    expect(inv.invoked).toHaveLength(0);
    // The Function sees forwarding headers and no hop-by-hop ones.
    const seen = inv.inline[0]!;
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-request-id']).toBe('req-1');
    expect(seen.headers.connection).toBeUndefined();
    expect(seen.traceparent).toMatch(/^00-a{32}-[0-9a-f]{16}-01$/);
  });

  it('maps a failure value from tryInline to its status at once, logging only what maps to 500', () => {
    const inv = new ScriptedInvoker();
    const d = deps(inv);
    for (const [code, status] of [['overloaded', 503], ['timeout', 504], ['bad_gateway', 502], ['not_ready', 503], ['trap', 500]] as const) {
      inv.now = () => Object.assign(new Error('detail'), { code });
      const ctx = ctxWith();
      expect(new FunctionDestination(fn, d).send(ctx, '/p', ctx.cancel), code).toBeUndefined();
      expect(ctx.response!.status, code).toBe(status);
      expect(bodyOf(ctx)).not.toContain('detail');
    }
    expect(d.errors).toHaveLength(1);
    expect(d.stats.get('fn:default/f')!.byClass['5xx']).toBe(5);
  });

  it('answers 500 at once, without throwing, for an invoker whose tryInline throws', () => {
    const inv = new ScriptedInvoker();
    inv.now = () => {
      throw new TypeError('contract broken');
    };
    const ctx = ctxWith();
    expect(new FunctionDestination(fn, deps(inv)).send(ctx, '/p', ctx.cancel)).toBeUndefined();
    expect(ctx.response!.status).toBe(500);
    expect(inv.invoked).toHaveLength(0);
  });

  it('calls invoke with the declined request and a live signal, and answers later', async () => {
    const inv = new ScriptedInvoker();
    inv.now = () => undefined;
    const ctx = ctxWith();
    const pending = new FunctionDestination(fn, deps(inv)).send(ctx, '/p', ctx.cancel);
    expect(pending).toBeInstanceOf(Promise);
    expect(ctx.response).toBeUndefined();
    await pending;
    expect(bodyOf(ctx)).toBe('later /p');
    expect(inv.invoked[0]!.req).toBe(inv.inline[0]);
    expect(inv.invoked[0]!.cancel.signal.aborted).toBe(false);
  });

  it('hands invoke the request cancellation without building its AbortSignal', async () => {
    const inv = new ScriptedInvoker();
    inv.now = () => undefined;
    const ctx = ctxWith();
    await new FunctionDestination(fn, deps(inv)).send(ctx, '/p', ctx.cancel);
    expect(inv.invoked[0]!.cancel).toBe(ctx.cancel);
    expect((ctx.cancel as unknown as { abortSignal?: AbortSignal }).abortSignal).toBeUndefined();
    // An invoker that reads it gets one that follows the request.
    const signal = inv.invoked[0]!.cancel.signal;
    expect(inv.invoked[0]!.cancel.signal).toBe(signal);
    ctx.cancel.cancel(new AbortReason('client'));
    expect(signal.aborted).toBe(true);
  });

  it('maps a rejection from invoke like a failure value', async () => {
    const inv = new ScriptedInvoker();
    inv.now = () => undefined;
    inv.later = () => Promise.reject(Object.assign(new Error('x'), { code: 'overloaded' }));
    const ctx = ctxWith();
    await new FunctionDestination(fn, deps(inv)).send(ctx, '/p', ctx.cancel);
    expect(ctx.response!.status).toBe(503);
  });

  it('rejects with 504 as soon as the deadline cancels, without waiting for invoke, and aborts the signal', async () => {
    const inv = new ScriptedInvoker();
    inv.now = () => undefined;
    inv.later = () => new Promise(() => undefined);
    const d = deps(inv);
    const ctx = ctxWith();
    const pending = new FunctionDestination(fn, d).send(ctx, '/p', ctx.cancel)!;
    ctx.cancel.cancel(new AbortReason('deadline'));
    await expect(pending).rejects.toMatchObject({ status: 504 });
    expect(inv.invoked[0]!.cancel.signal.aborted).toBe(true);
    expect(d.stats.get('fn:default/f')!.byClass['5xx']).toBe(1);
    expect(ctx.response).toBeUndefined();
  });

  it('rejects with 499 when the client went away, and drops an answer that comes after', async () => {
    const inv = new ScriptedInvoker();
    inv.now = () => undefined;
    let answer!: (r: FunctionResponse) => void;
    inv.later = () => new Promise((r) => (answer = r));
    const ctx = ctxWith();
    const pending = new FunctionDestination(fn, deps(inv)).send(ctx, '/p', ctx.cancel)!;
    ctx.cancel.cancel(new AbortReason('client'));
    answer(text('too late'));
    const err = await pending.catch((e) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect(err.status).toBe(499);
    expect(ctx.response).toBeUndefined();
  });

  it('rejects, never throws, when the request was cancelled before an answer at once', async () => {
    const inv = new ScriptedInvoker();
    const ctx = ctxWith();
    ctx.cancel.cancel(new AbortReason('deadline'));
    let pending: Promise<void> | undefined;
    expect(() => (pending = new FunctionDestination(fn, deps(inv)).send(ctx, '/p', ctx.cancel))).not.toThrow();
    await expect(pending).rejects.toMatchObject({ status: 504 });
  });

  it('reads a body that is not known yet first, then answers', async () => {
    const inv = new ScriptedInvoker();
    inv.now = (req) => text(`got ${Buffer.from(req.body).toString()}`);
    const ctx = fakeCtx({ method: 'POST', body: Buffer.from('payload') });
    ctx.bodyNow = () => undefined;
    const pending = new FunctionDestination(fn, deps(inv)).send(ctx, '/p', ctx.cancel);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(bodyOf(ctx)).toBe('got payload');
  });
});

describe('fixed answers', () => {
  it('redirects at once, keeping the query, with the request path unless the rule names one', () => {
    const ctx = ctxWith({ rawQuery: 'a=1', host: 'example.com' });
    expect(new RedirectDestination({ code: 301, scheme: 'https', port: 8443 }).send(ctx)).toBeUndefined();
    expect(ctx.response).toEqual({ status: 301, headers: { location: 'https://example.com:8443/p?a=1' }, body: '' });
    const other = ctxWith();
    new RedirectDestination({ code: 302, authority: 'other.example', uri: '/new' }).send(other);
    expect(other.response!.headers.location).toBe('http://other.example/new');
  });

  it('answers a direct response at once, each request with its own headers object', () => {
    const d = new DirectResponseDestination({ status: 418, body: 'teapot\n' });
    const a = ctxWith();
    const b = ctxWith();
    expect(d.send(a)).toBeUndefined();
    d.send(b);
    expect(a.response).toEqual({ status: 418, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'teapot\n' });
    expect(a.response!.headers).not.toBe(b.response!.headers);
  });
});

describe('MirrorDestination', () => {
  it('sends a copy to a Function with its own host and response, leaving the request untouched', () => {
    const inv = new ScriptedInvoker();
    const ctx = ctxWith();
    const m = new MirrorDestination({ destination: { kind: 'function', namespace: 'default', name: 'shadow' }, percent: 100 }, deps(inv));
    expect(m.send(ctx, '/p')).toBeUndefined();
    expect(inv.inline).toHaveLength(1);
    expect(inv.inline[0]!.headers.host).toBe('example.com-shadow');
    expect(ctx.headers.host).toBe('example.com');
    expect(ctx.response).toBeUndefined();
    expect(ctx.upstream).toBeUndefined();
  });

  it('sends nothing outside its percentage', () => {
    const inv = new ScriptedInvoker();
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const ctx = ctxWith();
    void new MirrorDestination({ destination: fn, percent: 50 }, deps(inv)).send(ctx, '/p');
    expect(inv.inline).toHaveLength(0);
    void new MirrorDestination({ destination: fn, percent: 51 }, deps(inv)).send(ctx, '/p');
    expect(inv.inline).toHaveLength(1);
  });

  it('buffers a request body before copying it, so the primary destination can send it too', async () => {
    const inv = new ScriptedInvoker();
    const ctx = fakeCtx({ method: 'POST', headers: { host: 'example.com', 'content-length': '4' } });
    const read = vi.fn(async () => (ctx.body = Buffer.from('data')));
    ctx.readBody = read;
    ctx.bodyNow = () => ctx.body;
    const pending = new MirrorDestination({ destination: fn, percent: 100 }, deps(inv)).send(ctx, '/p');
    expect(pending).toBeInstanceOf(Promise);
    expect(inv.inline).toHaveLength(0);
    await pending;
    expect(read).toHaveBeenCalledOnce();
    expect(Buffer.from(inv.inline[0]!.body).toString()).toBe('data');
  });

  it('does not wait for a copy answered later, has its own deadline rather than the request cancellation, and only logs its failure', async () => {
    const inv = new ScriptedInvoker();
    inv.now = () => undefined;
    inv.later = () => new Promise(() => undefined);
    const d = deps(inv);
    const ctx = ctxWith({ timeoutMs: 30 });
    expect(new MirrorDestination({ destination: fn, percent: 100 }, d).send(ctx, '/p')).toBeUndefined();
    ctx.cancel.cancel(new AbortReason('client'));
    const signal = inv.invoked[0]!.cancel.signal;
    expect(signal.aborted).toBe(false);
    await new Promise((r) => setTimeout(r, 80));
    expect(signal.aborted).toBe(true);
    expect(d.debug).toHaveLength(1);
    expect(d.errors).toHaveLength(0);
  });
});

describe('ServiceShadow', () => {
  let up: Upstream | undefined;
  afterEach(async () => {
    await up?.close();
    up = undefined;
  });

  it('sends the copy once to an endpoint and throws the answer away', async () => {
    const seen: Array<{ method?: string; url?: string; headers: IncomingHttpHeaders }> = [];
    up = await startUpstream((req, res) => {
      seen.push({ method: req.method, url: req.url, headers: req.headers });
      res.end('ignored');
    });
    const { service: spec } = compileService(service('api', { endpoints: [{ address: '127.0.0.1', port: up.port }] }));
    const cluster = new Cluster(spec!, new TrafficStats(), Date.now, { upstreams: UpstreamGuard.permissive(), tls: { hostDirs: HostDirs.none() } });
    try {
      const shadow = new ServiceShadow({ kind: 'service', namespace: 'default', name: 'api' }, deps(new ScriptedInvoker(), new Map([['default/api', cluster]])));
      const ctx = ctxWith({ rawQuery: 'q=1' });
      await shadow.send(ctx, '/copy', new CancelToken());
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ method: 'GET', url: '/copy?q=1' });
      expect(seen[0]!.headers['x-request-id']).toBe('req-1');
      expect(cluster.stats.requests).toBe(0);
      // A Service that is not there sends nothing and does not fail.
      await expect(new ServiceShadow({ kind: 'service', namespace: 'default', name: 'gone' }, deps(new ScriptedInvoker())).send(ctxWith(), '/', new CancelToken())).resolves.toBeUndefined();
    } finally {
      await cluster.close();
    }
  });
});

describe('createDispatch', () => {
  const rule = (http: Record<string, unknown>) => {
    const { route: r, errors } = compileRoute(route('r', { http: [http] }));
    expect(errors).toEqual([]);
    return r!.rules[0]!;
  };

  it('answers at once without a deadline timer when the destination does', () => {
    const timers = vi.spyOn(globalThis, 'setTimeout');
    const inv = new ScriptedInvoker();
    const dispatch = createDispatch(rule({ timeout: '50ms', route: [{ destination: { function: 'f' } }] }), deps(inv));
    const ctx = ctxWith();
    expect(dispatch(ctx)).toBeUndefined();
    expect(bodyOf(ctx)).toBe('now /p');
    expect(timers).not.toHaveBeenCalled();
  });

  it('holds the deadline over an answer that comes later', async () => {
    const inv = new ScriptedInvoker();
    inv.now = () => undefined;
    inv.later = () => new Promise(() => undefined);
    const dispatch = createDispatch(rule({ route: [{ destination: { function: 'f' } }] }), deps(inv));
    const ctx = ctxWith({ timeoutMs: 40 });
    const t0 = performance.now();
    await expect(dispatch(ctx)).rejects.toMatchObject({ status: 504 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(35);
    expect(ctx.cancel.reason?.why).toBe('deadline');
  });

  it('rewrites the path and authority before sending, and chooses among weighted destinations', () => {
    const inv = new ScriptedInvoker();
    const seen: string[] = [];
    inv.now = (req) => {
      seen.push(`${req.headers.host} ${req.path}`);
      return text('ok');
    };
    const dispatch = createDispatch(
      rule({ rewrite: { uri: '/v2/', authority: 'inner' }, route: [{ destination: { function: 'a' }, weight: 25 }, { destination: { function: 'b' }, weight: 75 }] }),
      deps(inv),
    );
    const random = vi.spyOn(Math, 'random');
    const upstreams: string[] = [];
    for (const r of [0.1, 0.3, 0.99]) {
      random.mockReturnValue(r);
      const ctx = ctxWith({ path: '/api/x', matchedPrefix: '/api' });
      void dispatch(ctx);
      upstreams.push(ctx.upstream!);
    }
    expect(upstreams).toEqual(['fn:default/a', 'fn:default/b', 'fn:default/b']);
    expect(seen[0]).toBe('inner /v2/x');
  });

  it('answers redirects and direct responses at once', () => {
    const redirect = createDispatch(rule({ redirect: { uri: '/moved' } }), deps(new ScriptedInvoker()));
    const ctx = ctxWith();
    expect(redirect(ctx)).toBeUndefined();
    expect(ctx.response!.status).toBe(301);
    const direct = createDispatch(rule({ directResponse: { status: 204 } }), deps(new ScriptedInvoker()));
    const ctx2 = ctxWith();
    expect(direct(ctx2)).toBeUndefined();
    expect(ctx2.response!.status).toBe(204);
  });

  it('sends the mirror copy before the primary request', () => {
    const inv = new ScriptedInvoker();
    const dispatch = createDispatch(rule({ mirror: { function: 'shadow' }, route: [{ destination: { function: 'f' } }] }), deps(inv));
    const ctx = ctxWith();
    expect(dispatch(ctx)).toBeUndefined();
    expect(inv.inline.map((r) => r.headers.host)).toEqual(['example.com-shadow', 'example.com']);
    expect(bodyOf(ctx)).toBe('now /p');
  });

  it('streams a request without a body through at once and reads one with a body first when mirroring', async () => {
    const inv = new ScriptedInvoker();
    const dispatch = createDispatch(rule({ mirror: { function: 'shadow' }, route: [{ destination: { function: 'f' } }] }), deps(inv));
    const ctx = fakeCtx({ method: 'POST', headers: { host: 'example.com', 'content-length': '2' }, rawBody: Readable.from([]) });
    ctx.readBody = async () => (ctx.body = Buffer.from('hi'));
    ctx.bodyNow = () => ctx.body;
    const pending = dispatch(ctx);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(inv.inline.map((r) => Buffer.from(r.body).toString())).toEqual(['hi', 'hi']);
  });
});
