import { request } from 'node:http';

import { afterEach, describe, expect, it } from 'vitest';

import type { ResourceObject } from '../../src/api/kinds/types.js';
import { type SpanRecord, type Tracer } from '../../src/util/tracing.js';
import { route, service, startGateway, startUpstream, type TestGateway, type Upstream } from '../gateway/helpers.js';

/** A Tracer that keeps what it is given, sampling by a fixed answer (or the caller's flag). */
function recorder(sampleRoots: boolean): Tracer & { spans: SpanRecord[] } {
  let n = 0;
  const spans: SpanRecord[] = [];
  return { spans, sample: (_t, parent) => parent ?? sampleRoots, traceId: () => 'e'.repeat(32), spanId: () => (++n).toString(16).padStart(16, '0'), record: (s) => spans.push(s) };
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

let t: TestGateway | undefined;
const ups: Upstream[] = [];

afterEach(async () => {
  await t?.close();
  t = undefined;
  for (const u of ups.splice(0)) await u.close();
});

/** traced starts a test gateway, then gives it the tracer and applies the objects again (filter spans are wired at compile time). */
async function traced(tracer: Tracer | undefined, routes: ResourceObject[], services: ResourceObject[] = []): Promise<TestGateway> {
  const g = await startGateway(routes, services, { authorizer: { check: async (input: { attributes: { request: { http: { path: string } } } }) => ({ allowed: input.attributes.request.http.path.startsWith('/ok') }) } as never });
  g.gw.useTracer(tracer);
  g.gw.update({ routes, services });
  return g;
}

describe('gateway spans', () => {
  it('marks the hedged attempt and the loser, both under the server span', async () => {
    let n = 0;
    const seen: string[] = [];
    const slow = await startUpstream((req, res) => {
      seen.push(String(req.headers.traceparent));
      // The first attempt stalls until the hedge has answered; it is cancelled then.
      if (++n === 1) setTimeout(() => res.writeHead(200).end('slow'), 2000).unref();
      else res.writeHead(200).end('fast');
    });
    ups.push(slow);
    const tracer = recorder(true);
    t = await traced(tracer, [route('r', { http: [{ hedge: { delay: '20ms' }, route: [{ destination: { service: 'api' } }] }] })], [service('api', { endpoints: [{ address: '127.0.0.1', port: slow.port }] })]);
    expect(await get(`${t.url}/x`)).toEqual({ status: 200, body: 'fast' });
    await expect.poll(() => tracer.spans.filter((s) => s.kind === 2).length, { timeout: 5000 }).toBe(2);
    const server = tracer.spans.find((s) => s.kind === 1)!;
    const attempts = tracer.spans.filter((s) => s.kind === 2);
    const first = attempts.find((s) => s.attributes['skiff.upstream.hedge'] === false)!;
    const hedge = attempts.find((s) => s.attributes['skiff.upstream.hedge'] === true)!;
    expect(first.attributes).toMatchObject({ 'skiff.upstream.attempt': 1, 'skiff.upstream.outcome': 'hedge_lost' });
    expect(first.error).toBeUndefined();
    expect(hedge.attributes).toMatchObject({ 'skiff.upstream.attempt': 2, 'skiff.upstream.outcome': 'committed', 'http.response.status_code': 200 });
    expect([first.parentSpanId, hedge.parentSpanId]).toEqual([server.spanId, server.spanId]);
    // Each attempt forwarded its own span id, while both were in flight.
    expect(seen).toEqual([`00-${server.traceId}-${first.spanId}-01`, `00-${server.traceId}-${hedge.spanId}-01`]);
  });

  it('records denials by authz and the rate limit, and an error status on 5xx', async () => {
    const tracer = recorder(true);
    t = await traced(tracer, [
      route('guarded', { filters: [{ rateLimit: { maxTokens: 1, fillInterval: '1h' } }, { authz: { policy: 'data.t.allow' } }], http: [{ match: [{ uri: { prefix: '/ok' } }, { uri: { prefix: '/no' } }], route: [{ destination: { function: 'f' } }] }] }),
      route('broken', { http: [{ match: [{ uri: { prefix: '/down' } }], route: [{ destination: { service: 'missing' } }] }] }),
    ]);
    expect((await get(`${t.url}/no`)).status).toBe(403);
    expect((await get(`${t.url}/ok`)).status).toBe(429);
    expect((await get(`${t.url}/down`)).status).toBeGreaterThanOrEqual(500);
    const [authz] = tracer.spans.filter((s) => s.name === 'filter authz');
    expect(authz!.attributes).toMatchObject({ 'skiff.authz.policy': 'data.t.allow', 'skiff.authz.decision': 'deny', 'http.response.status_code': 403 });
    const limits = tracer.spans.filter((s) => s.name === 'filter rateLimit').map((s) => s.attributes['skiff.ratelimit.outcome']);
    expect(limits).toEqual(['allowed', 'limited']);
    const servers = tracer.spans.filter((s) => s.kind === 1);
    expect(servers.map((s) => s.attributes['http.route'])).toEqual(['default/guarded#0', 'default/guarded#0', 'default/broken#0']);
    expect(servers.map((s) => s.attributes['http.response.status_code'])).toEqual([403, 429, expect.any(Number)]);
    expect(servers[2]!.attributes['http.response.status_code']).toBeGreaterThanOrEqual(500);
    expect(servers.map((s) => s.error !== undefined)).toEqual([false, false, true]);
  });

  it('forwards the sampling decision: unsampled roots go on with flag 00, and with tracing off nothing changes', async () => {
    const seen: string[] = [];
    const up = await startUpstream((req, res) => {
      seen.push(String(req.headers.traceparent));
      res.writeHead(200).end('ok');
    });
    ups.push(up);
    const objs = [[route('r', { http: [{ route: [{ destination: { service: 'api' } }] }] })], [service('api', { endpoints: [{ address: '127.0.0.1', port: up.port }] })]] as const;
    const tracer = recorder(false);
    t = await traced(tracer, [...objs[0]], [...objs[1]]);
    await get(`${t.url}/a`);
    expect(seen.pop()).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(tracer.spans).toEqual([]);
    await t.close();
    t = await traced(undefined, [...objs[0]], [...objs[1]]);
    await get(`${t.url}/b`);
    // Off: as before tracing existed, a new trace is forwarded as sampled for the next hop to decide.
    expect(seen.pop()).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });
});
