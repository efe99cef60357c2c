import { afterEach, describe, expect, it } from 'vitest';

import { route, startGateway, type TestGateway } from './helpers.js';

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const json = async (r: Response) => JSON.parse(await r.text()) as Record<string, any>;

describe('gateway routing to functions', () => {
  it('serves the demo manifest and passes the request through', async () => {
    t = await startGateway([route('hello', { hosts: ['*'], http: [{ match: [{ uri: { prefix: '/hello' } }], route: [{ destination: { function: 'hello' }, weight: 100 }] }] })]);
    const r = await fetch(`${t.url}/hello/world?x=1`, { method: 'POST', body: 'hi', headers: { 'x-custom': 'yes' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-fn')).toBe('hello');
    expect(r.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const b = await json(r);
    expect(b).toMatchObject({ fn: 'default/hello', method: 'POST', path: '/hello/world', query: 'x=1', body: 'hi' });
    expect(b.headers['x-custom']).toBe('yes');
    expect(b.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(t.invoker.calls[0]!.req.remoteAddress).toBe('127.0.0.1');
    expect(t.invoker.calls[0]!.req.requestId).toBe(r.headers.get('x-request-id'));
  });

  it('answers 404 when nothing matches', async () => {
    t = await startGateway([route('hello', { http: [{ match: [{ uri: { exact: '/hello' } }], route: [{ destination: { function: 'hello' } }] }] })]);
    expect((await fetch(`${t.url}/hello/x`)).status).toBe(404);
    expect((await fetch(`${t.url}/hello`)).status).toBe(200);
  });

  it('matches regex, method, headers, query and withoutHeaders in rule order', async () => {
    t = await startGateway([
      route('r', {
        http: [
          { match: [{ uri: { regex: '/items/[0-9]+' }, method: { exact: 'DELETE' } }], route: [{ destination: { function: 'deleter' } }] },
          { match: [{ headers: { 'x-canary': { exact: 'on' } } }], route: [{ destination: { function: 'canary' } }] },
          { match: [{ queryParams: { debug: { prefix: 'tr' } } }], route: [{ destination: { function: 'debug' } }] },
          { match: [{ uri: { prefix: '/items' }, withoutHeaders: { authorization: { regex: '.*' } } }], route: [{ destination: { function: 'anon' } }] },
          { match: [{ uri: { prefix: '/items' } }], route: [{ destination: { function: 'items' } }] },
        ],
      }),
    ]);
    const fn = async (path: string, init?: RequestInit) => (await fetch(`${t!.url}${path}`, init)).headers.get('x-fn');
    expect(await fn('/items/12', { method: 'DELETE' })).toBe('deleter');
    expect(await fn('/items/12a', { method: 'DELETE' })).toBe('anon');
    expect(await fn('/items/1', { headers: { 'x-canary': 'on' } })).toBe('canary');
    expect(await fn('/other?debug=true')).toBe('debug');
    expect(await fn('/items', { headers: { authorization: 'Bearer x' } })).toBe('items');
  });

  it('picks the most specific host and ignores the port', async () => {
    t = await startGateway([
      route('any', { hosts: ['*'], http: [{ route: [{ destination: { function: 'any' } }] }] }),
      route('wild', { hosts: ['*.example.com'], http: [{ route: [{ destination: { function: 'wild' } }] }] }),
      route('exact', { hosts: ['api.example.com'], http: [{ route: [{ destination: { function: 'exact' } }] }] }),
    ]);
    const fn = async (host: string) => {
      const { request } = await import('undici');
      const r = await request(`${t!.url}/`, { headers: { host } });
      await r.body.dump();
      return r.headers['x-fn'];
    };
    expect(await fn('api.example.com:8080')).toBe('exact');
    expect(await fn('www.example.com')).toBe('wild');
    expect(await fn('other.org')).toBe('any');
  });

  it('splits traffic by weight', async () => {
    t = await startGateway([route('split', { http: [{ route: [{ destination: { function: 'v1' }, weight: 80 }, { destination: { function: 'v2' }, weight: 20 }] }] })]);
    const counts: Record<string, number> = { v1: 0, v2: 0 };
    for (let i = 0; i < 300; i++) {
      const r = await fetch(`${t.url}/`);
      await r.arrayBuffer();
      counts[r.headers.get('x-fn')!]!++;
    }
    expect(counts.v1).toBeGreaterThan(190);
    expect(counts.v2).toBeGreaterThan(25);
  });

  it('rewrites prefixes, redirects and answers directly', async () => {
    t = await startGateway([
      route('r', {
        http: [
          { match: [{ uri: { prefix: '/old' } }], redirect: { uri: '/new', redirectCode: 308 } },
          { match: [{ uri: { prefix: '/ping' } }], directResponse: { status: 200, body: { string: 'pong' } } },
          { match: [{ uri: { prefix: '/api/v1/' } }], rewrite: { uri: '/' }, route: [{ destination: { function: 'api' } }] },
          { match: [{ uri: { prefix: '/re' } }], rewrite: { uriRegexRewrite: { match: '/re/([a-z]+)/(\\d+)', rewrite: '/\\2/\\1' } }, route: [{ destination: { function: 'api' } }] },
        ],
      }),
    ]);
    const red = await fetch(`${t.url}/old/x?q=1`, { redirect: 'manual' });
    expect(red.status).toBe(308);
    expect(red.headers.get('location')).toBe('http://127.0.0.1/new?q=1');
    expect(await (await fetch(`${t.url}/ping`)).text()).toBe('pong');
    expect((await json(await fetch(`${t.url}/api/v1/users/7`))).path).toBe('/users/7');
    expect((await json(await fetch(`${t.url}/re/abc/42`))).path).toBe('/42/abc');
  });

  it('maps invoker error codes to statuses without leaking detail', async () => {
    t = await startGateway([route('r', { http: [{ route: [{ destination: { function: 'f' } }] }] })]);
    const cases: Array<[string, number]> = [['function_not_found', 503], ['timeout', 504], ['overloaded', 503], ['bad_gateway', 502], ['weird', 500]];
    for (const [code, status] of cases) {
      t.invoker.behaviour = async () => {
        throw Object.assign(new Error('secret internal detail /var/lib/x'), { code });
      };
      const r = await fetch(`${t.url}/`);
      const body = await r.text();
      expect(r.status, code).toBe(status);
      expect(body).not.toContain('secret');
      if (code === 'function_not_found') expect(body).toContain('f');
    }
  });

  it('answers 504 when the function exceeds the route timeout and aborts its signal', async () => {
    t = await startGateway([route('r', { http: [{ timeout: '100ms', route: [{ destination: { function: 'slow' } }] }] })]);
    let aborted = false;
    t.invoker.behaviour = (_ns, _n, _req, signal) =>
      new Promise((_resolve, reject) => {
        signal.addEventListener('abort', () => {
          aborted = true;
          reject(Object.assign(new Error('aborted'), { code: 'aborted' }));
        });
      });
    const t0 = Date.now();
    const r = await fetch(`${t.url}/`);
    expect(r.status).toBe(504);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(aborted).toBe(true);
  });

  it('propagates traceparent and x-request-id', async () => {
    t = await startGateway([route('r', { http: [{ route: [{ destination: { function: 'f' } }] }] })]);
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const r = await fetch(`${t.url}/`, { headers: { traceparent: tp, tracestate: 'congo=t61rcWkgMzE', 'x-request-id': 'abc-123' } });
    const b = await json(r);
    expect(r.headers.get('x-request-id')).toBe('abc-123');
    expect(b.headers['x-request-id']).toBe('abc-123');
    expect(b.headers.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(b.headers.traceparent).not.toBe(tp);
    expect(b.headers.tracestate).toBe('congo=t61rcWkgMzE');
    const bad = await json(await fetch(`${t.url}/`, { headers: { traceparent: 'garbage', tracestate: 'a=b' } }));
    expect(bad.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(bad.headers.tracestate).toBeUndefined();
  });

  it('swaps configuration atomically and reports objects that do not compile', async () => {
    t = await startGateway([route('a', { http: [{ route: [{ destination: { function: 'a' } }] }] })]);
    const problems = t.gw.update({
      routes: [route('b', { http: [{ route: [{ destination: { function: 'b' } }] }] }), route('bad', { http: [{ match: [{ uri: { regex: '(' } }], route: [{ destination: { function: 'x' } }] }] })],
      services: [],
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ kind: 'Route', namespace: 'default', name: 'bad' });
    expect(problems[0]!.message).toContain('spec.http[0].match[0].uri.regex');
    expect((await fetch(`${t.url}/`)).headers.get('x-fn')).toBe('b');
  });

  it('lets in-flight requests finish on the configuration they started with', async () => {
    t = await startGateway([route('a', { http: [{ route: [{ destination: { function: 'a' } }] }] })]);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    t.invoker.behaviour = async (_ns, name) => {
      if (name === 'a') await gate;
      return { status: 200, headers: [['x-fn', name]], body: new Uint8Array() };
    };
    const pending = fetch(`${t.url}/`);
    await new Promise((r) => setTimeout(r, 50));
    t.gw.update({ routes: [route('b', { http: [{ route: [{ destination: { function: 'b' } }] }] })], services: [] });
    expect((await fetch(`${t.url}/`)).headers.get('x-fn')).toBe('b');
    release();
    expect((await pending).headers.get('x-fn')).toBe('a');
  });

  it('counts per-route requests and latency', async () => {
    t = await startGateway([route('m', { http: [{ name: 'main', route: [{ destination: { function: 'f' } }] }] })]);
    for (let i = 0; i < 3; i++) await (await fetch(`${t.url}/`)).arrayBuffer();
    await (await fetch(`${t.url}/`, { method: 'DELETE' })).arrayBuffer();
    const m = t.gw.metrics();
    expect(m.routes['default/m#main']).toMatchObject({ requests: 4, responses: { '2xx': 4 } });
    expect(m.routes['default/m#main']!.latencyUs.count).toBe(4);
  });
});
