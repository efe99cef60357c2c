import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Exposition, parseExposition, sum, value } from '../helpers/prometheus.js';
import { apiFetch, cli, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';
import { wagiWat, wat } from '../helpers/wat.js';

let s: RunningSkiff;
let dir: string;
let metricsUrl: string;

const POLICY = `apiVersion: skiff.dev/v1
kind: Policy
metadata: { name: guard }
spec:
  rego: |
    package http.guard

    default allow := false

    allow if startswith(input.attributes.request.http.path, "/guarded/open")
---
apiVersion: skiff.dev/v1
kind: Function
metadata: { name: guarded }
spec: { module: ./ok.wasm }
---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: guarded }
spec:
  filters: [{ authz: { policy: data.http.guard.allow } }]
  http:
    - match: [{ uri: { prefix: /guarded } }]
      route: [{ destination: { function: guarded } }]
`;

async function scrape(): Promise<Exposition> {
  const r = await apiFetch(s, '/metrics');
  expect(r.status).toBe(200);
  return parseExposition(await r.text());
}

beforeAll(async () => {
  s = await startSkiff({ demo: true, args: ['--metrics', '127.0.0.1:0'] });
  metricsUrl = /metrics=(\S+)/.exec(s.readyLine)![1]!;
  dir = mkdtempSync(join(tmpdir(), 'skiff-metrics-'));
  writeFileSync(join(dir, 'ok.wasm'), await wat(wagiWat('Content-Type: text/plain\n\nbehind policy\n')));
  writeFileSync(join(dir, 'all.yaml'), POLICY);
  expect((await cli(['apply', '-f', join(dir, 'all.yaml')], { skiff: s })).code).toBe(0);
  await waitFor(async () => (await fetch(`${s.gateway}/guarded/open`)).status === 200, 'the guarded route serves');
}, 40_000);

afterAll(async () => {
  await s?.stop();
  if (s) rmSync(s.dataDir, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('GET /metrics', () => {
  it('answers the Prometheus text format with the token, 401 without one or with a wrong one', async () => {
    const ok = await apiFetch(s, '/metrics');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await ok.text()).toContain('# TYPE skiff_gateway_requests_total counter');
    expect((await fetch(`${s.api}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${s.api}/metrics`, { headers: { authorization: 'Bearer not-the-token' } });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { reason: string }).reason).toBe('Unauthorized');
    expect((await apiFetch(s, '/metrics', { method: 'POST', body: '' })).status).toBe(405);
  });

  it('counts a known sequence of requests exactly: by route and code, latency, function runs and policy decisions', async () => {
    const before = await scrape();
    const HELLO = 5;
    const UNKNOWN = 3;
    const DENIED = 2;
    const ALLOWED = 4;
    let helloBytes = 0;
    for (let i = 0; i < HELLO; i++) {
      const r = await fetch(`${s.gateway}/hello`);
      expect(r.status).toBe(200);
      helloBytes += (await r.arrayBuffer()).byteLength;
    }
    for (let i = 0; i < UNKNOWN; i++) expect((await fetch(`${s.gateway}/no/such/path-${i}`)).status).toBe(404);
    for (let i = 0; i < DENIED; i++) expect((await fetch(`${s.gateway}/guarded/secret`)).status).toBe(403);
    for (let i = 0; i < ALLOWED; i++) expect((await fetch(`${s.gateway}/guarded/open`)).status).toBe(200);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);

    // Types as the contract names them.
    expect(after.types.get('skiff_gateway_requests_total')).toBe('counter');
    expect(after.types.get('skiff_gateway_request_duration_seconds')).toBe('histogram');
    expect(after.types.get('skiff_function_runs_total')).toBe('counter');
    expect(after.types.get('skiff_policy_decisions_total')).toBe('counter');
    expect(after.types.get('skiff_policy_evaluation_duration_seconds')).toBe('histogram');
    expect(after.types.get('skiff_nodejs_eventloop_lag_seconds')).toBe('gauge');

    // The demo route saw only these requests since start: its counts are absolute.
    const hello = { route: 'default/hello', rule: '0' };
    expect(value(after, 'skiff_gateway_requests_total', { ...hello, code: '2xx' })).toBe(HELLO);
    expect(value(after, 'skiff_gateway_request_duration_seconds_count', hello)).toBe(HELLO);
    expect(value(after, 'skiff_gateway_request_duration_seconds_bucket', { ...hello, le: '+Inf' })).toBe(HELLO);
    expect(value(after, 'skiff_gateway_request_duration_seconds_sum', hello)).toBeGreaterThan(0);
    // Body sizes: bodiless GETs in, exactly the bytes the client read out.
    expect(after.types.get('skiff_gateway_response_size_bytes')).toBe('histogram');
    expect(value(after, 'skiff_gateway_response_size_bytes_count', hello)).toBe(HELLO);
    expect(value(after, 'skiff_gateway_response_size_bytes_sum', hello)).toBe(helloBytes);
    expect(value(after, 'skiff_gateway_request_size_bytes_sum', hello)).toBe(0);
    expect(value(after, 'skiff_gateway_request_size_bytes_bucket', { ...hello, le: '64' })).toBe(HELLO);
    expect(sum(after, 'skiff_function_runs_total', { function: 'default/hello', result: 'ok' })).toBe(HELLO);
    expect(sum(after, 'skiff_function_starts_total', { function: 'default/hello' })).toBe(HELLO);
    // The demo guest's linear memory (one 64 KiB page or more) is observed once per clean run.
    expect(value(after, 'skiff_function_memory_bytes_count', { function: 'default/hello' })).toBe(HELLO);
    expect(value(after, 'skiff_function_memory_bytes_bucket', { function: 'default/hello', le: '+Inf' })).toBe(HELLO);
    expect(value(after, 'skiff_function_memory_bytes_sum', { function: 'default/hello' }) / HELLO).toBeGreaterThanOrEqual(65_536);
    expect(after.types.get('skiff_function_memory_bytes')).toBe('histogram');

    // Requests no route matched: route "" and the status as code.
    expect(delta('skiff_gateway_requests_total', { route: '', rule: '', code: '404' })).toBe(UNKNOWN);

    // The guarded route: denials answer 403 (4xx), allowed requests reach the function.
    const guarded = { route: 'default/guarded', rule: '0' };
    expect(delta('skiff_gateway_requests_total', { ...guarded, code: '4xx' })).toBe(DENIED);
    expect(delta('skiff_gateway_requests_total', { ...guarded, code: '2xx' })).toBe(ALLOWED);
    expect(delta('skiff_policy_decisions_total', { policy: 'data.http.guard.allow', result: 'deny' })).toBe(DENIED);
    expect(delta('skiff_policy_decisions_total', { policy: 'data.http.guard.allow', result: 'allow' })).toBe(ALLOWED);
    expect(delta('skiff_policy_evaluation_duration_seconds_count', { policy: 'data.http.guard.allow' })).toBe(DENIED + ALLOWED);
    expect(sum(after, 'skiff_function_runs_total', { function: 'default/guarded' }) - sum(before, 'skiff_function_runs_total', { function: 'default/guarded' })).toBe(ALLOWED);
    expect(delta('skiff_gateway_upstream_attempts_total', { upstream: 'fn:default/guarded', code: '2xx' })).toBe(ALLOWED);

    // Buckets are cumulative and end at the count.
    const les = [...after.samples.keys()].filter((k) => k.startsWith('skiff_gateway_request_duration_seconds_bucket{') && k.includes('route="default/hello"'));
    const counts = les.map((k) => after.samples.get(k)!);
    expect(counts.length).toBeGreaterThan(10);
    expect([...counts].sort((a, b) => a - b)).toEqual(counts.slice().sort((a, b) => a - b));

    // Platform families: the store, the controllers and the sandbox pool.
    expect(value(after, 'skiff_store_revision')).toBeGreaterThan(0);
    expect(value(after, 'skiff_store_watchers')).toBeGreaterThan(0);
    expect(value(after, 'skiff_controller_reconciles_total', { controller: 'routes', result: 'success' })).toBeGreaterThan(0);
    expect(value(after, 'skiff_controller_queue_depth', { controller: 'functions' })).toBe(0);
    expect(value(after, 'skiff_sandbox_workers')).toBeGreaterThan(0);
    expect(value(after, 'skiff_admission_reviews_total', { operation: 'CREATE', result: 'allowed' })).toBeGreaterThan(0);
  });

  it('labels carry names, never request paths', async () => {
    const text = await (await apiFetch(s, '/metrics')).text();
    expect(text).not.toContain('/no/such/path');
    expect(text).not.toContain('/guarded/secret');
  });
});

describe('skiff up --metrics', () => {
  it('serves only /metrics on its own loopback listener, without a token', async () => {
    expect(s.readyLine).toMatch(/ metrics=http:\/\/127\.0\.0\.1:\d+\/metrics/);
    const r = await fetch(metricsUrl);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const e = parseExposition(await r.text());
    expect(value(e, 'skiff_gateway_requests_total', { route: 'default/hello', rule: '0', code: '2xx' })).toBeGreaterThan(0);
    expect((await fetch(metricsUrl.replace(/\/metrics$/, '/apis'))).status).toBe(404);
  });
});
