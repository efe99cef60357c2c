import { Readable } from 'node:stream';

import { pino } from 'pino';
import { beforeEach, describe, expect, it, vi } from 'vitest';

import type { GatewayContext } from '../../src/gateway/context.js';
import { ServiceDestination } from '../../src/gateway/destinations/service.js';
import { NoHealthyUpstreamError } from '../../src/gateway/errors.js';
import { TrafficStats } from '../../src/gateway/observability/metrics.js';
import { Cluster } from '../../src/gateway/upstream/cluster.js';
import type { ForwardOptions } from '../../src/gateway/upstream/forward.js';
import { compileService } from '../../src/gateway/upstream/service-spec.js';

import { fakeCtx } from './filter-kit.js';
import { service } from './helpers.js';

// forward (retries, hedging, balancing) has its own tests: here it only records what the destination hands it.
const forwarded = vi.hoisted(() => [] as Array<{ cluster: string; opts: ForwardOptions }>);
vi.mock('../../src/gateway/upstream/forward.js', async (original) => ({
  ...(await original<typeof import('../../src/gateway/upstream/forward.js')>()),
  forward: (_ctx: GatewayContext, cluster: Cluster, opts: ForwardOptions) => {
    forwarded.push({ cluster: cluster.key, opts: { ...opts } });
    return Promise.resolve();
  },
}));

function clusters(spec: Record<string, unknown> = {}): Map<string, Cluster> {
  const { service: s, errors } = compileService(service('api', { endpoints: [{ address: '10.0.0.1', port: 80 }], ...spec }));
  expect(errors).toEqual([]);
  return new Map([['default/api', new Cluster(s!, new TrafficStats(), Date.now)]]);
}

function destination(cs: Map<string, Cluster>, subset?: string): ServiceDestination {
  return new ServiceDestination({ kind: 'service', namespace: 'default', name: 'api', subset }, { functions: { tryInline: () => undefined, invoke: () => Promise.reject(new Error('unused')) }, clusters: cs, routeStats: new TrafficStats(), upstreamStats: () => new TrafficStats(), logger: pino({ level: 'silent' }) });
}

beforeEach(() => {
  forwarded.length = 0;
});

describe('ServiceDestination', () => {
  it('always answers later: a missing Service is a rejection (503), never a throw', async () => {
    const ctx = fakeCtx();
    let pending: Promise<void> | undefined;
    expect(() => (pending = destination(new Map()).send(ctx, '/', ctx.cancel))).not.toThrow();
    await expect(pending).rejects.toBeInstanceOf(NoHealthyUpstreamError);
    await expect(pending).rejects.toMatchObject({ status: 503 });
  });

  it('forwards the path with the query, the subset, the prepared headers and the request cancellation', async () => {
    const ctx = fakeCtx({ rawQuery: 'a=1', headers: { host: 'example.com', connection: 'close' } });
    const pending = destination(clusters(), 'v2').send(ctx, '/rewritten', ctx.cancel);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(forwarded).toHaveLength(1);
    const { cluster, opts } = forwarded[0]!;
    expect(cluster).toBe('default/api');
    expect(opts).toMatchObject({ path: '/rewritten?a=1', subset: 'v2', body: undefined, hashKey: undefined });
    expect(opts.cancel).toBe(ctx.cancel);
    expect(opts.headers['x-request-id']).toBe('req-1');
    expect(opts.headers.connection).toBeUndefined();
  });

  it('streams a body through when nothing needs it again, and buffers it for a retry policy', async () => {
    const streamed = fakeCtx({ method: 'POST', headers: { 'content-length': '4' }, rawBody: Readable.from([Buffer.from('data')]) });
    await destination(clusters()).send(streamed, '/', streamed.cancel);
    expect(forwarded[0]!.opts.body).toBe(streamed.rawBody);
    const retried = fakeCtx({ method: 'POST', headers: { 'content-length': '4' }, body: Buffer.from('data') });
    retried.retry = { attempts: 2, on5xx: true, onGatewayError: false, onReset: false, onConnectFailure: false, retriableStatusCodes: new Set(), baseIntervalMs: 1, maxIntervalMs: 1 };
    await destination(clusters()).send(retried, '/', retried.cancel);
    expect(Buffer.from(forwarded[1]!.opts.body as Uint8Array).toString()).toBe('data');
  });

  it('hands the consistent-hash key from the header or cookie the Service names', async () => {
    const byHeader = fakeCtx({ headers: { 'x-user': 'alice' } });
    await destination(clusters({ trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } })).send(byHeader, '/', byHeader.cancel);
    expect(forwarded[0]!.opts.hashKey).toBe('alice');
    const byCookie = fakeCtx({ headers: { cookie: 'a=1; session=s-42' } });
    await destination(clusters({ trafficPolicy: { loadBalancer: { consistentHash: { httpCookie: { name: 'session' } } } } })).send(byCookie, '/', byCookie.cancel);
    expect(forwarded[1]!.opts.hashKey).toBe('s-42');
  });
});
