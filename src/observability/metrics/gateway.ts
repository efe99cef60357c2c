import type { Registry } from 'prom-client';

import type { ClusterState, GatewayMetrics, TrafficSnapshot } from '../../gateway/index.js';
import { LATENCY_BUCKETS_US } from '../../gateway/index.js';

import { leLabels, PerScrape, pushHistogram, ReadMetric, type Sample } from './read-metric.js';

/** The slice of the gateway the exporter reads. */
export interface GatewaySource {
  metrics(): GatewayMetrics;
  clusterStates(): Map<string, ClusterState>;
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

function byClass(out: Sample[], labels: Record<string, string>, s: TrafficSnapshot): void {
  for (const c of CLASSES) {
    const v = s.responses[c] ?? 0;
    if (v > 0) out.push({ labels: { ...labels, code: c }, value: v });
  }
}

/** registerGateway adds the gateway's request, latency and upstream families to the registry. */
export function registerGateway(registry: Registry, gateway: GatewaySource, clock: { scrape: number }): void {
  const snap = new PerScrape(clock, () => gateway.metrics());
  const clusters = new PerScrape(clock, () => gateway.clusterStates());
  const le = leLabels(LATENCY_BUCKETS_US);
  const routeLabels = new Map<string, { route: string; rule: string }>();
  const labelsOf = (key: string) => {
    let l = routeLabels.get(key);
    if (!l) routeLabels.set(key, (l = splitRouteKey(key)));
    return l;
  };

  new ReadMetric('skiff_gateway_requests_total', 'Gateway requests answered, by route, rule and status class; requests no route matched have route="" and the status as code.', 'counter', () => {
    const m = snap.get();
    const out: Sample[] = [];
    for (const [key, s] of Object.entries(m.routes)) byClass(out, labelsOf(key), s);
    const unmatched = { route: UNMATCHED, rule: UNMATCHED };
    if (m.notFound > 0) out.push({ labels: { ...unmatched, code: '404' }, value: m.notFound });
    for (const [status, n] of Object.entries(m.badPathByStatus)) out.push({ labels: { ...unmatched, code: status }, value: n });
    if (m.shed > 0) out.push({ labels: { ...unmatched, code: '503' }, value: m.shed });
    return out;
  }).register(registry);

  new ReadMetric('skiff_gateway_request_duration_seconds', 'Time from a request arriving to its answer being written, by route and rule.', 'histogram', () => {
    const out: Sample[] = [];
    for (const [key, s] of Object.entries(snap.get().routes)) {
      const h = s.latencyUs;
      pushHistogram(out, 'skiff_gateway_request_duration_seconds', labelsOf(key), LATENCY_BUCKETS_US, h.counts, h.count, h.sumUs, le);
    }
    return out;
  }).register(registry);

  new ReadMetric('skiff_gateway_requests_in_flight', 'Gateway requests being served now.', 'gauge', () => [{ labels: {}, value: snap.get().inFlight }]).register(registry);
  new ReadMetric('skiff_gateway_shed_requests_total', 'Requests refused with 503 before routing because the gateway was at its in-flight or buffered-bytes limit.', 'counter', () => [{ labels: {}, value: snap.get().shed }]).register(registry);

  new ReadMetric('skiff_gateway_upstream_attempts_total', 'Attempts sent to an upstream (a Service cluster, or fn:NAMESPACE/NAME for a Function), by status class; retries and hedges are attempts too.', 'counter', () => {
    const out: Sample[] = [];
    for (const [upstream, s] of Object.entries(snap.get().upstreams)) byClass(out, { upstream }, s);
    return out;
  }).register(registry);

  new ReadMetric('skiff_gateway_upstream_attempt_duration_seconds', 'Time of one upstream attempt, by upstream.', 'histogram', () => {
    const out: Sample[] = [];
    for (const [upstream, s] of Object.entries(snap.get().upstreams)) {
      const h = s.latencyUs;
      pushHistogram(out, 'skiff_gateway_upstream_attempt_duration_seconds', { upstream }, LATENCY_BUCKETS_US, h.counts, h.count, h.sumUs, le);
    }
    return out;
  }).register(registry);

  const upstreamCounter = (name: string, help: string, pick: (s: TrafficSnapshot) => number) =>
    new ReadMetric(name, help, 'counter', () => Object.entries(snap.get().upstreams).map(([upstream, s]) => ({ labels: { upstream }, value: pick(s) }))).register(registry);
  upstreamCounter('skiff_gateway_upstream_retries_total', 'Retries sent to an upstream.', (s) => s.retries);
  upstreamCounter('skiff_gateway_upstream_hedges_total', 'Hedged attempts sent to an upstream.', (s) => s.hedges);
  upstreamCounter('skiff_gateway_upstream_ejections_total', 'Endpoints ejected by outlier detection.', (s) => s.ejections);
  upstreamCounter('skiff_gateway_upstream_overflows_total', 'Requests refused because the circuit breaker was at its request or pending limit.', (s) => s.overflows);

  const clusterGauge = (name: string, help: string, pick: (s: ClusterState) => number) =>
    new ReadMetric(name, help, 'gauge', () => [...clusters.get()].map(([upstream, s]) => ({ labels: { upstream }, value: pick(s) }))).register(registry);
  clusterGauge('skiff_gateway_upstream_circuit_open', '1 while the circuit breaker refuses new requests to the Service (its request or pending limit is reached), else 0.', (s) => (s.open ? 1 : 0));
  clusterGauge('skiff_gateway_upstream_active_requests', 'Requests in flight to the Service.', (s) => s.active);
  clusterGauge('skiff_gateway_upstream_endpoints', 'Endpoints of the Service.', (s) => s.endpoints);
  clusterGauge('skiff_gateway_upstream_ejected_endpoints', 'Endpoints of the Service ejected by outlier detection now.', (s) => s.ejected);
}
