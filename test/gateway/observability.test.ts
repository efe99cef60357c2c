import { Writable } from 'node:stream';

import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { route, startGateway, type TestGateway } from './helpers.js';

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
});
