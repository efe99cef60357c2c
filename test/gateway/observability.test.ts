import { Writable } from 'node:stream';

import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { route, service, startGateway, startUpstream, type TestGateway } from './helpers.js';

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('edge observability', () => {
  it('writes one JSON access-log line per request with trace and route', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        cb();
      },
    });
    t = await startGateway([route('logged', { http: [{ name: 'all', route: [{ destination: { function: 'f' } }] }] })], [], { logger: pino({ level: 'info' }, sink) });
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await (await fetch(`${t.url}/path?q=1`, { headers: { traceparent: tp, 'x-request-id': 'rid-7' } })).arrayBuffer();
    await (await fetch(`${t.url.replace('127.0.0.1', 'localhost')}/missing`)).arrayBuffer();
    await new Promise((r) => setTimeout(r, 20));
    const access = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'access');
    expect(access).toHaveLength(2);
    expect(access[0]).toMatchObject({ method: 'GET', path: '/path', status: 200, requestId: 'rid-7', trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', route: 'default/logged#all', component: 'gateway' });
    expect(access[0].durationUs).toBeGreaterThan(0);
    expect(access[0].span_id).toMatch(/^[0-9a-f]{16}$/);
    expect(access[0].span_id).not.toBe('00f067aa0ba902b7');
  });

  it('keeps per-upstream and not-found counters', async () => {
    t = await startGateway([route('r', { http: [{ match: [{ uri: { exact: '/' } }], route: [{ destination: { function: 'f' } }] }] })]);
    await (await fetch(`${t.url}/nope`)).arrayBuffer();
    await (await fetch(`${t.url}/`)).arrayBuffer();
    const m = t.gw.metrics();
    expect(m.notFound).toBe(1);
    expect(m.inFlight).toBe(0);
    expect(m.routes['default/r#0']!.latencyUs.counts.reduce((a, b) => a + b, 0)).toBe(1);
    expect(m.upstreams['fn:default/f']).toMatchObject({ requests: 1, responses: { '2xx': 1 } });
  });

  it('counts request and response body sizes per route, streamed upstream answers included', async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        // Chunked, in pieces: the gateway streams it and counts what it writes.
        res.write(Buffer.alloc(70_000, 1));
        setImmediate(() => res.end(Buffer.alloc(5_000, 2)));
      });
    });
    try {
      t = await startGateway(
        [route('sized', { http: [{ match: [{ uri: { prefix: '/svc' } }], route: [{ destination: { service: 'api' } }] }, { route: [{ destination: { function: 'f' } }] }] })],
        [service('api', { endpoints: [{ address: '127.0.0.1', port: up.port }] })],
      );
      const a = await fetch(`${t.url}/svc`, { method: 'POST', body: Buffer.alloc(3_000, 7) });
      expect((await a.arrayBuffer()).byteLength).toBe(75_000);
      const b = await fetch(`${t.url}/fn`);
      const fnBytes = (await b.arrayBuffer()).byteLength;
      const m = t.gw.metrics();
      const svc = m.routes['default/sized#0']!;
      expect(svc.requestSize).toMatchObject({ count: 1, sum: 3_000 });
      expect(svc.responseSize).toMatchObject({ count: 1, sum: 75_000 });
      // 3,000 bytes fall in the 4 KiB bucket (index 3), 75,000 in the 256 KiB one (index 6).
      expect(svc.requestSize!.counts[3]).toBe(1);
      expect(svc.responseSize!.counts[6]).toBe(1);
      expect(m.routes['default/sized#1']!.responseSize).toMatchObject({ count: 1, sum: fnBytes });
      expect(m.routes['default/sized#1']!.requestSize).toMatchObject({ count: 1, sum: 0 });
    } finally {
      await up.close();
    }
  });
});
