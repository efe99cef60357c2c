import { request } from 'node:http';

import { afterEach, describe, expect, it } from 'vitest';

import { rawExchange, route, service, startGateway, startUpstream, type TestGateway, type Upstream } from './helpers.js';

let t: TestGateway | undefined;
let up: Upstream | undefined;
afterEach(async () => {
  await t?.close();
  await up?.close();
  t = undefined;
  up = undefined;
});

const svcRoute = route('s', { http: [{ route: [{ destination: { service: 'api' } }] }] });
const svc = (port: number) => service('api', { endpoints: [{ address: '127.0.0.1', port }] });

const fnRoute = route('r', { http: [{ route: [{ destination: { function: 'f' } }] }] });

function get(port: number, path: string, agent: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: agent ? undefined : false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('response writes batched per event-loop turn', () => {
  it('gives every one of many concurrent connections its own answer', async () => {
    t = await startGateway([fnRoute]);
    const paths = Array.from({ length: 200 }, (_, i) => `/req-${i}`);
    const answers = await Promise.all(paths.map((p) => get(t!.port, p, false)));
    for (let i = 0; i < paths.length; i++) {
      expect(answers[i]!.status).toBe(200);
      expect(JSON.parse(answers[i]!.body).path).toBe(paths[i]);
    }
  });

  it('keeps pipelined answers in request order when the functions finish in reverse order', async () => {
    t = await startGateway([fnRoute]);
    t.invoker.behaviour = async (_ns, _name, req) => {
      // /a finishes last, /c first.
      const delay = { '/a': 60, '/b': 30, '/c': 0 }[req.path] ?? 0;
      await new Promise((r) => setTimeout(r, delay));
      return { status: 200, headers: [['content-type', 'text/plain']], body: Buffer.from(`answer ${req.path}\n`) };
    };
    const r = await rawExchange(t.port, 'GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\nGET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 3000);
    const bodies = r.data.match(/answer \/[abc]/g);
    expect(bodies).toEqual(['answer /a', 'answer /b', 'answer /c']);
    expect(r.closed).toBe(true);
  });

  it('does not fail the other answers when a client hung up before its answer was written', async () => {
    t = await startGateway([fnRoute]);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    t.invoker.behaviour = async (_ns, _name, req) => {
      await gate;
      return { status: 200, headers: [['content-type', 'text/plain']], body: Buffer.from(`ok ${req.path}\n`) };
    };
    // One client leaves while its request is in flight; the others wait for theirs.
    const gone = rawExchange(t.port, 'GET /gone HTTP/1.1\r\nHost: a\r\n\r\n', 50);
    const stay = Promise.all(['/x', '/y'].map((p) => get(t!.port, p, false)));
    await gone;
    release();
    const answers = await stay;
    expect(answers.map((a) => a.body)).toEqual(['ok /x\n', 'ok /y\n']);
  });

  it('passes a streamed upstream answer on as it comes, not only once it ends', async () => {
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part\n');
      void finished.then(() => res.end('last part\n'));
    });
    t = await startGateway([svcRoute], [svc(up.port)]);
    const res = await fetch(`${t.url}/stream`);
    const reader = res.body!.getReader();
    // The first part arrives while the upstream is still holding the rest back.
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe('first part\n');
    finish();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toBe('last part\n');
  });

  it('proxies large answers intact and many small ones each to their own client', async () => {
    const big = Buffer.alloc(6 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    up = await startUpstream((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': big.length });
        res.end(big);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`answer for ${req.url}`);
    });
    t = await startGateway([svcRoute], [svc(up.port)]);
    const [bigRes, ...small] = await Promise.all([
      fetch(`${t.url}/big`).then(async (r) => Buffer.from(await r.arrayBuffer())),
      ...Array.from({ length: 100 }, (_, i) => get(t!.port, `/small-${i}`, false)),
    ]);
    expect(bigRes.equals(big)).toBe(true);
    small.forEach((a, i) => expect(a.body).toBe(`answer for /small-${i}`));
  });
});
