import { BucketHistogram } from '../../util/histogram.js';

/** Histogram bucket upper bounds in microseconds (roughly ×2 steps from 50 µs to 60 s). */
export const LATENCY_BUCKETS_US: readonly number[] = [
  50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/** LatencyHistogram counts latencies into fixed buckets; cheap enough to update on every request. */
export class LatencyHistogram {
  readonly counts = new Float64Array(LATENCY_BUCKETS_US.length + 1);
  count = 0;
  sumUs = 0;

  observe(us: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS_US.length && us > LATENCY_BUCKETS_US[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sumUs += us;
  }

  /** quantile returns the upper bound of the bucket holding quantile q (0..1), or undefined when empty. */
  quantile(q: number): number | undefined {
    if (this.count === 0) return undefined;
    const target = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return LATENCY_BUCKETS_US[i] ?? LATENCY_BUCKETS_US[LATENCY_BUCKETS_US.length - 1]! * 2;
    }
    return undefined;
  }

  snapshot(): HistogramSnapshot {
    return { buckets: LATENCY_BUCKETS_US.slice(), counts: Array.from(this.counts), count: this.count, sumUs: this.sumUs };
  }
}

/** HistogramSnapshot is a histogram copied out for exporters (last count is the +Inf bucket). */
export interface HistogramSnapshot {
  buckets: number[];
  counts: number[];
  count: number;
  sumUs: number;
}

/** Body size bucket upper bounds in bytes (×4 steps from 64 B to 64 MiB). */
export const BODY_SIZE_BUCKETS: readonly number[] = [64, 256, 1_024, 4_096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864];

/** SizeSnapshot is a body-size BucketHistogram copied out (bounds BODY_SIZE_BUCKETS, last count the +Inf bucket). */
export interface SizeSnapshot {
  counts: number[];
  count: number;
  sum: number;
}

/** TrafficStats are the counters kept per route and per upstream. */
export class TrafficStats {
  requests = 0;
  readonly byClass = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  readonly latency = new LatencyHistogram();
  /** Body sizes, kept for routes (an upstream's attempts do not record them). */
  readonly requestSize = new BucketHistogram(BODY_SIZE_BUCKETS);
  readonly responseSize = new BucketHistogram(BODY_SIZE_BUCKETS);
  retries = 0;
  hedges = 0;
  ejections = 0;
  overflows = 0;

  /** recordSizes counts one answered request's body sizes in bytes. */
  recordSizes(requestBytes: number, responseBytes: number): void {
    this.requestSize.observe(requestBytes);
    this.responseSize.observe(responseBytes);
  }

  record(status: number, us: number): void {
    this.requests++;
    const c = status >= 500 ? '5xx' : status >= 400 ? '4xx' : status >= 300 ? '3xx' : status >= 200 ? '2xx' : '1xx';
    this.byClass[c]++;
    this.latency.observe(us);
  }

  snapshot(): TrafficSnapshot {
    return {
      requests: this.requests,
      responses: { ...this.byClass },
      retries: this.retries,
      hedges: this.hedges,
      ejections: this.ejections,
      overflows: this.overflows,
      latencyUs: this.latency.snapshot(),
      ...(this.requestSize.count > 0 ? { requestSize: sizeSnapshot(this.requestSize), responseSize: sizeSnapshot(this.responseSize) } : {}),
    };
  }
}

/** TrafficSnapshot is TrafficStats copied out. */
export interface TrafficSnapshot {
  requests: number;
  responses: Record<string, number>;
  retries: number;
  hedges: number;
  ejections: number;
  overflows: number;
  latencyUs: HistogramSnapshot;
  /** Request and response body sizes (routes only, once a request was answered). */
  requestSize?: SizeSnapshot;
  responseSize?: SizeSnapshot;
}

/** GatewayMetrics is what `Gateway.metrics()` returns for the operations exporter. */
export interface GatewayMetrics {
  inFlight: number;
  shed: number;
  notFound: number;
  /** Requests refused (400) or redirected for their path before routing (see request-path.ts). */
  badPath: number;
  /** badPath by the status answered (`400`, `307`). */
  badPathByStatus: Record<string, number>;
  routes: Record<string, TrafficSnapshot>;
  upstreams: Record<string, TrafficSnapshot>;
}

/** MetricsRegistry keeps the per-route and per-upstream stats; it lives as long as the gateway. */
export class MetricsRegistry {
  readonly routes = new Map<string, TrafficStats>();
  readonly upstreams = new Map<string, TrafficStats>();
  shed = 0;
  notFound = 0;
  badPath = 0;
  readonly badPathByStatus = new Map<number, number>();

  /** pathRefused counts a request answered for its path alone (refused or redirected), by status. */
  pathRefused(status: number): void {
    this.badPath++;
    this.badPathByStatus.set(status, (this.badPathByStatus.get(status) ?? 0) + 1);
  }

  route(key: string): TrafficStats {
    let s = this.routes.get(key);
    if (!s) this.routes.set(key, (s = new TrafficStats()));
    return s;
  }

  upstream(key: string): TrafficStats {
    let s = this.upstreams.get(key);
    if (!s) this.upstreams.set(key, (s = new TrafficStats()));
    return s;
  }

  snapshot(inFlight: number): GatewayMetrics {
    const out = (m: Map<string, TrafficStats>) => Object.fromEntries([...m].map(([k, v]) => [k, v.snapshot()]));
    return { inFlight, shed: this.shed, notFound: this.notFound, badPath: this.badPath, badPathByStatus: Object.fromEntries(this.badPathByStatus), routes: out(this.routes), upstreams: out(this.upstreams) };
  }
}

function sizeSnapshot(h: BucketHistogram): SizeSnapshot {
  return { counts: Array.from(h.counts), count: h.count, sum: h.sum };
}
