import { describe, expect, it } from 'vitest';

import { TrafficStats } from '../../src/gateway/observability/metrics.js';
import { Cluster } from '../../src/gateway/upstream/cluster.js';
import { compileService } from '../../src/gateway/upstream/service-spec.js';

import { service } from './helpers.js';

function cluster(spec: Record<string, unknown>, clock = { t: 1_000_000 }) {
  const { service: s, errors } = compileService(service('api', spec));
  expect(errors).toEqual([]);
  return { c: new Cluster(s!, new TrafficStats(), () => clock.t), clock };
}

const eps = (n: number) => Array.from({ length: n }, (_, i) => ({ address: '127.0.0.1', port: 9000 + i }));

describe('cluster policies', () => {
  it('ejects an endpoint after consecutive 5xx for a growing time, capped by the max ejection percent', () => {
    const { c, clock } = cluster({ endpoints: eps(4), trafficPolicy: { outlierDetection: { consecutive5xxErrors: 2, baseEjectionTime: '10s', maxEjectionPercent: 50 } } });
    const [a, b, d] = [c.endpoints[0]!, c.endpoints[1]!, c.endpoints[2]!];
    c.record(a, '5xx');
    expect(a.isEjected(clock.t)).toBe(false);
    c.record(a, '5xx');
    expect(a.isEjected(clock.t)).toBe(true);
    c.record(b, 'gateway_error');
    c.record(b, 'gateway_error');
    expect(b.isEjected(clock.t)).toBe(true);
    // A third ejection would exceed 50% of four endpoints.
    c.record(d, '5xx');
    c.record(d, '5xx');
    expect(d.isEjected(clock.t)).toBe(false);
    for (let i = 0; i < 50; i++) expect([a, b]).not.toContain(c.pick(undefined, undefined));
    clock.t += 10_001;
    expect(a.isEjected(clock.t)).toBe(false);
    const seen = new Set(Array.from({ length: 8 }, () => c.pick(undefined, undefined)));
    expect(seen.has(a)).toBe(true);
    // Ejected again: twice the base time now.
    c.record(a, '5xx');
    c.record(a, '5xx');
    expect(a.ejectedUntil - clock.t).toBe(20_000);
  });

  it('earns back ejection steps after staying healthy', () => {
    const { c, clock } = cluster({ endpoints: eps(2), trafficPolicy: { outlierDetection: { consecutive5xxErrors: 1, baseEjectionTime: '10s', maxEjectionPercent: 100 } } });
    const a = c.endpoints[0]!;
    c.record(a, '5xx');
    clock.t += 10_001;
    c.record(a, '5xx');
    expect(a.ejections).toBe(2);
    clock.t += 20_001;
    c.record(a, 'success');
    expect(a.ejections).toBe(2);
    clock.t += 10_000;
    c.record(a, 'success');
    expect(a.ejections).toBe(1);
    expect(a.isEjected(clock.t)).toBe(false);
  });

  it('resets the consecutive count on success', () => {
    const { c, clock } = cluster({ endpoints: eps(2), trafficPolicy: { outlierDetection: { consecutive5xxErrors: 2, maxEjectionPercent: 100 } } });
    const a = c.endpoints[0]!;
    c.record(a, '5xx');
    c.record(a, 'success');
    c.record(a, '5xx');
    expect(a.isEjected(clock.t)).toBe(false);
  });

  it('limits requests and pending requests (circuit breaker)', () => {
    const { c } = cluster({ endpoints: eps(1), trafficPolicy: { connectionPool: { tcp: { maxConnections: 2 }, http: { http1MaxPendingRequests: 1, maxRequests: 10 } } } });
    expect([c.tryAcquire(), c.tryAcquire(), c.tryAcquire(), c.tryAcquire()]).toEqual([true, true, true, false]);
    c.release();
    expect(c.tryAcquire()).toBe(true);
    expect(c.stats.overflows).toBe(1);
  });

  it('allows retries only within the budget (20% of active requests, at least 3)', () => {
    const { c } = cluster({ endpoints: eps(1) });
    for (let i = 0; i < 30; i++) c.tryAcquire();
    c.activeRetries = 5;
    expect(c.canRetry()).toBe(true);
    c.activeRetries = 6;
    expect(c.canRetry()).toBe(false);
    const small = cluster({ endpoints: eps(1) }).c;
    small.tryAcquire();
    small.activeRetries = 2;
    expect(small.canRetry()).toBe(true);
    small.activeRetries = 3;
    expect(small.canRetry()).toBe(false);
  });

  it('routes subsets by version and keeps endpoint state across reconfiguration', () => {
    const { c } = cluster({ endpoints: [{ address: '127.0.0.1', port: 1, version: 'v1' }, { address: '127.0.0.1', port: 2, version: 'v2' }] });
    expect(c.pick('v2', undefined)!.port).toBe(2);
    expect(c.pick('v3', undefined)).toBeUndefined();
    const before = c.endpoints[0]!;
    before.active = 7;
    const { service: next } = compileService(service('api', { endpoints: [{ address: '127.0.0.1', port: 1, version: 'v1' }, { address: '127.0.0.1', port: 3, version: 'v2' }] }));
    c.reconfigure(next!);
    expect(c.endpoints[0]).toBe(before);
    expect(c.pick('v2', undefined)!.port).toBe(3);
  });
});
