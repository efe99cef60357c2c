import { afterEach, describe, expect, it } from 'vitest';

import { TokenAuthenticator } from '../../src/api/authn.js';
import type { GatewayMetrics, TrafficSnapshot } from '../../src/gateway/index.js';
import { LATENCY_BUCKETS_US } from '../../src/gateway/index.js';
import { isLoopback, MetricsExporter } from '../../src/observability/index.js';
import { parseExposition, seriesKey, value } from '../helpers/prometheus.js';

function traffic(latenciesUs: number[], responses: Record<string, number>): TrafficSnapshot {
  const counts = new Array<number>(LATENCY_BUCKETS_US.length + 1).fill(0);
  for (const us of latenciesUs) {
    let i = 0;
    while (i < LATENCY_BUCKETS_US.length && us > LATENCY_BUCKETS_US[i]!) i++;
    counts[i]!++;
  }
  return { requests: latenciesUs.length, responses, retries: 2, hedges: 1, ejections: 0, overflows: 3, latencyUs: { buckets: [...LATENCY_BUCKETS_US], counts, count: latenciesUs.length, sumUs: latenciesUs.reduce((a, b) => a + b, 0) } };
}

const gateway = {
  metrics: (): GatewayMetrics => ({
    inFlight: 7,
    shed: 4,
    notFound: 9,
    badPath: 2,
    badPathByStatus: { '400': 1, '307': 1 },
    routes: { 'shop/cart#checkout': traffic([40, 300, 3_000_000], { '2xx': 2, '5xx': 1 }) },
    upstreams: { 'shop/payments': traffic([200], { '2xx': 1 }) },
  }),
  clusterStates: () => new Map([['shop/payments', { active: 5, endpoints: 3, ejected: 1, open: true }]]),
};

let exporter: MetricsExporter | undefined;
afterEach(async () => {
  await exporter?.close();
  exporter = undefined;
});

describe('MetricsExporter', () => {
  it('renders the gateway counters as Prometheus families: codes, the unmatched series and a histogram in seconds', async () => {
    exporter = new MetricsExporter({ gateway, process: false });
    const e = parseExposition(await exporter.render());
    const route = { route: 'shop/cart', rule: 'checkout' };
    expect(value(e, 'skiff_gateway_requests_total', { ...route, code: '2xx' })).toBe(2);
    expect(value(e, 'skiff_gateway_requests_total', { ...route, code: '5xx' })).toBe(1);
    expect(e.samples.has('skiff_gateway_requests_total{code="4xx",route="shop/cart",rule="checkout"}')).toBe(false);
    expect(value(e, 'skiff_gateway_requests_total', { route: '', rule: '', code: '404' })).toBe(9);
    expect(value(e, 'skiff_gateway_requests_total', { route: '', rule: '', code: '400' })).toBe(1);
    expect(value(e, 'skiff_gateway_requests_total', { route: '', rule: '', code: '307' })).toBe(1);
    expect(value(e, 'skiff_gateway_requests_total', { route: '', rule: '', code: '503' })).toBe(4);
    // 40 µs falls in le=0.00005, 300 µs in le=0.0005, 3 s in le=5.
    expect(value(e, 'skiff_gateway_request_duration_seconds_bucket', { ...route, le: '0.00005' })).toBe(1);
    expect(value(e, 'skiff_gateway_request_duration_seconds_bucket', { ...route, le: '0.00025' })).toBe(1);
    expect(value(e, 'skiff_gateway_request_duration_seconds_bucket', { ...route, le: '0.0005' })).toBe(2);
    expect(value(e, 'skiff_gateway_request_duration_seconds_bucket', { ...route, le: '2.5' })).toBe(2);
    expect(value(e, 'skiff_gateway_request_duration_seconds_bucket', { ...route, le: '5' })).toBe(3);
    expect(value(e, 'skiff_gateway_request_duration_seconds_bucket', { ...route, le: '+Inf' })).toBe(3);
    expect(value(e, 'skiff_gateway_request_duration_seconds_sum', route)).toBeCloseTo(3.00034, 9);
    expect(value(e, 'skiff_gateway_request_duration_seconds_count', route)).toBe(3);
    expect(value(e, 'skiff_gateway_requests_in_flight')).toBe(7);
    expect(value(e, 'skiff_gateway_upstream_retries_total', { upstream: 'shop/payments' })).toBe(2);
    expect(value(e, 'skiff_gateway_upstream_overflows_total', { upstream: 'shop/payments' })).toBe(3);
    expect(value(e, 'skiff_gateway_upstream_circuit_open', { upstream: 'shop/payments' })).toBe(1);
    expect(value(e, 'skiff_gateway_upstream_ejected_endpoints', { upstream: 'shop/payments' })).toBe(1);
    expect(e.types.has('skiff_process_cpu_seconds_total')).toBe(false);
  });

  it('renders the same series and values as prom-client\'s own collector view of the families', async () => {
    exporter = new MetricsExporter({ gateway, process: false });
    const text = parseExposition(await exporter.render());
    const viaJson = new Map<string, number>();
    for (const m of await exporter.registry.getMetricsAsJSON()) {
      for (const v of m.values as Array<{ labels: Record<string, string | number>; value: number; metricName?: string }>) {
        viaJson.set(seriesKey(v.metricName ?? m.name, Object.fromEntries(Object.entries(v.labels).map(([k, x]) => [k, String(x)]))), v.value);
      }
    }
    expect(viaJson.size).toBeGreaterThan(40);
    expect(text.samples).toEqual(viaJson);
  });

  it('reads each source once per scrape, however many families use it', async () => {
    let reads = 0;
    exporter = new MetricsExporter({ gateway: { ...gateway, metrics: () => (reads++, gateway.metrics()) }, process: false });
    await exporter.render();
    expect(reads).toBe(1);
    await exporter.render();
    expect(reads).toBe(2);
  });

  it('adds process and event-loop metrics with the skiff_ prefix', async () => {
    exporter = new MetricsExporter({});
    const e = parseExposition(await exporter.render());
    expect(e.types.get('skiff_process_cpu_seconds_total')).toBe('counter');
    expect(e.types.get('skiff_nodejs_eventloop_lag_p99_seconds')).toBe('gauge');
  });

  it('a --metrics listener on a loopback address needs no token; on any other address it needs the API token', async () => {
    const auth = new TokenAuthenticator('s3cret');
    exporter = new MetricsExporter({ gateway, process: false });
    const open = await exporter.listen('127.0.0.1', 0, auth);
    expect((await fetch(`http://127.0.0.1:${open.port}/metrics`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${open.port}/`)).status).toBe(404);
    await exporter.close();

    exporter = new MetricsExporter({ gateway, process: false });
    const wide = await exporter.listen('0.0.0.0', 0, auth);
    const url = `http://127.0.0.1:${wide.port}/metrics`;
    const refused = await fetch(url);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer');
    expect((await fetch(url, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const ok = await fetch(url, { headers: { authorization: 'Bearer s3cret' } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('skiff_gateway_requests_total{route="shop/cart",rule="checkout",code="2xx"} 2');
  });

  it('tells loopback addresses from the others', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost']) expect(isLoopback(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '::ffff:10.0.0.1']) expect(isLoopback(h)).toBe(false);
  });
});
