import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { Dashboard, DecisionRing, LiveStream, parseInterval, SampleRing, STREAM_INTERVAL_MS } from '../../src/dashboard/index.js';
import type { GatewayMetrics } from '../../src/gateway/index.js';
import { MemoryStore } from '../../src/store/index.js';

const TOKEN = 'dash-token';
const auth = { authorization: `Bearer ${TOKEN}` };

describe('the dashboard mount', () => {
  let tmp: string;
  let base: string;
  let server: ApiServer;
  let dashboard: Dashboard;
  let samples: SampleRing;
  let decisions: DecisionRing;
  let requests = 0;
  let reads = 0;
  let resources: ResourceService;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'skiff-dash-'));
    const assets = join(tmp, 'web');
    mkdirSync(join(assets, 'assets'), { recursive: true });
    mkdirSync(join(tmp, 'outside'));
    writeFileSync(join(tmp, 'secret.txt'), 'TOP-SECRET');
    writeFileSync(join(tmp, 'outside', 'x.js'), 'TOP-SECRET');
    writeFileSync(join(assets, 'index.html'), '<!doctype html><title>Skiff</title>');
    writeFileSync(join(assets, 'assets', 'main-ABCDEFGH.js'), 'console.log(1)');
    writeFileSync(join(assets, 'assets', 'notes.md'), '# not served');
    symlinkSync(join(tmp, 'secret.txt'), join(assets, 'assets', 'leak.txt'));
    symlinkSync(join(tmp, 'outside'), join(assets, 'assets', 'out'));
    let now = 0;
    samples = new SampleRing({
      now: () => (now += 1000),
      read: (): GatewayMetrics => (reads++, { inFlight: 0, shed: 0, notFound: 0, badPath: 0, badPathByStatus: {}, upstreams: {}, routes: { 'default/hello#0': { requests, responses: { '2xx': requests }, retries: 0, hedges: 0, ejections: 0, overflows: 0, latencyUs: { buckets: [100], counts: [requests, 0], count: requests, sumUs: 0 } } } }),
    });
    decisions = new DecisionRing(10);
    resources = new ResourceService(new MemoryStore(), builtinKinds());
    dashboard = new Dashboard({ samples, decisions, assetDir: assets, resources });
    server = new ApiServer({ resources, logger: pino({ level: 'silent' }), version: 't', token: TOKEN, mounts: [dashboard.mount] });
    const { port } = await server.listen('127.0.0.1', 0);
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    dashboard?.stop();
    await server?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('serves the page shell without a token, with a strict CSP and no caching of the shell', async () => {
    for (const path of ['/ui', '/ui/', '/ui/index.html']) {
      const res = await fetch(base + path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(await res.text()).toContain('<title>Skiff</title>');
    }
  });

  it('serves hashed assets as immutable with their content type, and nothing without a known type', async () => {
    const js = await fetch(`${base}/ui/assets/main-ABCDEFGH.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await js.text()).toBe('console.log(1)');
    expect((await fetch(`${base}/ui/assets/notes.md`)).status).toBe(404);
    expect((await fetch(`${base}/ui/assets/missing-ABCDEFGH.js`)).status).toBe(404);
    expect((await fetch(`${base}/ui/assets`)).status).toBe(404);
  });

  it('never serves a file outside the asset directory: encoded dot-dot, backslashes, symlinks', async () => {
    const attempts = [
      '/ui/assets/%2e%2e/%2e%2e/secret.txt',
      '/ui/%2e%2e/secret.txt',
      '/ui/..%2fsecret.txt',
      '/ui/%2e%2e%2fsecret.txt',
      '/ui/assets/..%5c..%5csecret.txt',
      '/ui/assets/%252e%252e/secret.txt',
      '/ui/assets/leak.txt',
      '/ui/assets/out/x.js',
      '/ui/%00index.html',
    ];
    for (const path of attempts) {
      // fetch would normalise dot segments itself: send the path exactly as written.
      const { status, body } = await rawGet(base, path);
      expect([400, 404], path).toContain(status);
      expect(body, path).not.toContain('TOP-SECRET');
    }
  });

  it('asks for the token on the data endpoints and answers with it', async () => {
    for (const path of ['/ui/api/top', '/ui/api/samples?key=route:default/hello', '/ui/api/decisions', '/ui/api/stream']) {
      expect((await fetch(base + path)).status, path).toBe(401);
      expect((await fetch(base + path, { headers: { authorization: 'Bearer nope' } })).status, path).toBe(401);
    }
    samples.sample();
    requests = 10;
    samples.sample();
    const top = (await (await fetch(`${base}/ui/api/top`, { headers: auth })).json()) as { series: { name: string; rps: number }[] };
    expect(top.series).toEqual([expect.objectContaining({ kind: 'route', name: 'default/hello', rps: 10, requests: 10 })]);
    const hist = (await (await fetch(`${base}/ui/api/samples?key=route:default/hello`, { headers: auth })).json()) as { series: { rps: number[] }[] };
    expect(hist.series[0]!.rps).toEqual([10]);
    expect((await fetch(`${base}/ui/api/samples`, { headers: auth })).status).toBe(400);
    expect((await fetch(`${base}/ui/api/decisions?after=-1`, { headers: auth })).status).toBe(400);
    expect((await fetch(`${base}/ui/api/nothing`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${base}/ui/api/top`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' })).status).toBe(405);
  });

  it('streams samples, decisions and changed collections as server-sent events, with credentials masked', async () => {
    dashboard.start();
    const abort = new AbortController();
    const res = await fetch(`${base}/ui/api/stream`, { headers: auth, signal: abort.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    try {
      await expect.poll(() => dashboard.streams, { timeout: 5000 }).toBe(1);
      requests += 5;
      samples.sample();
      decisions.fromAuthorizer({ policy: 'data.http.authz.allow', allowed: false, durationUs: 12, input: { attributes: { request: { http: { path: '/x', headers: { authorization: 'Bearer s3cret', accept: '*/*' } } } } } });
      await resources.create(resources.kind('Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'dash' } });
      const deadline = Date.now() + 5000;
      while (!(text.includes('event: tick') && text.includes('event: decision') && text.includes('event: changes')) && Date.now() < deadline) text += (await reader.read()).value ?? '';
    } finally {
      abort.abort();
    }
    expect(text).toContain('event: tick\ndata: {"t":');
    expect(text).toContain('"route:default/hello",5');
    const decision = JSON.parse(/event: decision\ndata: (.*)\n/.exec(text)![1]!) as { allowed: boolean; input: { attributes: { request: { http: { headers: Record<string, string> } } } }; erased: string[] };
    expect(decision.allowed).toBe(false);
    expect(decision.input.attributes.request.http.headers).toEqual({ authorization: '**REDACTED**', accept: '*/*' });
    expect(text).not.toContain('s3cret');
    expect(text).toContain('event: changes\ndata: {"changed":["namespaces"]}');
    await expect.poll(() => dashboard.streams, { timeout: 5000 }).toBe(0);
  });

  it('ticks a stream at the interval it asks for, within bounds, and stops that rate with its last page', async () => {
    for (const bad of ['99', '10001', '0', '-100', '100.5', '1e3', 'fast', '']) {
      const res = await fetch(`${base}/ui/api/stream?interval=${bad}`, { headers: auth });
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as { message: string }).message, bad).toContain('interval must be whole milliseconds from 100 to 10000');
    }
    dashboard.start();
    const abort = new AbortController();
    const res = await fetch(`${base}/ui/api/stream?interval=100`, { headers: auth, signal: abort.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    try {
      const deadline = Date.now() + 5000;
      while (text.split('event: tick').length <= 3 && Date.now() < deadline) {
        requests += 2;
        text += (await reader.read()).value ?? '';
      }
    } finally {
      abort.abort();
    }
    expect(text.split('event: tick').length).toBeGreaterThan(3);
    expect(text).toContain('"route:default/hello",2');
    // With its last page gone the fast ring no longer reads the gateway (the default ring reads once a second).
    await expect.poll(() => dashboard.streams, { timeout: 5000 }).toBe(0);
    const before = reads;
    await new Promise((r) => setTimeout(r, 350));
    expect(reads - before).toBeLessThanOrEqual(1);
  });
});

describe('the stream interval', () => {
  it('takes whole milliseconds from 100 (ten ticks a second) to 10000, and refuses the rest with 400', () => {
    expect(STREAM_INTERVAL_MS).toEqual({ min: 100, max: 10_000 });
    expect(parseInterval('100')).toBe(100);
    expect(parseInterval('250')).toBe(250);
    expect(parseInterval('10000')).toBe(10_000);
    for (const bad of ['99', '10001', '0', '-1', '1e3', '0x64', ' 100', '100ms', '1000000']) expect(() => parseInterval(bad), bad).toThrow(expect.objectContaining({ httpStatus: 400 }));
  });
});

describe('LiveStream bounds', () => {
  it('drops a client that stops reading instead of queueing for it, and refuses clients beyond the limit', async () => {
    const live = new LiveStream({ maxClients: 2, maxQueuedBytes: 64 * 1024 });
    const srv = http.createServer((req, res) => {
      try {
        live.attach(req, res);
      } catch (err) {
        res.writeHead(503).end((err as Error).message);
      }
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    // A client that sends its request and then never reads a byte.
    const stuck = net.connect(port, '127.0.0.1');
    stuck.pause();
    stuck.write('GET /stream HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
    const reading = new AbortController();
    try {
      await expect.poll(() => live.size, { timeout: 5000 }).toBe(1);
      const ok = await fetch(`http://127.0.0.1:${port}/stream`, { signal: reading.signal });
      void ok.body!.pipeTo(new WritableStream()).catch(() => undefined);
      await expect.poll(() => live.size, { timeout: 5000 }).toBe(2);
      expect((await fetch(`http://127.0.0.1:${port}/stream`)).status).toBe(503);
      const big = 'x'.repeat(16 * 1024);
      // Far more than the socket buffers and the queue limit hold; the stuck client must go.
      for (let i = 0; i < 2000 && live.dropped === 0; i++) {
        live.send('tick', { big });
        await new Promise((r) => setImmediate(r));
      }
      expect(live.dropped).toBe(1);
      expect(live.size).toBe(1);
    } finally {
      reading.abort();
      stuck.destroy();
      live.close();
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  });
});

function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
