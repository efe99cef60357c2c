import { describe, expect, it } from 'vitest';

import { ConsistentHashBalancer, LeastRequestBalancer, type LoadBalancer,RandomBalancer, RoundRobinBalancer } from '../../src/gateway/upstream/balancers.js';
import { Endpoint } from '../../src/gateway/upstream/endpoint.js';

const eps = (n: number, weights: number[] = []) => Array.from({ length: n }, (_, i) => new Endpoint({ address: '127.0.0.1', port: 9000 + i, weight: weights[i] ?? 1 }, 0));

const implementations: Array<[string, () => LoadBalancer]> = [
  ['round robin', () => new RoundRobinBalancer()],
  ['random', () => new RandomBalancer()],
  ['least request', () => new LeastRequestBalancer()],
  ['consistent hash', () => new ConsistentHashBalancer()],
];

describe.each(implementations)('%s balancer (shared suite)', (_name, make) => {
  it('returns undefined for no endpoints and the only one for one', () => {
    const lb = make();
    expect(lb.pick([], { now: 0 })).toBeUndefined();
    const one = eps(1);
    expect(lb.pick(one, { now: 0, hashKey: 'k' })).toBe(one[0]);
  });

  it('only returns endpoints from the list it was given', () => {
    const lb = make();
    const all = eps(4);
    const subset = all.slice(1, 3);
    for (let i = 0; i < 200; i++) expect(subset).toContain(lb.pick(subset, { now: 0, hashKey: `k${i}` }));
  });

  it('spreads load over every endpoint', () => {
    const lb = make();
    const list = eps(4);
    const seen = new Map<Endpoint, number>();
    for (let i = 0; i < 2000; i++) {
      const e = lb.pick(list, { now: 0, hashKey: `user-${i}` })!;
      seen.set(e, (seen.get(e) ?? 0) + 1);
    }
    expect(seen.size).toBe(4);
    for (const n of seen.values()) expect(n).toBeGreaterThan(200);
  });
});

describe('balancer specifics', () => {
  it('round robin honours weights smoothly', () => {
    const lb = new RoundRobinBalancer();
    const list = eps(2, [3, 1]);
    const picks = Array.from({ length: 8 }, () => lb.pick(list, { now: 0 })!.port);
    expect(picks.filter((p) => p === 9000)).toHaveLength(6);
    expect(picks.slice(0, 4).filter((p) => p === 9001)).toHaveLength(1);
  });

  it('least request prefers the less busy of two', () => {
    const lb = new LeastRequestBalancer();
    const list = eps(2);
    list[0]!.active = 50;
    let busy = 0;
    for (let i = 0; i < 200; i++) if (lb.pick(list, { now: 0 }) === list[0]) busy++;
    expect(busy).toBe(0);
  });

  it('least request with unequal weights shares by weight when idle and still avoids the busy', () => {
    const lb = new LeastRequestBalancer();
    const list = eps(2, [2, 1]);
    let light = 0;
    for (let i = 0; i < 3000; i++) if (lb.pick(list, { now: 0 }) === list[1]) light++;
    // A third of the picks, not none: the lighter endpoint is not starved while nothing is in flight.
    expect(light).toBeGreaterThan(800);
    expect(light).toBeLessThan(1200);
    list[0]!.active = 99;
    let heavy = 0;
    for (let i = 0; i < 3000; i++) if (lb.pick(list, { now: 0 }) === list[0]) heavy++;
    expect(heavy).toBeLessThan(150);
  });

  it('consistent hash is sticky and moves few keys when an endpoint is added', () => {
    const lb = new ConsistentHashBalancer();
    const four = eps(5).slice(0, 4);
    const five = eps(5);
    const before = new Map<string, number>();
    for (let i = 0; i < 1000; i++) before.set(`u${i}`, lb.pick(four, { now: 0, hashKey: `u${i}` })!.port);
    for (let i = 0; i < 1000; i++) expect(lb.pick(four, { now: 0, hashKey: `u${i}` })!.port).toBe(before.get(`u${i}`));
    let moved = 0;
    for (let i = 0; i < 1000; i++) if (lb.pick(five, { now: 0, hashKey: `u${i}` })!.port !== before.get(`u${i}`)) moved++;
    expect(moved).toBeGreaterThan(80);
    expect(moved).toBeLessThan(350);
  });

  it('slow start ramps a new endpoint up over the window', () => {
    const slow = { windowMs: 10_000, minWeightPercent: 10, aggression: 1 };
    const old = new Endpoint({ address: 'a', port: 1, weight: 1 }, -100_000);
    const fresh = new Endpoint({ address: 'b', port: 2, weight: 1 }, 0);
    expect(fresh.effectiveWeight(0, slow)).toBeCloseTo(0.1);
    expect(fresh.effectiveWeight(5000, slow)).toBeCloseTo(0.5);
    expect(fresh.effectiveWeight(20_000, slow)).toBe(1);
    const lb = new RoundRobinBalancer((e, now) => e.effectiveWeight(now, slow));
    let freshPicks = 0;
    for (let i = 0; i < 100; i++) if (lb.pick([old, fresh], { now: 1000 }) === fresh) freshPicks++;
    expect(freshPicks).toBeLessThan(20);
    expect(freshPicks).toBeGreaterThan(0);
  });
});
