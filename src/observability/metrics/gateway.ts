import type { Registry } from 'prom-client';

import type { ClusterState, GatewayMetrics, TrafficSnapshot } from '../../gateway/index.js';
import { BODY_SIZE_BUCKETS, LATENCY_BUCKETS_US } from '../../gateway/index.js';

import { LabelCache, NO_LABELS, PerScrape, ReadMetric, type SeriesWriter } from './read-metric.js';

/** The slice of the gateway the exporter reads. */
export interface GatewaySource {
  metrics(): GatewayMetrics;
  clusterStates(): Map<string, ClusterState>;
  /** In a cluster: attempts forwarded to other nodes (`NODE CODE` keys) and ejections by node. */
  meshCounters?(): { forwarded: ReadonlyMap<string, number>; ejections: ReadonlyMap<string, number> } | undefined;
}

/**
 * The label a request that matched no route gets for `route` (and `rule`): Prometheus treats an
 * empty label as absent, so the series still carries `code` and counts in sums by route.
 */
export const UNMATCHED = '';

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** splitRouteKey turns the gateway's `namespace/name#rule` key into the route and rule labels. */
function splitRouteKey(key: string): { route: string; rule: string } {
  const hash = key.lastIndexOf('#');
  return hash < 0 ? { route: key, rule: '' } : { route: key.slice(0, hash), rule: key.slice(hash + 1) };
}

