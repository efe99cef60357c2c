import { type ClientHttp2Session,connect as h2connect } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';

import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import type { Authorizer } from '../../src/gateway/index.js';
import { InternalCA } from '../../src/gateway/mtls/ca.js';
import { LazyIdentity, WorkloadIdentity } from '../../src/gateway/mtls/identity.js';
import { spiffeId } from '../../src/gateway/mtls/spiffe.js';

import { route, service, startGateway, type TestGateway } from './helpers.js';

let t: TestGateway | undefined;
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await t?.close();
  t = undefined;
});

const fnRoute = route('r', { http: [{ route: [{ destination: { function: 'f' } }] }] });

function h2get(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path, ...headers });
    let body = '';
    let head: Record<string, unknown> = {};
    req.on('response', (h) => (head = h));
    req.on('data', (d) => (body += d));
    req.on('end', () => resolve({ status: Number(head[':status']), headers: head, body }));
    req.on('error', reject);
    req.end();
  });
}

describe('protocols', () => {
  it('serves HTTP/2 with prior knowledge (h2c) and HTTP/1.1 on the same port', async () => {
    t = await startGateway([fnRoute]);
    const session = h2connect(`http://127.0.0.1:${t.port}`);
    cleanups.push(() => void session.close());
    const r = await h2get(session, '/h2?x=1', { 'x-proto': 'two' });
    expect(r.status).toBe(200);
    const echoed = JSON.parse(r.body);
    expect(echoed).toMatchObject({ path: '/h2', query: 'x=1' });
    expect(echoed.headers['x-proto']).toBe('two');
    expect(Object.keys(echoed.headers).some((k: string) => k.startsWith(':'))).toBe(false);
    expect(r.headers['x-request-id']).toBeDefined();
    // Several streams on one session.
    const many = await Promise.all([1, 2, 3].map((i) => h2get(session, `/s${i}`)));
    expect(many.map((m) => m.status)).toEqual([200, 200, 200]);
    expect((await fetch(`${t.url}/h1`)).status).toBe(200);
  });

  it('proxies HTTP/2 requests with bodies to HTTP/1.1 upstreams', async () => {
    const { startUpstream } = await import('./helpers.js');
    const up = await startUpstream((req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        res.writeHead(200, { connection: 'keep-alive', 'keep-alive': 'timeout=5', 'x-up': 'h1' });
        res.end(`${req.method} ${req.url} ${n}`);
      });
    });
    cleanups.push(() => up.close());
    t = await startGateway([route('r', { http: [{ route: [{ destination: { service: 'api' } }] }] })], [service('api', { endpoints: [{ address: '127.0.0.1', port: up.port }] })]);
    const session = h2connect(`http://127.0.0.1:${t.port}`);
    cleanups.push(() => void session.close());
    const r = await new Promise<{ status: number; body: string; up: unknown }>((resolve, reject) => {
      const req = session.request({ ':path': '/post?x=1', ':method': 'POST', 'content-type': 'application/octet-stream' });
      let body = '';
      let head: Record<string, unknown> = {};
      req.on('response', (h) => (head = h));
      req.on('data', (d) => (body += d));
      req.on('end', () => resolve({ status: Number(head[':status']), body, up: head['x-up'] }));
      req.on('error', reject);
      req.end(Buffer.alloc(300_000, 1));
    });
    expect(r).toEqual({ status: 200, body: 'POST /post?x=1 300000', up: 'h1' });
  });

  it('serves TLS with ALPN h2 and identifies mutual-TLS peers by SPIFFE ID for authorization', async () => {
    const ca = await InternalCA.create('skiff.local');
    const gwId = await WorkloadIdentity.create(ca, spiffeId('skiff.local', 'skiff-system', 'gateway', 'node'));
    const caller = await WorkloadIdentity.create(ca, spiffeId('skiff.local', 'default', 'caller'));
    cleanups.push(() => gwId.close(), () => caller.close());
    const authorizer: Authorizer = {
      async check(input: any) {
        return { allowed: input.attributes.source.principal === 'spiffe://skiff.local/ns/default/fn/caller' };
      },
    };
    t = await startGateway([route('r', { filters: [{ authz: {} }], http: [{ route: [{ destination: { function: 'f' } }] }] })], [], { authorizer });
    const { port } = await t.gw.listenSecure('127.0.0.1', 0, gwId);
    const session = h2connect(`https://localhost:${port}`, { ...caller.clientOptions(), servername: 'localhost', host: '127.0.0.1' } as never);
    cleanups.push(() => void session.close());
    const ok = await h2get(session, '/secure');
    expect(ok.status).toBe(200);
    expect(session.alpnProtocol).toBe('h2');
    // HTTP/1.1 over TLS without a client certificate: served, but the policy denies it.
    const denied = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/secure', ca: ca.certPem, servername: 'localhost', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    expect(denied).toBe(403);
  });

  it('connects to ISTIO_MUTUAL upstreams with its workload identity', async () => {
    const ca = await InternalCA.create('skiff.local');
    const gwId = await WorkloadIdentity.create(ca, spiffeId('skiff.local', 'skiff-system', 'gateway', 'node'));
    const upId = await WorkloadIdentity.create(ca, spiffeId('skiff.local', 'default', 'backend'));
    cleanups.push(() => gwId.close(), () => upId.close());
    const seen: string[] = [];
    const up = createHttpsServer(upId.serverOptions(true), (req, res) => {
      const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate().subjectaltname ?? '';
      seen.push(peer);
      res.writeHead(200, { 'x-up': 'tls' });
      res.end('secure upstream');
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => { up.closeAllConnections(); up.close(() => r()); }));
    const port = (up.address() as AddressInfo).port;
    t = await startGateway([route('r', { http: [{ route: [{ destination: { service: 'backend' } }] }] })], [service('backend', { endpoints: [{ address: '127.0.0.1', port }], tls: { mode: 'ISTIO_MUTUAL', sni: 'localhost' } })]);
    t.gw.useIdentity(gwId);
    const r = await fetch(`${t.url}/`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('secure upstream');
    expect(seen[0]).toContain('URI:spiffe://skiff.local/ns/skiff-system/node/gateway');
  });

  it('makes a lazy identity on the first ISTIO_MUTUAL connection, once, and says why when it cannot', async () => {
    const ca = await InternalCA.create('skiff.local');
    const upId = await WorkloadIdentity.create(ca, spiffeId('skiff.local', 'default', 'backend'));
    cleanups.push(() => upId.close());
    const seen: string[] = [];
    const up = createHttpsServer(upId.serverOptions(true), (req, res) => {
      seen.push((req.socket as import('node:tls').TLSSocket).getPeerCertificate().subjectaltname ?? '');
      res.end('secure upstream');
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => { up.closeAllConnections(); up.close(() => r()); }));
    const port = (up.address() as AddressInfo).port;
    const logged: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line).msg) });
    const backend = service('backend', { endpoints: [{ address: '127.0.0.1', port }], tls: { mode: 'ISTIO_MUTUAL', sni: 'localhost' } });
    t = await startGateway([route('r', { http: [{ route: [{ destination: { service: 'backend' } }] }] })], [backend], { logger });
    let attempts = 0;
    const lazy = new LazyIdentity(async () => {
      attempts++;
      if (attempts === 1) throw new Error('cannot write the CA directory');
      return WorkloadIdentity.create(ca, spiffeId('skiff.local', 'skiff-system', 'node', 'node'));
    });
    cleanups.push(() => lazy.close());
    t.gw.useIdentity(lazy);
    expect(attempts).toBe(0);

    // The first connection waits for the identity; that it could not be made fails the connection, and says why.
    const failed = await fetch(`${t.url}/`);
    expect(failed.status).toBe(502);
    await failed.text();
    expect(seen).toEqual([]);
    expect(logged).toContain("upstream connection refused: spec.tls.mode ISTIO_MUTUAL needs this node's mesh identity, which could not be made: cannot write the CA directory");

    // Tried again on the next connections, which share one attempt, and then present the new identity.
    const replies = await Promise.all([1, 2, 3].map(async () => {
      const r = await fetch(`${t!.url}/`, { headers: { connection: 'close' } });
      return `${r.status} ${await r.text()}`;
    }));
    expect(replies).toEqual(['200 secure upstream', '200 secure upstream', '200 secure upstream']);
    expect(attempts).toBe(2);
    expect(lazy.current).toBeDefined();
    expect(seen.length).toBeGreaterThan(0);
    for (const peer of seen) expect(peer).toBe('URI:spiffe://skiff.local/ns/skiff-system/node/node, DNS:localhost');
  });
});
