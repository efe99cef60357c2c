import { Worker } from 'node:worker_threads';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { EvalCancelError, PolicyEngine, toJSON } from '../../src/policy/index.js';
import { UpstreamGuard } from '../../src/security/index.js';

// http.send blocks its thread until the answer arrives, so the loopback server runs in a worker thread.
const SERVER = `
const { parentPort } = require('node:worker_threads');
const http = require('node:http');
const server = http.createServer((req, res) => {
  if (req.url === '/slow') return void setTimeout(() => res.end('late'), 3000);
  if (req.url.startsWith('/redirect')) {
    res.writeHead(302, { location: new URL(req.url, 'http://x').searchParams.get('to') });
    return void res.end();
  }
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ method: req.method, path: req.url, got: body ? JSON.parse(body) : null }));
  });
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
parentPort.on('message', () => server.close(() => process.exit(0)));
`;
let worker: Worker;
let base = '';
beforeAll(async () => {
  worker = new Worker(SERVER, { eval: true });
  const port = await new Promise<number>((r) => worker.once('message', r));
  base = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await worker.terminate();
});

describe('http.send', () => {
  const mod = 'package t\nresp := http.send({"method": "post", "url": input.url, "body": {"a": 1}})';

  it('is off unless the host is allowed', () => {
    const e = new PolicyEngine();
    e.addModule('t.rego', mod);
    expect(() => e.prepare('data.t.resp', { strict: true }).eval({ input: { url: `${base}/x` } })).toThrow(/not allowed/);
  });

  it('calls an allowed loopback server synchronously', () => {
    const e = new PolicyEngine();
    e.addModule('t.rego', mod);
    const rows = e.prepare('data.t.resp', { httpAllow: ['127.0.0.1'] }).eval({ input: { url: `${base}/x` } });
    expect(toJSON(rows[0]!.expressions[0]!.value)).toMatchObject({ status_code: 200, body: { method: 'POST', path: '/x', got: { a: 1 } } });
  });
});

describe('http.send through the operator\'s upstream allow-list', () => {
  const mod = 'package t\nresp := http.send({"method": "get", "url": input.url, "enable_redirect": true})';
  const engine = (upstreams: UpstreamGuard) => {
    const e = new PolicyEngine({ upstreams });
    e.addModule('t.rego', mod);
    return e.prepare('data.t.resp', { strict: true });
  };
  const port = () => Number(new URL(base).port);

  it('refuses loopback unless the operator allowed it', () => {
    expect(() => engine(UpstreamGuard.from([])).eval({ input: { url: `${base}/x` } })).toThrow(/http\.send: refused: 127\.0\.0\.1:\d+ is a loopback.*--allow-upstream/);
    expect(() => engine(UpstreamGuard.from([])).eval({ input: { url: `http://localhost:${port()}/x` } })).toThrow(/refused/);
    const rows = engine(UpstreamGuard.from([`127.0.0.1:${port()}`])).eval({ input: { url: `${base}/x` } });
    expect(toJSON(rows[0]!.expressions[0]!.value)).toMatchObject({ status_code: 200 });
  });

  it("refuses Skiff's own listeners whatever is allowed", () => {
    const guard = UpstreamGuard.permissive();
    guard.addOwnListener({ host: '127.0.0.1', port: port() });
    expect(() => engine(guard).eval({ input: { url: `${base}/x` } })).toThrow(/own listeners/);
  });

  it('checks every redirect again', () => {
    const guard = UpstreamGuard.from([`127.0.0.1:${port()}`]);
    const to = encodeURIComponent('http://127.0.0.1:1/x');
    expect(() => engine(guard).eval({ input: { url: `${base}/redirect?to=${to}` } })).toThrow(/refused: 127\.0\.0\.1:1 is a loopback/);
    const ok = encodeURIComponent(`${base}/x`);
    expect(toJSON(engine(guard).eval({ input: { url: `${base}/redirect?to=${ok}` } })[0]!.expressions[0]!.value)).toMatchObject({ status_code: 200, body: { path: '/x' } });
  });

  it('never waits past the evaluation deadline', () => {
    const e = new PolicyEngine({ upstreams: UpstreamGuard.permissive() });
    e.addModule('t.rego', mod);
    const t0 = performance.now();
    expect(() => e.prepare('data.t.resp', { timeoutMs: 300 }).eval({ input: { url: `${base}/slow` } })).toThrow(EvalCancelError);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});
