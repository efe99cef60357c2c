import { afterEach, describe, expect, it } from 'vitest';

import { route, service, startGateway, startUpstream, type TestGateway, type Upstream } from './helpers.js';

let t: TestGateway | undefined;
let ups: Upstream[] = [];
afterEach(async () => {
  await t?.close();
  await Promise.all(ups.map((u) => u.close()));
  t = undefined;
  ups = [];
});

async function named(name: string, handler?: Parameters<typeof startUpstream>[0]): Promise<Upstream> {
  const up = await startUpstream(
    handler ??
      ((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json', 'x-up': name, connection: 'keep-alive' });
          res.end(JSON.stringify({ up: name, url: req.url, method: req.method, headers: req.headers, body }));
        });
      }),
  );
  ups.push(up);
  return up;
}

const get = async (url: string, init?: RequestInit) => {
  const r = await fetch(url, init);
  const text = await r.text();
  return { status: r.status, up: r.headers.get('x-up'), headers: r.headers, text };
};

describe('HTTP upstreams', () => {
  it('streams requests and responses through, with forwarding headers', async () => {
    const a = await named('a');
    t = await startGateway([route('r', { http: [{ route: [{ destination: { service: 'api' } }] }] })], [service('api', { endpoints: [{ address: '127.0.0.1', port: a.port }] })]);
    const r = await get(`${t.url}/p/q?x=1`, { method: 'PUT', body: 'payload', headers: { 'x-in': '1' } });
    expect(r.status).toBe(200);
    const b = JSON.parse(r.text);
    expect(b).toMatchObject({ up: 'a', url: '/p/q?x=1', method: 'PUT', body: 'payload' });
    expect(b.headers['x-in']).toBe('1');
    expect(b.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(b.headers['x-request-id']).toBe(r.headers.get('x-request-id'));
    expect(b.headers.traceparent).toMatch(/^00-/);
    expect(r.headers.get('connection')).not.toBe('keep-alive, keep-alive');
    const up = t.gw.metrics().upstreams['default/api']!;
    expect(up).toMatchObject({ requests: 1, responses: { '2xx': 1 } });
    expect(up.latencyUs.count).toBe(1);
  });

  it('streams bodies larger than the buffering limit when no filter needs them', async () => {
    const counter = await named('count', (req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        res.writeHead(200, { 'x-up': 'count' });
        res.end(String(n));
      });
    });
    t = await startGateway([route('r', { http: [{ route: [{ destination: { service: 'api' } }] }] })], [service('api', { endpoints: [{ address: '127.0.0.1', port: counter.port }] })], { limits: { maxBodyBytes: 64 * 1024 } });
    const big = Buffer.alloc(5 * 1024 * 1024, 7);
    const r = await get(`${t.url}/upload`, { method: 'POST', body: big });
    expect(r.status).toBe(200);
    expect(r.text).toBe(String(big.length));
  });

  it('round-robins across endpoints and routes subsets by version with weights', async () => {
    const v1a = await named('v1a');
    const v1b = await named('v1b');
    const v2 = await named('v2');
    t = await startGateway(
      [
        route('r', {
          http: [
            { match: [{ headers: { 'x-version': { exact: 'v2' } } }], route: [{ destination: { service: 'api', subset: 'v2' } }] },
            { route: [{ destination: { service: 'api', subset: 'v1' } }] },
          ],
        }),
      ],
      [service('api', { endpoints: [{ address: '127.0.0.1', port: v1a.port, version: 'v1' }, { address: '127.0.0.1', port: v1b.port, version: 'v1' }, { address: '127.0.0.1', port: v2.port, version: 'v2' }] })],
    );
    const seen = [];
    for (let i = 0; i < 4; i++) seen.push((await get(`${t.url}/`)).up);
    expect(seen.sort()).toEqual(['v1a', 'v1a', 'v1b', 'v1b']);
    expect((await get(`${t.url}/`, { headers: { 'x-version': 'v2' } })).up).toBe('v2');
  });

  it('keeps a user on one endpoint with consistent hashing on a header', async () => {
    const list = await Promise.all(['a', 'b', 'c'].map((n) => named(n)));
    t = await startGateway(
      [route('r', { http: [{ route: [{ destination: { service: 'api' } }] }] })],
      [service('api', { endpoints: list.map((u) => ({ address: '127.0.0.1', port: u.port })), trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } })],
    );
    for (const user of ['alice', 'bob', 'carol']) {
      const first = (await get(`${t.url}/`, { headers: { 'x-user': user } })).up;
      for (let i = 0; i < 5; i++) expect((await get(`${t.url}/`, { headers: { 'x-user': user } })).up).toBe(first);
    }
  });

  it('retries 5xx on another endpoint and ejects the failing one', async () => {
    const bad = await named('bad', (_req, res) => {
      res.writeHead(503, { 'x-up': 'bad' });
      res.end('down');
    });
    const good = await named('good');
    t = await startGateway(
      [route('r', { http: [{ retries: { attempts: 2, retryOn: '5xx', backoff: { baseInterval: '1ms' } }, route: [{ destination: { service: 'api' } }] }] })],
      [service('api', { endpoints: [{ address: '127.0.0.1', port: bad.port }, { address: '127.0.0.1', port: good.port }], trafficPolicy: { outlierDetection: { consecutive5xxErrors: 2, baseEjectionTime: '30s', maxEjectionPercent: 50 } } })],
    );
    for (let i = 0; i < 6; i++) {
      const r = await get(`${t.url}/`);
      expect(r.status).toBe(200);
      expect(r.up).toBe('good');
    }
    expect(bad.hits).toBe(2);
    const stats = t.gw.metrics().upstreams['default/api']!;
    expect(stats.ejections).toBe(1);
    expect(stats.retries).toBe(2);
  });

  it('returns the last 5xx when retries are exhausted, and does not retry without a policy', async () => {
    const bad = await named('bad', (_req, res) => {
      res.writeHead(500, { 'x-up': 'bad' });
      res.end('boom');
    });
    t = await startGateway(
      [
        route('r', {
          http: [
            { match: [{ uri: { prefix: '/retry' } }], retries: { attempts: 2, retryOn: '5xx', backoff: { baseInterval: '1ms' } }, route: [{ destination: { service: 'api' } }] },
            { route: [{ destination: { service: 'api' } }] },
          ],
        }),
      ],
      [service('api', { endpoints: [{ address: '127.0.0.1', port: bad.port }] })],
    );
    const r = await get(`${t.url}/retry`);
    expect(r.status).toBe(500);
    expect(r.text).toBe('boom');
    expect(bad.hits).toBe(3);
    await get(`${t.url}/once`);
    expect(bad.hits).toBe(4);
  });

  it('retries listed status codes and hashes on a cookie', async () => {
    let n = 0;
    const flaky = await named('flaky', (_req, res) => {
      res.writeHead(++n === 1 ? 409 : 200, { 'x-up': 'flaky' });
      res.end(String(n));
    });
    t = await startGateway(
      [route('r', { http: [{ retries: { attempts: 1, retryOn: 'retriable-status-codes', retriableStatusCodes: [409], backoff: { baseInterval: '1ms' } }, route: [{ destination: { service: 'api' } }] }] })],
      [service('api', { endpoints: [{ address: '127.0.0.1', port: flaky.port }] })],
    );
    const r = await get(`${t.url}/`);
    expect(r.status).toBe(200);
    expect(r.text).toBe('2');
    await t.close();
    const list = await Promise.all(['a', 'b', 'c'].map((x) => named(x)));
    t = await startGateway(
      [route('r', { http: [{ route: [{ destination: { service: 'api' } }] }] })],
      [service('api', { endpoints: list.map((u) => ({ address: '127.0.0.1', port: u.port })), trafficPolicy: { loadBalancer: { consistentHash: { httpCookie: { name: 'session' } } } } })],
    );
    for (const sid of ['s1', 's2', 's3', 's4']) {
      const first = (await get(`${t.url}/`, { headers: { cookie: `theme=dark; session=${sid}` } })).up;
      for (let i = 0; i < 4; i++) expect((await get(`${t.url}/`, { headers: { cookie: `session=${sid}; x=1` } })).up).toBe(first);
    }
  });

  it('retries connection failures and resets', async () => {
    const dead = await startUpstream(() => undefined);
    const deadPort = dead.port;
    await dead.close();
    const good = await named('good');
    const flaky = await named('flaky', (req) => req.socket.destroy());
    t = await startGateway(
      [route('r', { http: [{ retries: { attempts: 3, retryOn: 'connect-failure,reset', backoff: { baseInterval: '1ms' } }, route: [{ destination: { service: 'api' } }] }] })],
      [service('api', { endpoints: [{ address: '127.0.0.1', port: deadPort }, { address: '127.0.0.1', port: flaky.port }, { address: '127.0.0.1', port: good.port }] })],
    );
    for (let i = 0; i < 4; i++) expect((await get(`${t.url}/`)).up).toBe('good');
  });

  it('applies the per-try timeout and retries on a faster endpoint', async () => {
    const slow = await named('slow', (_req, res) => setTimeout(() => res.end('late'), 2000).unref());
    const fast = await named('fast');
    t = await startGateway(
      [route('r', { http: [{ timeout: '3s', retries: { attempts: 1, perTryTimeout: '100ms', retryOn: 'gateway-error', backoff: { baseInterval: '1ms' } }, route: [{ destination: { service: 'api' } }] }] })],
      [service('api', { endpoints: [{ address: '127.0.0.1', port: slow.port }, { address: '127.0.0.1', port: fast.port }] })],
    );
    for (let i = 0; i < 2; i++) {
      const t0 = Date.now();
      const r = await get(`${t.url}/`);
      expect(r.up).toBe('fast');
      expect(Date.now() - t0).toBeLessThan(1500);
    }
  });

  it('hedges a slow request to another endpoint; the first answer wins and the other is cancelled', async () => {
    let slowClosed = 0;
    const slow = await named('slow', (req, res) => {
      req.on('close', () => slowClosed++);
      setTimeout(() => res.end('late'), 3000).unref();
    });
    const fast = await named('fast');
    t = await startGateway(
      [route('r', { http: [{ hedge: { delay: '50ms' }, route: [{ destination: { service: 'api' } }] }] })],
      [service('api', { endpoints: [{ address: '127.0.0.1', port: slow.port }, { address: '127.0.0.1', port: fast.port }] })],
    );
    for (let i = 0; i < 2; i++) {
      const t0 = Date.now();
      const r = await get(`${t.url}/`);
      expect(r.up).toBe('fast');
      expect(Date.now() - t0).toBeLessThan(1000);
    }
    await new Promise((r) => setTimeout(r, 100));
    const hedges = t.gw.metrics().upstreams['default/api']!.hedges;
    expect(hedges).toBeGreaterThanOrEqual(1);
    // Every hedge started because the slow endpoint had not answered; each slow attempt was cancelled.
    expect(slowClosed).toBe(hedges);
    expect(slow.hits).toBe(hedges);
  });

  it('hedges after the observed p95 of the route when no fixed delay is set', async () => {
    let slow = false;
    const a = await named('a', (_req, res) => {
      if (slow) setTimeout(() => res.end('late'), 3000).unref();
      else {
        res.writeHead(200, { 'x-up': 'a' });
        res.end('a');
      }
    });
    const b = await named('b');
    t = await startGateway(
      [route('r', { http: [{ hedge: { delay: 'p95', minDelay: '20ms' }, route: [{ destination: { service: 'api' } }] }] })],
      [service('api', { endpoints: [{ address: '127.0.0.1', port: a.port }, { address: '127.0.0.1', port: b.port }] })],
    );
    for (let i = 0; i < 20; i++) expect((await get(`${t.url}/`)).status).toBe(200);
    // A p95 delay hedges the slowest few requests by design; on a loaded machine one of the fast
    // phase's requests can outlast the 20 ms floor, so allow that and count from here.
    const warm = t.gw.metrics().upstreams['default/api']!.hedges;
    expect(warm).toBeLessThanOrEqual(2);
    slow = true;
    for (let i = 0; i < 2; i++) {
      const t0 = Date.now();
      const r = await get(`${t.url}/`);
      expect(r.up).toBe('b');
      expect(Date.now() - t0).toBeLessThan(1500);
    }
    expect(t.gw.metrics().upstreams['default/api']!.hedges - warm).toBeGreaterThanOrEqual(1);
  });

  it('opens the circuit with 503 when the request limit is reached', async () => {
    const gates: Array<() => void> = [];
    const held = await named('held', (_req, res) => gates.push(() => res.end('ok')));
    t = await startGateway(
      [route('r', { http: [{ route: [{ destination: { service: 'api' } }] }] })],
      [service('api', { endpoints: [{ address: '127.0.0.1', port: held.port }], trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1, maxRequests: 10 } } } })],
    );
    const inflight = [fetch(`${t.url}/`), fetch(`${t.url}/`)];
    await new Promise((r) => setTimeout(r, 150));
    const over = await fetch(`${t.url}/`);
    expect(over.status).toBe(503);
    expect(over.headers.get('x-skiff-overloaded')).toBe('true');
    await new Promise((r) => setTimeout(r, 50));
    while (gates.length) gates.shift()!();
    const done = await inflight[0]!;
    expect(done.status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    while (gates.length) gates.shift()!();
    expect((await inflight[1]!).status).toBe(200);
    expect(t.gw.metrics().upstreams['default/api']!.overflows).toBe(1);
  });

  it('mirrors traffic to a shadow destination and discards its answer', async () => {
    const main = await named('main');
    const shadowSeen: string[] = [];
    const shadow = await named('shadow', (req, res) => {
      shadowSeen.push(`${req.headers.host} ${req.url}`);
      res.writeHead(500);
      res.end('ignored');
    });
    t = await startGateway(
      [route('r', { http: [{ mirror: { service: 'shadow' }, route: [{ destination: { service: 'main' } }] }] })],
      [service('main', { endpoints: [{ address: '127.0.0.1', port: main.port }] }), service('shadow', { endpoints: [{ address: '127.0.0.1', port: shadow.port }] })],
    );
    const r = await get(`${t.url}/m?q=2`, { method: 'POST', body: 'x' });
    expect(r.status).toBe(200);
    expect(r.up).toBe('main');
    await new Promise((res) => setTimeout(res, 100));
    expect(shadowSeen).toEqual(['127.0.0.1-shadow /m?q=2']);
  });

  it('keeps serving while the Service endpoints change', async () => {
    const a = await named('a');
    const b = await named('b');
    const routes = [route('r', { http: [{ route: [{ destination: { service: 'api' } }] }] })];
    t = await startGateway(routes, [service('api', { endpoints: [{ address: '127.0.0.1', port: a.port }] })]);
    expect((await get(`${t.url}/`)).up).toBe('a');
    t.gw.update({ routes, services: [service('api', { endpoints: [{ address: '127.0.0.1', port: b.port }] })] });
    expect((await get(`${t.url}/`)).up).toBe('b');
  });
});
