import { lookup } from 'node:dns/promises';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InternalCA, spiffeId } from '../../src/gateway/index.js';
import { type RunningSkiff,startSkiff, waitFor } from '../helpers/skiff-process.js';

/**
 * Probes for issue 11, points 3, 7 (jwksFile, jwksUri) and 8: where Routes and Services may send
 * traffic and what they may have the server read or present, against real `skiff up` processes.
 */

const SECRET = 'TOP-SECRET-HOST-BYTES';
const base = mkdtempSync(join(tmpdir(), 'skiff-upstreams-'));
const granted = join(base, 'granted');
const outside = join(base, 'outside');
mkdirSync(granted);
mkdirSync(outside);
writeFileSync(join(outside, 'jwks.json'), JSON.stringify({ keys: [], note: SECRET }));
writeFileSync(join(granted, 'not-jwks.txt'), `root:x:0:0:${SECRET}:/root:/bin/sh\n`);

function client(s: RunningSkiff) {
  const token = readFileSync(join(s.dataDir, 'token'), 'utf8').trim();
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const url = (plural: string, name = '') => `${s.api}/apis/skiff.dev/v1/namespaces/default/${plural}${name ? `/${name}` : ''}`;
  return {
    token,
    async create(plural: string, obj: Record<string, unknown>): Promise<{ status: number; body: any; text: string }> {
      const r = await fetch(url(plural), { method: 'POST', headers, body: JSON.stringify(obj), signal: AbortSignal.timeout(10_000) });
      const text = await r.text();
      return { status: r.status, body: JSON.parse(text), text };
    },
    async get(plural: string, name = ''): Promise<{ status: number; body: any; text: string }> {
      const r = await fetch(url(plural, name), { headers, signal: AbortSignal.timeout(10_000) });
      const text = await r.text();
      return { status: r.status, body: JSON.parse(text), text };
    },
  };
}

const service = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'skiff.dev/v1', kind: 'Service', metadata: { name }, spec });
const route = (name: string, prefix: string, svc: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'skiff.dev/v1',
  kind: 'Route',
  metadata: { name },
  spec: { http: [{ match: [{ uri: { prefix } }], route: [{ destination: { service: svc } }], ...extra }] },
});
const portOf = (url: string) => Number(new URL(url).port);

/** Names that pass the admission literal check but resolve to loopback here: IPv4 shorthand, and this host's own name when it maps to 127.x. */
async function loopbackNames(): Promise<string[]> {
  const out = ['127.1'];
  for (const n of [hostname(), 'localhost.localdomain', 'ip6-localhost']) {
    try {
      const addrs = await lookup(n, { all: true });
      if (addrs.length && addrs.every((a) => a.address.startsWith('127.') || a.address === '::1')) out.push(n);
    } catch {
      // not resolvable here
    }
  }
  return out;
}

async function routed(s: RunningSkiff, path: string, init: RequestInit = {}): Promise<Response> {
  // The route is programmed within moments of being stored; until then the gateway answers 404.
  const found = await waitFor(async () => {
    const r = await fetch(`${s.gateway}${path}`, { ...init, signal: AbortSignal.timeout(8000) });
    if (r.status === 404) {
      await r.arrayBuffer();
      return undefined;
    }
    return r;
  }, `a route for ${path}`, 15_000);
  return found!;
}

