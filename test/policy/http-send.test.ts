import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyEngine, toJSON } from '../../src/policy/index.js';

// http.send blocks its thread until the answer arrives, so the loopback server runs in a worker thread.
const SERVER = `
const { parentPort } = require('node:worker_threads');
const http = require('node:http');
const server = http.createServer((req, res) => {
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
