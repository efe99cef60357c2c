import type { Endpoint } from './endpoint.js';
import type { LoadBalancerSpec, ServiceSpec } from './service-spec.js';

/** PickInput is what a balancer may use: the request's hash key (consistent hash) and the clock. */
export interface PickInput {
  hashKey?: string;
  now: number;
}

/**
 * LoadBalancer chooses one endpoint among the available ones. Implementations keep their own state
 * (round-robin position, hash ring) and rebuild it when they see a different endpoint list.
 */
export interface LoadBalancer {
  pick(endpoints: readonly Endpoint[], input: PickInput): Endpoint | undefined;
}

type Weighting = (e: Endpoint, now: number) => number;

function weightingFor(slowStart: ServiceSpec['slowStart']): Weighting | undefined {
  return slowStart ? (e, now) => e.effectiveWeight(now, slowStart) : undefined;
}

function uniform(eps: readonly Endpoint[]): boolean {
  const w = eps[0]!.weight;
  for (let i = 1; i < eps.length; i++) if (eps[i]!.weight !== w) return false;
  return true;
}

/**
 * RoundRobinBalancer cycles through endpoints; with unequal or ramping weights it uses nginx's smooth
 * weighted round robin so heavy endpoints are spread out rather than picked in bursts.
 */
export class RoundRobinBalancer implements LoadBalancer {
  private next = 0;
  private current = new Map<Endpoint, number>();
  constructor(private readonly weighting?: Weighting) {}

  pick(eps: readonly Endpoint[], input: PickInput): Endpoint | undefined {
    if (eps.length === 0) return undefined;
    if (!this.weighting && uniform(eps)) return eps[this.next++ % eps.length];
    let total = 0;
    let best: Endpoint | undefined;
    let bestScore = -Infinity;
    for (const e of eps) {
      const w = this.weighting ? this.weighting(e, input.now) : e.weight;
      total += w;
      const score = (this.current.get(e) ?? 0) + w;
      this.current.set(e, score);
      if (score > bestScore) {
        bestScore = score;
        best = e;
      }
    }
    this.current.set(best!, bestScore - total);
    if (this.current.size > eps.length * 2) this.current = new Map([...this.current].filter(([e]) => eps.includes(e)));
    return best;
  }
}

/** RandomBalancer picks by weight at random. */
export class RandomBalancer implements LoadBalancer {
  constructor(private readonly weighting?: Weighting, private readonly random = Math.random) {}

  pick(eps: readonly Endpoint[], input: PickInput): Endpoint | undefined {
    if (eps.length <= 1) return eps[0];
    if (!this.weighting && uniform(eps)) return eps[Math.floor(this.random() * eps.length)];
    const ws = eps.map((e) => (this.weighting ? this.weighting(e, input.now) : e.weight));
    let r = this.random() * ws.reduce((a, b) => a + b, 0);
    for (let i = 0; i < eps.length; i++) if ((r -= ws[i]!) < 0) return eps[i];
    return eps[eps.length - 1];
  }
}

/**
 * LeastRequestBalancer: with equal weights, the power of two choices (two random endpoints, keep the
 * one with fewer requests in flight), which avoids the herding a global minimum causes. With unequal
 * weights (or slow start), Envoy's weighted form: each endpoint is drawn with a probability of its
 * weight divided by its requests in flight plus one. Comparing two candidates by weight/(active+1)
 * instead would hand every request to the heavier one whenever nothing is in flight, starving the
 * lighter endpoints (a node with one ready replica beside one with two, an endpoint in slow start).
 */
export class LeastRequestBalancer implements LoadBalancer {
  constructor(private readonly weighting?: Weighting, private readonly random = Math.random) {}

  pick(eps: readonly Endpoint[], input: PickInput): Endpoint | undefined {
    if (eps.length <= 1) return eps[0];
    if (!this.weighting && uniform(eps)) {
      const a = eps[Math.floor(this.random() * eps.length)]!;
      let b = eps[Math.floor(this.random() * (eps.length - 1))]!;
      if (b === a) b = eps[eps.length - 1]!;
      return b.active < a.active ? b : a;
    }
    let total = 0;
    const ws = new Array<number>(eps.length);
    for (let i = 0; i < eps.length; i++) {
      const e = eps[i]!;
      ws[i] = (this.weighting ? this.weighting(e, input.now) : e.weight) / (e.active + 1);
      total += ws[i]!;
    }
    let r = this.random() * total;
    for (let i = 0; i < eps.length; i++) if ((r -= ws[i]!) < 0) return eps[i];
    return eps[eps.length - 1];
  }
}

/** fnv1a32 is a small, well-spread string hash for the ring. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // A final avalanche step: FNV alone clusters short keys that differ only in their last characters.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * ConsistentHashBalancer is a ring hash: each endpoint owns `vnodes × weight` points, a key goes to
 * the next point clockwise, so adding or removing an endpoint moves only its share of keys.
 * Requests without a key fall back to round robin.
 */
export class ConsistentHashBalancer implements LoadBalancer {
  private ringFor?: readonly Endpoint[];
  private points = new Uint32Array(0);
  private owners: Endpoint[] = [];
  private readonly fallback = new RoundRobinBalancer();
  constructor(private readonly vnodes = 100) {}

  private build(eps: readonly Endpoint[]): void {
    const pts: Array<[number, Endpoint]> = [];
    for (const e of eps) for (let i = 0; i < this.vnodes * e.weight; i++) pts.push([fnv1a32(`${e.key}#${i}`), e]);
    pts.sort((x, y) => x[0] - y[0]);
    this.points = Uint32Array.from(pts.map((p) => p[0]));
    this.owners = pts.map((p) => p[1]);
    this.ringFor = eps;
  }

  pick(eps: readonly Endpoint[], input: PickInput): Endpoint | undefined {
    if (eps.length <= 1) return eps[0];
    if (input.hashKey === undefined) return this.fallback.pick(eps, input);
    if (this.ringFor !== eps) this.build(eps);
    const h = fnv1a32(input.hashKey);
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo === this.points.length ? 0 : lo];
  }
}

/** createBalancer builds the balancer a Service's traffic policy names. */
export function createBalancer(spec: LoadBalancerSpec, slowStart: ServiceSpec['slowStart']): LoadBalancer {
  const w = weightingFor(slowStart);
  switch (spec.kind) {
    case 'least_request':
      return new LeastRequestBalancer(w);
    case 'random':
      return new RandomBalancer(w);
    case 'consistent_hash':
      return new ConsistentHashBalancer();
    default:
      return new RoundRobinBalancer(w);
  }
}