async function listen(server: Server | ReturnType<typeof createHttpsServer>): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('a server without --allow-upstream', () => {
  let s: RunningSkiff;
  let api: ReturnType<typeof client>;
  beforeAll(async () => {
    s = await startSkiff({ demo: true });
    api = client(s);
  }, 30_000);
  afterAll(async () => {
    await s?.stop();
  });

  it('refuses Services to loopback, link-local, the unspecified address and its own API with 422', async () => {
    const apiPort = portOf(s.api);
    const cases: Array<[string, number]> = [
      ['127.0.0.1', apiPort],
      ['127.0.0.1', portOf(s.gateway)],
      ['127.0.0.1', 9],
      ['localhost', apiPort],
      ['LocalHost.', 9],
      ['api.localhost', 9],
      ['::1', 9],
      ['::ffff:127.0.0.1', apiPort],
      ['0.0.0.0', apiPort],
      ['169.254.169.254', 80],
    ];
    for (const [i, [address, port]] of cases.entries()) {
      const r = await api.create('services', service(`lo-${i}`, { endpoints: [{ address, port }] }));
      expect(r.status, `${address}:${port}`).toBe(422);
      expect(r.body.message).toContain('spec.endpoints[0].address');
      expect(r.body.message).toContain('--allow-upstream');
      expect((await api.get('services', `lo-${i}`)).status).toBe(404);
    }
  });

  it('refuses at connect time a name that resolves to loopback: 502/503, the API is not reached, the log says why', async () => {
    const names = await loopbackNames();
    for (const [i, name] of names.entries()) {
      const svc = `sneak-${i}`;
      const created = await api.create('services', service(svc, { endpoints: [{ address: name, port: portOf(s.api) }] }));
      expect(created.status, name).toBe(201);
      const rt = await api.create('routes', route(svc, `/${svc}`, svc, { rewrite: { uri: '/apis/skiff.dev/v1/namespaces/default/functions' } }));
      expect(rt.status).toBe(201);
      const fnName = `smuggled-${i}`;
      const body = JSON.stringify({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: fnName }, spec: { module: '/tmp/x.wasm', capabilities: { dirs: [{ host: '/', guest: '/' }] } } });
      const r = await routed(s, `/${svc}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${api.token}` }, body });
      expect([502, 503], name).toContain(r.status);
      await r.arrayBuffer();
      expect((await api.get('functions', fnName)).status).toBe(404);
    }
  });

  it('refuses a jwksFile outside the grants with 422 that quotes nothing of the file, and a jwksUri to its own API', async () => {
    const f = await api.create('routes', route('jwks-file', '/jwks-file', 'whatever', { filters: [{ jwt: { issuer: 'x', jwksFile: join(outside, 'jwks.json') } }] }));
    expect(f.status).toBe(422);
    expect(f.body.message).toContain('spec.http[0].filters[0].jwt.jwksFile');
    expect(f.body.message).toContain('--allow-host-dir');
    expect(f.text).not.toContain(SECRET);
    const rootLevel = await api.create('routes', { ...route('jwks-etc', '/jwks-etc', 'whatever'), spec: { filters: [{ jwt: { issuer: 'x', jwksFile: '/etc/passwd' } }], http: [{ route: [{ destination: { service: 'whatever' } }] }] } });
    expect(rootLevel.status).toBe(422);
    expect(rootLevel.body.message).toContain('spec.filters[0].jwt.jwksFile');
    expect(rootLevel.text).not.toContain('root:');
    const u = await api.create('routes', route('jwks-uri', '/jwks-uri', 'whatever', { filters: [{ jwt: { issuer: 'x', jwksUri: `${s.api}/apis` } }] }));
    expect(u.status).toBe(422);
    expect(u.body.message).toContain('spec.http[0].filters[0].jwt.jwksUri');
  });

  it('logs why the connection was refused', async () => {
    expect(await s.stop()).toBe(0);
    expect(s.stderr()).toMatch(/upstream connection refused: .*one of Skiff's own listeners/);
  });
});

