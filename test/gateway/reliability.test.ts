import { afterEach, describe, expect, it } from 'vitest';

import { rawExchange, route, service, startGateway, startUpstream, type TestGateway, type Upstream } from './helpers.js';

let t: TestGateway | undefined;
let ups: Upstream[] = [];
afterEach(async () => {
  await t?.close();
  await Promise.all(ups.map((u) => u.close()));
  t = undefined;
  ups = [];
});

const fnRoute = route('r', { http: [{ route: [{ destination: { function: 'f' } }] }] });
const status = (data: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);

describe('listener hardening', () => {
  it('rejects Content-Length together with Transfer-Encoding (400)', async () => {
    t = await startGateway([fnRoute]);
    const r = await rawExchange(t.port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(status(r.data)).toBe(400);
    expect(r.data).not.toContain('200 OK');
    expect(t.invoker.calls).toHaveLength(0);
  });

  it('serves keep-alive and pipelined HTTP/1.1 requests on one connection', async () => {
    t = await startGateway([fnRoute]);
    const r = await rawExchange(t.port, ['GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n', 'GET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'], 3000, 100);
    expect(r.data.match(/HTTP\/1\.1 200/g)).toHaveLength(3);
    expect(t.invoker.calls.map((c) => c.req.path)).toEqual(['/a', '/b', '/c']);
    expect(r.closed).toBe(true);
  });

  it('rejects duplicate Content-Length (400)', async () => {
    t = await startGateway([fnRoute]);
    const r = await rawExchange(t.port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd');
    expect(status(r.data)).toBe(400);
    expect(t.invoker.calls).toHaveLength(0);
  });

  it('rejects obs-fold header continuation (400)', async () => {
    t = await startGateway([fnRoute]);
    const r = await rawExchange(t.port, 'GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n');
    expect(status(r.data)).toBe(400);
    expect(t.invoker.calls).toHaveLength(0);
  });

  it('rejects oversized headers (431)', async () => {
    t = await startGateway([fnRoute], [], { limits: { maxHeaderBytes: 4096 } });
    const r = await rawExchange(t.port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`);
    expect(status(r.data)).toBe(431);
  });

  it('closes a connection whose headers arrive too slowly', async () => {
    t = await startGateway([fnRoute], [], { limits: { headersTimeoutMs: 300 } });
    const bytes = 'GET / HTTP/1.1\r\nHost: a\r\nX-Slow: 1\r\n\r\n'.split('');
    const t0 = Date.now();
    const r = await rawExchange(t.port, bytes, 5000, 100);
    expect(r.closed).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(t.invoker.calls).toHaveLength(0);
  });

  it('sheds with 503 beyond the in-flight limit and recovers', async () => {
    t = await startGateway([fnRoute], [], { limits: { maxInFlight: 2 } });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    t.invoker.behaviour = async () => {
      await gate;
      return { status: 200, headers: [], body: new Uint8Array() };
    };
    const held = [fetch(`${t.url}/`), fetch(`${t.url}/`)];
    await new Promise((r) => setTimeout(r, 100));
    const shed = await fetch(`${t.url}/`);
    expect(shed.status).toBe(503);
    expect(shed.headers.get('retry-after')).toBe('1');
    release();
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
    t.invoker.behaviour = undefined;
    expect((await fetch(`${t.url}/`)).status).toBe(200);
  });

  it('drains in-flight requests on close and then stops accepting', async () => {
    t = await startGateway([fnRoute]);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    t.invoker.behaviour = async () => {
      await gate;
      return { status: 200, headers: [], body: Buffer.from('done') };
    };
    const pending = rawExchange(t.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', 3000);
    await new Promise((r) => setTimeout(r, 100));
    const closing = t.gw.close(2000);
    await new Promise((r) => setTimeout(r, 50));
    release();
    const r = await pending;
    await closing;
    expect(status(r.data)).toBe(200);
    expect(r.data.toLowerCase()).toContain('connection: close');
    expect(r.data).toContain('done');
    await expect(fetch(`${t.url}/`)).rejects.toThrow();
  });

  it('refuses bodies over the buffering limit with 413', async () => {
    t = await startGateway([fnRoute], [], { limits: { maxBodyBytes: 1024 } });
    const r = await fetch(`${t.url}/`, { method: 'POST', body: 'x'.repeat(5000) });
    expect(r.status).toBe(413);
    expect(t.invoker.calls).toHaveLength(0);
  });
});

describe('upstream failures', () => {
  const svcRoute = (extra: Record<string, unknown> = {}) => route('r', { http: [{ ...extra, route: [{ destination: { service: 'up' } }] }] });
  const svc = (port: number) => service('up', { endpoints: [{ address: '127.0.0.1', port }] });

  it('answers 502 when the upstream dies before responding', async () => {
    const up = await startUpstream((req) => req.socket.destroy());
    ups.push(up);
    t = await startGateway([svcRoute()], [svc(up.port)]);
    const t0 = Date.now();
    const r = await fetch(`${t.url}/x`);
    expect(r.status).toBe(502);
    expect(await r.text()).toBe('bad gateway\n');
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('does not hang when the upstream dies mid-response', async () => {
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 50);
    });
    ups.push(up);
    t = await startGateway([svcRoute()], [svc(up.port)]);
    const t0 = Date.now();
    const r = await rawExchange(t.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', 5000);
    expect(r.data).toContain('partial');
    expect(r.closed).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('answers 504 when the upstream is slower than the route timeout', async () => {
    const up = await startUpstream((_req, res) => setTimeout(() => res.end('late'), 3000).unref());
    ups.push(up);
    t = await startGateway([svcRoute({ timeout: '200ms' })], [svc(up.port)]);
    const t0 = Date.now();
    const r = await fetch(`${t.url}/`);
    expect(r.status).toBe(504);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('answers 503 when the upstream refuses connections', async () => {
    const up = await startUpstream(() => undefined);
    const port = up.port;
    await up.close();
    t = await startGateway([svcRoute()], [svc(port)]);
    expect((await fetch(`${t.url}/`)).status).toBe(503);
  });

  it('answers 503 when the route names a Service that does not exist', async () => {
    t = await startGateway([svcRoute()], []);
    expect((await fetch(`${t.url}/`)).status).toBe(503);
  });
});
