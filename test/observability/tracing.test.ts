import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { OTLP_KIND, type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { cli, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';
import { wagiWat, wat } from '../helpers/wat.js';

/**
 * One request through a real `skiff up`: JWT → authz → rate limit → a Service that fails once and is
 * retried; the Service then calls a Function through the gateway with the traceparent it received,
 * so the exported tree continues under the retried attempt's CLIENT span.
 */

let s: RunningSkiff;
let otlp: OtlpReceiver;
let upstream: Server;
let dir: string;
let token: string;
/** What the upstream received on each hit: its traceparent. */
const upstreamSaw: string[] = [];

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.end();
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skiff-tracing-'));
  otlp = await startOtlpReceiver();
  const keys = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'ES256' };
  token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('https://issuer.test').setExpirationTime('10m').sign(keys.privateKey);

  let gatewayUrl = '';
  upstream = createServer((req, res) => {
    upstreamSaw.push(String(req.headers.traceparent ?? ''));
    if (upstreamSaw.length === 1) {
      res.writeHead(503).end('try again');
      return;
    }
    // The Service calls a Function through the gateway, passing on the trace context it was given.
    void get(`${gatewayUrl}/fn/x`, { traceparent: String(req.headers.traceparent) }).then(
      (r) => res.writeHead(r.status, { 'content-type': 'text/plain' }).end(r.body),
      (err) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upPort = (upstream.address() as AddressInfo).port;

  writeFileSync(join(dir, 'fn.wasm'), await wat(wagiWat('Content-Type: text/plain\n\nfrom the function\n', { stderr: 'function says hi\n' })));
  writeFileSync(
    join(dir, 'all.yaml'),
    `apiVersion: skiff.dev/v1
kind: Policy
metadata: { name: front-authz }
spec:
  rego: |
    package front.authz
    default allow := false
    allow if input.attributes.request.http.method == "GET"
---
apiVersion: skiff.dev/v1
kind: Function
metadata: { name: traced-fn }
spec: { module: ./fn.wasm }
---
apiVersion: skiff.dev/v1
kind: Service
metadata: { name: flaky }
spec:
  endpoints: [{ address: 127.0.0.1, port: ${upPort} }]
---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: front }
spec:
  filters:
    - jwt: { issuer: https://issuer.test, jwks: { keys: [${JSON.stringify(jwk)}] } }
    - authz: { policy: data.front.authz.allow }
    - rateLimit: { maxTokens: 1000, fillInterval: 1s }
  http:
    - match: [{ uri: { prefix: /front } }]
      retries: { attempts: 2, retryOn: 5xx, backoff: { baseInterval: 1ms } }
      route: [{ destination: { service: flaky } }]
---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: fn }
spec:
  http:
    - match: [{ uri: { prefix: /fn } }]
      route: [{ destination: { function: traced-fn } }]
`,
  );
  s = await startSkiff({ args: ['--allow-upstream', `127.0.0.1:${upPort}`], env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_TRACES_SAMPLER: 'parentbased_always_on', OTEL_SERVICE_NAME: 'skiff-under-test' } });
  gatewayUrl = s.gateway;
  const applied = await cli(['apply', '-f', join(dir, 'all.yaml')], { skiff: s });
  expect(applied.code, applied.stderr).toBe(0);
  // Ready once the function answers through its route (the policy and routes load alongside).
  await waitFor(async () => (await get(`${s.gateway}/fn/ready`)).status === 200, 'the function route', 15_000);
}, 60_000);

afterAll(async () => {
  await s?.stop();
  await otlp?.close();
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
  rmSync(dir, { recursive: true, force: true });
});

const byName = (spans: ReceivedSpan[], name: string) => spans.filter((x) => x.name === name);

describe('OpenTelemetry traces from a running Skiff', () => {
  it('exports the span tree of one request: server, filters, retried attempts, the next hop and the function', async () => {
    upstreamSaw.length = 0;
    const r = await get(`${s.gateway}/front/a?q=1`, { authorization: `Bearer ${token}`, 'user-agent': 'tracing-test/1' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('from the function\n');
    expect(upstreamSaw).toHaveLength(2);

    // The first SERVER span for /front is the root of the trace.
    const root = await expect
      .poll(() => otlp.spans.find((x) => x.kind === OTLP_KIND.SERVER && x.attributes['url.path'] === '/front/a'), { timeout: 10_000 })
      .toBeDefined()
      .then(() => otlp.spans.find((x) => x.kind === OTLP_KIND.SERVER && x.attributes['url.path'] === '/front/a')!);
    const trace = root.traceId;
    // Wait for the whole tree: server, three filters, two attempts, the second server span, the function run.
    await expect.poll(() => otlp.spans.filter((x) => x.traceId === trace).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(8);
    const spans = otlp.spans.filter((x) => x.traceId === trace);

    expect(root.parentSpanId).toBe('');
    expect(root.service).toBe('skiff-under-test');
    expect(root.name).toBe('GET default/front#0');
    expect(root.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/front/a',
      'http.route': 'default/front#0',
      'http.response.status_code': 200,
      'client.address': '127.0.0.1',
      'server.address': '127.0.0.1',
      'user_agent.original': 'tracing-test/1',
    });

    for (const [name, attrs] of [
      ['filter jwt', { 'skiff.jwt.outcome': 'verified', 'skiff.jwt.issuer': 'https://issuer.test' }],
      ['filter authz', { 'skiff.authz.policy': 'data.front.authz.allow', 'skiff.authz.decision': 'allow' }],
      ['filter rateLimit', { 'skiff.ratelimit.outcome': 'allowed' }],
    ] as const) {
      const [f] = byName(spans, name);
      expect(f, name).toBeDefined();
      expect(f!.kind).toBe(OTLP_KIND.INTERNAL);
      expect(f!.parentSpanId).toBe(root.spanId);
      expect(f!.attributes).toMatchObject(attrs);
      // The subject is personal data: it stays out of the span.
      expect(Object.values(f!.attributes)).not.toContain('alice');
    }

    const attempts = spans.filter((x) => x.kind === OTLP_KIND.CLIENT).sort((a, b) => Number(a.attributes['skiff.upstream.attempt']) - Number(b.attributes['skiff.upstream.attempt']));
    expect(attempts).toHaveLength(2);
    expect(attempts.map((a) => a.parentSpanId)).toEqual([root.spanId, root.spanId]);
    expect(attempts[0]!.attributes).toMatchObject({ 'skiff.upstream.attempt': 1, 'http.response.status_code': 503, 'skiff.upstream.service': 'default/flaky', 'server.address': '127.0.0.1', 'skiff.upstream.outcome': 'discarded' });
    expect(attempts[0]!.status.code).toBe(2);
    expect(attempts[1]!.attributes).toMatchObject({ 'skiff.upstream.attempt': 2, 'http.request.resend_count': 1, 'http.response.status_code': 200, 'skiff.upstream.outcome': 'committed' });
    // What the upstream saw as its parent is exactly the exported CLIENT span of that attempt.
    expect(upstreamSaw).toEqual([`00-${trace}-${attempts[0]!.spanId}-01`, `00-${trace}-${attempts[1]!.spanId}-01`]);

    // The upstream's call back into the gateway continues the trace under the second attempt.
    const next = spans.find((x) => x.kind === OTLP_KIND.SERVER && x.attributes['url.path'] === '/fn/x')!;
    expect(next).toBeDefined();
    expect(next.parentSpanId).toBe(attempts[1]!.spanId);
    const run = spans.find((x) => x.name === 'function default/traced-fn')!;
    expect(run).toBeDefined();
    expect(run.kind).toBe(OTLP_KIND.INTERNAL);
    expect(run.parentSpanId).toBe(next.spanId);
    expect(run.attributes).toMatchObject({ 'faas.name': 'traced-fn', 'skiff.function': 'default/traced-fn' });
    expect(['inline', 'worker']).toContain(run.attributes['skiff.function.mode']);
    expect(typeof run.attributes['faas.coldstart']).toBe('boolean');
    // Fuel is metered only on the gateway's thread.
    if (run.attributes['skiff.function.mode'] === 'inline') expect(run.attributes['skiff.function.fuel']).toBeGreaterThan(0);

    // Children lie within their parent's time.
    for (const c of [...attempts, next]) {
      expect(c.startNs >= root.startNs).toBe(true);
      expect(c.endNs <= root.endNs).toBe(true);
    }

    // The access log line of the first request carries the root span's ids.
    await expect
      .poll(() => s.stderr().split('\n').some((l) => l.includes('"msg":"access"') && l.includes(`"trace_id":"${trace}"`) && l.includes(`"span_id":"${root.spanId}"`)), { timeout: 5000 })
      .toBe(true);
    // So does the function's own stderr line, read as JSON lines through skiff logs.
    const logs = await cli(['logs', 'traced-fn', '-o', 'json'], { skiff: s });
    expect(logs.code, logs.stderr).toBe(0);
    const lines = logs.stdout.trim().split('\n').map((l) => JSON.parse(l) as { line: string; stream: string; trace_id?: string; span_id?: string });
    const mine = lines.find((l) => l.line === 'function says hi' && l.trace_id === trace);
    expect(mine).toBeDefined();
    expect(otlp.spans.filter((x) => x.traceId === trace).map((x) => x.spanId)).toContain(mine!.span_id);
    const bad = await cli(['logs', 'traced-fn', '-o', 'xml'], { skiff: s });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('expected text or json');
  });

  it('records admission reviews as spans of their own', async () => {
    await expect.poll(() => otlp.spans.some((x) => x.name === 'admission review' && x.attributes['skiff.admission.kind'] === 'Function'), { timeout: 10_000 }).toBe(true);
    const review = otlp.spans.find((x) => x.name === 'admission review' && x.attributes['skiff.admission.kind'] === 'Function')!;
    expect(review.parentSpanId).toBe('');
    expect(review.attributes).toMatchObject({ 'skiff.admission.operation': 'CREATE', 'skiff.admission.allowed': true, 'skiff.admission.constraints': 0 });
  });

  it('honours the sampled flag of a caller (parent-based)', async () => {
    const unsampled = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';
    const before = otlp.spans.length;
    expect((await get(`${s.gateway}/fn/quiet`, { traceparent: unsampled })).status).toBe(200);
    const sampled = '00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    expect((await get(`${s.gateway}/fn/loud`, { traceparent: sampled })).status).toBe(200);
    await expect.poll(() => otlp.spans.some((x) => x.traceId === '1af7651916cd43dd8448eb211c80319c'), { timeout: 10_000 }).toBe(true);
    const server = otlp.spans.find((x) => x.traceId === '1af7651916cd43dd8448eb211c80319c' && x.kind === OTLP_KIND.SERVER)!;
    expect(server.parentSpanId).toBe('b7ad6b7169203331');
    expect(otlp.spans.slice(before).some((x) => x.traceId === '0af7651916cd43dd8448eb211c80319c')).toBe(false);
  });
});
