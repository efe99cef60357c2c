import { describe, expect, it } from 'vitest';

import { SampleRing } from '../../src/dashboard/index.js';
import type { GatewayMetrics, TrafficSnapshot } from '../../src/gateway/index.js';

const BUCKETS = [50, 100, 250, 500, 1_000, 2_500];

/** A fake gateway whose cumulative counters the test advances by hand. */
class FakeGateway {
  routes: Record<string, TrafficSnapshot> = {};
  upstreams: Record<string, TrafficSnapshot> = {};
  hit(map: 'routes' | 'upstreams', key: string, n: number, status: number, us: number): void {
    const s = (this[map][key] ??= { requests: 0, responses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, retries: 0, hedges: 0, ejections: 0, overflows: 0, latencyUs: { buckets: BUCKETS, counts: new Array(BUCKETS.length + 1).fill(0), count: 0, sumUs: 0 } });
    s.requests += n;
    s.responses[`${Math.floor(status / 100)}xx`]! += n;
    let i = BUCKETS.findIndex((b) => us <= b);
    if (i < 0) i = BUCKETS.length;
    s.latencyUs.counts[i]! += n;
    s.latencyUs.count += n;
  }
  read = (): GatewayMetrics => structuredClone({ inFlight: 0, shed: 0, notFound: 0, badPath: 0, badPathByStatus: {}, routes: this.routes, upstreams: this.upstreams });
}

function ring(opts: { fineSlots?: number; coarseEvery?: number; coarseSlots?: number } = {}) {
  const gw = new FakeGateway();
  let now = 1_000_000;
  const r = new SampleRing({ read: gw.read, now: () => now, ...opts });
  const advance = (s = 1) => {
    now += s * 1000;
    r.sample();
  };
  return { gw, r, advance };
}

describe('SampleRing', () => {
  it('turns cumulative counters into per-second rates, error shares and quantiles per Route and Function', () => {
    const { gw, r, advance } = ring();
    r.sample();
    // One Route with two rules (summed), one Function upstream, one Service upstream (not a series).
    gw.hit('routes', 'default/hello#0', 8, 200, 80);
    gw.hit('routes', 'default/hello#1', 2, 503, 2_000);
    gw.hit('upstreams', 'fn:default/hello', 10, 200, 80);
    gw.hit('upstreams', 'default/svc', 5, 200, 80);
    advance(2);
    const h = r.history();
    expect(h.map((s) => s.key).sort()).toEqual(['function:default/hello', 'route:default/hello']);
    const route = h.find((s) => s.key === 'route:default/hello')!;
    expect(route.rps).toEqual([5]);
    expect(route.errorRate).toEqual([0.2]);
    expect(route.p50Ms).toEqual([0.1]);
    expect(route.p99Ms).toEqual([2.5]);
    // A quiet interval is a zero rate with no quantile.
    advance();
    expect(r.history(['route:default/hello'])[0]!.rps).toEqual([5, 0]);
    expect(r.history(['route:default/hello'])[0]!.p99Ms).toEqual([2.5, null]);
  });

  it('keeps a bounded fine ring and folds older intervals into coarse points over the same readings', () => {
    const { gw, r, advance } = ring({ fineSlots: 5, coarseEvery: 4, coarseSlots: 3 });
    r.sample();
    for (let i = 1; i <= 40; i++) {
      gw.hit('routes', 'default/a', i, 200, 80);
      advance();
    }
    const h = r.history(['route:default/a'])[0]!;
    // 10 coarse intervals were made but only 3 kept; the fine ring holds the last 5 seconds.
    const fine = h.t.slice(-5);
    expect(h.rps.slice(-5)).toEqual([36, 37, 38, 39, 40]);
    expect(h.t.length).toBeLessThanOrEqual(5 + 3);
    const coarse = h.rps.slice(0, h.t.length - 5);
    // Each coarse point is the mean rate over its four seconds, and older than the fine points.
    for (const v of coarse) expect([30.5, 34.5]).toContain(v);
    expect(h.t.slice(0, coarse.length).every((t) => t < fine[0]!)).toBe(true);
  });

  it('summarises the last window busiest first, and forgets series that left the gateway', () => {
    const { gw, r, advance } = ring({ coarseEvery: 10 });
    r.sample();
    gw.hit('routes', 'default/quiet', 2, 200, 80);
    gw.hit('routes', 'default/busy', 30, 500, 80);
    gw.hit('upstreams', 'fn:default/f', 1, 200, 80);
    advance(2);
    const s = r.summary();
    expect(s.map((x) => `${x.kind}:${x.name}`)).toEqual(['route:default/busy', 'route:default/quiet', 'function:default/f']);
    expect(s[0]).toMatchObject({ rps: 15, requests: 30, errors: 30, errorRate: 1, p99Ms: 0.1 });
    delete gw.routes['default/quiet'];
    advance();
    expect(r.keys().sort()).toEqual(['function:default/f', 'route:default/busy']);
  });

  it('counts from zero when the counters go back (a gateway restarted) instead of going negative', () => {
    const { gw, r, advance } = ring();
    gw.hit('routes', 'default/a', 100, 200, 80);
    r.sample();
    gw.routes = {};
    gw.hit('routes', 'default/a', 3, 200, 80);
    advance();
    expect(r.history()[0]!.rps).toEqual([3]);
  });

  it('tells listeners each interval with only the series that had traffic', () => {
    const { gw, r, advance } = ring();
    const ticks: unknown[] = [];
    const off = r.onTick((t) => ticks.push(t.points.map((p) => p[0])));
    r.sample();
    gw.hit('routes', 'default/a', 1, 200, 80);
    gw.hit('routes', 'default/b', 0, 200, 80);
    advance();
    off();
    advance();
    expect(ticks).toEqual([['route:default/a']]);
  });

  it('refuses settings that would make an empty or unbounded ring', () => {
    expect(() => new SampleRing({ read: () => ({}) as GatewayMetrics, fineSlots: 0 })).toThrow(/fineSlots must be a positive integer/);
    expect(() => new SampleRing({ read: () => ({}) as GatewayMetrics, intervalMs: 1.5 })).toThrow(/intervalMs/);
  });
});