/** registerGateway adds the gateway's request, latency and upstream families to the registry. */
export function registerGateway(registry: Registry, gateway: GatewaySource, clock: { scrape: number }): void {
  const snap = new PerScrape(clock, () => gateway.metrics());
  const clusters = new PerScrape(clock, () => gateway.clusterStates());
  const routes = new LabelCache((key) => splitRouteKey(key));
  // `KEY CODE`: the route key, or the upstream, and the status class (or status).
  const routeCodes = new LabelCache((k) => {
    const sp = k.lastIndexOf(' ');
    return { ...splitRouteKey(k.slice(0, sp)), code: k.slice(sp + 1) };
  });
  const upstreams = new LabelCache((upstream) => ({ upstream }));
  const upstreamCodes = new LabelCache((k) => {
    const sp = k.lastIndexOf(' ');
    return { upstream: k.slice(0, sp), code: k.slice(sp + 1) };
  });
  const byClass = (w: SeriesWriter, key: string, s: TrafficSnapshot, sets: LabelCache) => {
    for (const c of CLASSES) {
      const v = s.responses[c] ?? 0;
      if (v > 0) w.sample(sets.get(`${key} ${c}`), v);
    }
  };
  const unmatched = `${UNMATCHED}#${UNMATCHED}`;

  new ReadMetric('skiff_gateway_requests_total', 'Gateway requests answered, by route, rule and status class; requests no route matched have route="" and the status as code.', 'counter', (w) => {
    const m = snap.get();
    for (const [key, s] of Object.entries(m.routes)) byClass(w, key, s, routeCodes);
    if (m.notFound > 0) w.sample(routeCodes.get(`${unmatched} 404`), m.notFound);
    for (const [status, n] of Object.entries(m.badPathByStatus)) w.sample(routeCodes.get(`${unmatched} ${status}`), n);
    if (m.shed > 0) w.sample(routeCodes.get(`${unmatched} 503`), m.shed);
  }).register(registry);

  new ReadMetric(
    'skiff_gateway_request_duration_seconds',
    'Time from a request arriving to its answer being written, by route and rule.',
    'histogram',
    (w) => {
      for (const [key, s] of Object.entries(snap.get().routes)) w.histogram(routes.get(key), s.latencyUs.counts, s.latencyUs.count, s.latencyUs.sumUs);
    },
    LATENCY_BUCKETS_US,
  ).register(registry);

  for (const [name, help, pick] of [
    ['skiff_gateway_request_size_bytes', 'Request body size, by route and rule: the buffered body, else its declared content-length (a chunked body streamed upstream counts 0).', (s: TrafficSnapshot) => s.requestSize],
    ['skiff_gateway_response_size_bytes', 'Response body size written to the client, by route and rule.', (s: TrafficSnapshot) => s.responseSize],
  ] as const) {
    new ReadMetric(
      name,
      help,
      'histogram',
      (w) => {
        for (const [key, s] of Object.entries(snap.get().routes)) {
          const h = pick(s);
          if (h) w.histogram(routes.get(key), h.counts, h.count, h.sum);
        }
      },
      BODY_SIZE_BUCKETS,
      1,
    ).register(registry);
  }

  new ReadMetric('skiff_gateway_requests_in_flight', 'Gateway requests being served now.', 'gauge', (w) => w.sample(NO_LABELS, snap.get().inFlight)).register(registry);
  new ReadMetric('skiff_gateway_shed_requests_total', 'Requests refused with 503 before routing because the gateway was at its in-flight or buffered-bytes limit.', 'counter', (w) => w.sample(NO_LABELS, snap.get().shed)).register(registry);

  new ReadMetric('skiff_gateway_upstream_attempts_total', 'Attempts sent to an upstream (a Service cluster, or fn:NAMESPACE/NAME for a Function), by status class; retries and hedges are attempts too.', 'counter', (w) => {
    for (const [upstream, s] of Object.entries(snap.get().upstreams)) byClass(w, upstream, s, upstreamCodes);
  }).register(registry);

  new ReadMetric(
    'skiff_gateway_upstream_attempt_duration_seconds',
    'Time of one upstream attempt, by upstream.',
    'histogram',
    (w) => {
      for (const [upstream, s] of Object.entries(snap.get().upstreams)) w.histogram(upstreams.get(upstream), s.latencyUs.counts, s.latencyUs.count, s.latencyUs.sumUs);
    },
    LATENCY_BUCKETS_US,
  ).register(registry);

  const upstreamCounter = (name: string, help: string, pick: (s: TrafficSnapshot) => number) =>
    new ReadMetric(name, help, 'counter', (w) => {
      for (const [upstream, s] of Object.entries(snap.get().upstreams)) w.sample(upstreams.get(upstream), pick(s));
    }).register(registry);
  upstreamCounter('skiff_gateway_upstream_retries_total', 'Retries sent to an upstream.', (s) => s.retries);
  upstreamCounter('skiff_gateway_upstream_hedges_total', 'Hedged attempts sent to an upstream.', (s) => s.hedges);
  upstreamCounter('skiff_gateway_upstream_ejections_total', 'Endpoints ejected by outlier detection.', (s) => s.ejections);
  upstreamCounter('skiff_gateway_upstream_overflows_total', 'Requests refused because the circuit breaker was at its request or pending limit.', (s) => s.overflows);

  const clusterGauge = (name: string, help: string, pick: (s: ClusterState) => number) =>
    new ReadMetric(name, help, 'gauge', (w) => {
      for (const [upstream, s] of clusters.get()) w.sample(upstreams.get(upstream), pick(s));
    }).register(registry);
  clusterGauge('skiff_gateway_upstream_circuit_open', '1 while the circuit breaker refuses new requests to the Service (its request or pending limit is reached), else 0.', (s) => (s.open ? 1 : 0));
  clusterGauge('skiff_gateway_upstream_active_requests', 'Requests in flight to the Service.', (s) => s.active);
  clusterGauge('skiff_gateway_upstream_endpoints', 'Endpoints of the Service.', (s) => s.endpoints);
  const nodeCodes = new LabelCache((k) => {
    const sp = k.lastIndexOf(' ');
    return { node: k.slice(0, sp), code: k.slice(sp + 1) };
  });
  const nodes = new LabelCache((node) => ({ node }));
  new ReadMetric('skiff_gateway_forwarded_requests_total', 'Attempts this node forwarded to another node of the cluster (a Function with no healthy replica here), by node and status, or connect_error, reset, timeout.', 'counter', (w) => {
    for (const [k, v] of gateway.meshCounters?.()?.forwarded ?? []) w.sample(nodeCodes.get(k), v);
  }).register(registry);
  new ReadMetric('skiff_gateway_node_ejections_total', 'Times outlier detection ejected another node from this node\'s cross-node routing.', 'counter', (w) => {
    for (const [node, v] of gateway.meshCounters?.()?.ejections ?? []) w.sample(nodes.get(node), v);
  }).register(registry);
  clusterGauge('skiff_gateway_upstream_ejected_endpoints', 'Endpoints of the Service ejected by outlier detection now.', (s) => s.ejected);
}