describe('a server with --allow-upstream 127.0.0.0/8 and a granted directory', () => {
  let s: RunningSkiff;
  let api: ReturnType<typeof client>;
  const servers: Server[] = [];
  let upstreamCa: InternalCA;
  let plainPort = 0;
  beforeAll(async () => {
    const plain = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('plain upstream');
    });
    servers.push(plain);
    plainPort = await listen(plain);
    upstreamCa = await InternalCA.create('upstream.test');
    writeFileSync(join(granted, 'upstream-ca.pem'), upstreamCa.certPem);
    const clientCert = await upstreamCa.issue(spiffeId('upstream.test', 'default', 'client'));
    writeFileSync(join(granted, 'client.pem'), clientCert.certPem);
    writeFileSync(join(granted, 'client-key.pem'), clientCert.keyPem);
    s = await startSkiff({ demo: true, args: ['--allow-upstream', '127.0.0.0/8', '--allow-host-dir', granted] });
    api = client(s);
  }, 30_000);
  afterAll(async () => {
    await s?.stop();
    for (const srv of servers) {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  });

  /** startTls starts an HTTPS upstream that asks for (and records) a client certificate. */
  async function startTls(cert: { certPem: string; keyPem: string }, opts: { ca?: string; require?: boolean } = {}): Promise<{ port: number; peers: string[] }> {
    const peers: string[] = [];
    const srv = createHttpsServer({ cert: cert.certPem, key: cert.keyPem, ca: opts.ca, requestCert: true, rejectUnauthorized: opts.require === true }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      peers.push(peer && Object.keys(peer).length ? (peer.subjectaltname ?? 'certificate without SAN') : 'none');
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('tls upstream');
    });
    servers.push(srv);
    return { port: await listen(srv), peers };
  }

  it('proxies to an allowed loopback server but still refuses its own API and gateway ports', async () => {
    expect((await api.create('services', service('plain', { endpoints: [{ address: '127.0.0.1', port: plainPort }] }))).status).toBe(201);
    expect((await api.create('routes', route('plain', '/plain', 'plain'))).status).toBe(201);
    const r = await routed(s, '/plain');
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('plain upstream');
    for (const [i, port] of [portOf(s.api), portOf(s.gateway)].entries()) {
      const refused = await api.create('services', service(`own-${i}`, { endpoints: [{ address: '127.0.0.1', port }] }));
      expect(refused.status).toBe(422);
      expect(refused.body.message).toContain("Skiff's own listeners");
    }
    const [name] = await loopbackNames();
    expect((await api.create('services', service('own-by-name', { endpoints: [{ address: name!, port: portOf(s.api) }] }))).status).toBe(201);
    expect((await api.create('routes', route('own-by-name', '/own-by-name', 'own-by-name', { rewrite: { uri: '/apis/skiff.dev/v1/namespaces/default/functions' } }))).status).toBe(201);
    const body = JSON.stringify({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'smuggled-allowed' }, spec: { module: '/tmp/x.wasm' } });
    const smuggle = await routed(s, '/own-by-name', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${api.token}` }, body });
    expect([502, 503]).toContain(smuggle.status);
    expect((await api.get('functions', 'smuggled-allowed')).status).toBe(404);
  });

  it('SIMPLE TLS verifies with caFile from a granted directory and presents no client certificate', async () => {
    const up = await startTls(await upstreamCa.issue(spiffeId('upstream.test', 'default', 'server'), { dnsNames: ['localhost'] }));
    const ok = await api.create('services', service('simple', { endpoints: [{ address: '127.0.0.1', port: up.port }], tls: { mode: 'SIMPLE', sni: 'localhost', caFile: join(granted, 'upstream-ca.pem') } }));
    expect(ok.status).toBe(201);
    expect((await api.create('routes', route('simple', '/simple', 'simple'))).status).toBe(201);
    const r = await routed(s, '/simple');
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('tls upstream');
    expect(up.peers).toEqual(['none']);
    // Without the CA the system trust store applies, which does not know this server.
    expect((await api.create('services', service('simple-system', { endpoints: [{ address: '127.0.0.1', port: up.port }], tls: { mode: 'SIMPLE', sni: 'localhost' } }))).status).toBe(201);
    expect((await api.create('routes', route('simple-system', '/untrusted-simple', 'simple-system'))).status).toBe(201);
    const untrusted = await routed(s, '/untrusted-simple');
    expect([502, 503]).toContain(untrusted.status);
    expect(up.peers).toEqual(['none']);
  });

  it('MUTUAL presents the client certificate from files; ISTIO_MUTUAL presents the node identity', async () => {
    const mutual = await startTls(await upstreamCa.issue(spiffeId('upstream.test', 'default', 'server'), { dnsNames: ['localhost'] }), { ca: upstreamCa.certPem, require: true });
    const tls = { mode: 'MUTUAL', sni: 'localhost', caCertificates: join(granted, 'upstream-ca.pem'), clientCertificate: join(granted, 'client.pem'), privateKey: join(granted, 'client-key.pem') };
    expect((await api.create('services', service('mutual', { endpoints: [{ address: '127.0.0.1', port: mutual.port }], tls }))).status).toBe(201);
    expect((await api.create('routes', route('mutual', '/mutual', 'mutual'))).status).toBe(201);
    const r = await routed(s, '/mutual');
    expect(r.status).toBe(200);
    expect(mutual.peers[0]).toContain('URI:spiffe://upstream.test/ns/default/fn/client');

    // Without --mesh the node makes its identity only for the first ISTIO_MUTUAL connection, from the
    // CA its first start created in the data directory (it signed the API's certificate).
    expect(existsSync(join(s.dataDir, 'ca', 'ca.crt'))).toBe(true);
    const nodeCa = await InternalCA.loadOrCreate({ trustDomain: 'skiff.local', dir: join(s.dataDir, 'ca') });
    const mesh = await startTls(await nodeCa.issue(spiffeId('skiff.local', 'default', 'peer')), { ca: nodeCa.certPem, require: true });
    expect((await api.create('services', service('mesh', { endpoints: [{ address: '127.0.0.1', port: mesh.port }], tls: { mode: 'ISTIO_MUTUAL' } }))).status).toBe(201);
    expect((await api.create('routes', route('mesh', '/mesh', 'mesh'))).status).toBe(201);
    const m = await routed(s, '/mesh');
    expect(m.status).toBe(200);
    expect(mesh.peers[0]).toMatch(/URI:spiffe:\/\/skiff\.local\/ns\/skiff-system\/node\//);
  });

  it('refuses TLS files outside the grants, and MUTUAL without its files, with 422', async () => {
    const ca = await api.create('services', service('ca-outside', { endpoints: [{ address: '127.0.0.1', port: plainPort }], tls: { mode: 'SIMPLE', caFile: '/etc/ssl/private/key.pem' } }));
    expect(ca.status).toBe(422);
    expect(ca.body.message).toContain('spec.tls.caFile');
    expect(ca.body.message).toContain('--allow-host-dir');
    const bare = await api.create('services', service('mutual-bare', { endpoints: [{ address: '127.0.0.1', port: plainPort }], tls: { mode: 'MUTUAL' } }));
    expect(bare.status).toBe(422);
    expect(bare.body.message).toContain('ISTIO_MUTUAL');
  });

  it('reports a granted file that is not a JWKS document without quoting it', async () => {
    const r = await api.create('routes', route('jwks-bad', '/jwks-bad', 'plain', { filters: [{ jwt: { issuer: 'x', jwksFile: join(granted, 'not-jwks.txt') } }] }));
    expect(r.status).toBe(201);
    const cond = (await waitFor(async () => {
      const got = await api.get('routes', 'jwks-bad');
      const c = got.body.status?.conditions?.find((x: any) => x.type === 'Ready');
      return c?.status === 'False' ? { c, text: got.text } : undefined;
    }, 'the route reported not ready', 15_000))!;
    expect(cond.c.message).toContain('is not valid JSON');
    expect(cond.text).not.toContain(SECRET);
    expect(cond.text).not.toContain('root:x');
    const events = await api.get('events');
    expect(events.text).not.toContain(SECRET);
  });
});
