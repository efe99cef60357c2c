import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { compileService, routeGrantProblems, serviceGrantProblems } from '../../src/gateway/index.js';
import { HostDirs, UpstreamGuard } from '../../src/security/index.js';

import { route, service, startGateway, startUpstream, type TestGateway, type Upstream } from './helpers.js';

let t: TestGateway | undefined;
let ups: Upstream[] = [];
afterEach(async () => {
  await t?.close();
  await Promise.all(ups.map((u) => u.close()));
  t = undefined;
  ups = [];
});

async function upstream(): Promise<Upstream> {
  const up = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('up');
  });
  ups.push(up);
  return up;
}

const to = (name: string, extra: Record<string, unknown> = {}) => route(name, { http: [{ route: [{ destination: { service: name } }], ...extra }] });

describe('upstream connections go through the operator grants', () => {
  it('refuses loopback under the strict guard with 503 for requests and retries', async () => {
    const up = await upstream();
    t = await startGateway([to('s', { retries: { attempts: 2, retryOn: 'connect-failure' } })], [service('s', { endpoints: [{ address: '127.0.0.1', port: up.port }] })], { upstreams: UpstreamGuard.from([]) });
    const r = await fetch(`${t.url}/`);
    expect(r.status).toBe(503);
    expect(await r.text()).toBe('upstream connect error\n');
    expect(up.hits).toBe(0);
  });

  it('refuses a name that resolves to loopback at connect time', async () => {
    const up = await upstream();
    t = await startGateway([to('s')], [service('s', { endpoints: [{ address: 'localhost', port: up.port }] })], { upstreams: UpstreamGuard.from([]) });
    expect((await fetch(`${t.url}/`)).status).toBe(503);
    expect(up.hits).toBe(0);
  });

  it('allows exactly what --allow-upstream HOST:PORT names, and mirrors only there', async () => {
    const main = await upstream();
    const shadow = await upstream();
    t = await startGateway(
      [route('r', { http: [{ mirror: { service: 'shadow' }, route: [{ destination: { service: 'main' } }] }] })],
      [service('main', { endpoints: [{ address: '127.0.0.1', port: main.port }] }), service('shadow', { endpoints: [{ address: '127.0.0.1', port: shadow.port }] })],
      { upstreams: UpstreamGuard.from([`127.0.0.1:${main.port}`]) },
    );
    for (let i = 0; i < 3; i++) expect((await fetch(`${t.url}/`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    expect(main.hits).toBe(3);
    expect(shadow.hits).toBe(0);
  });

  it('never connects to its own listener, even with a permissive guard', async () => {
    t = await startGateway([to('self')], [], {});
    t.gw.update({ routes: [to('self')], services: [service('self', { endpoints: [{ address: '127.0.0.1', port: t.port }] })] });
    const r = await fetch(`${t.url}/`);
    expect(r.status).toBe(503);
  });
});

describe('Service TLS settings', () => {
  const tls = (t: Record<string, unknown>) => compileService(service('s', { endpoints: [{ address: 'a.example', port: 443 }], tls: t }));

  it('accepts each mode with the fields it uses', () => {
    expect(tls({ mode: 'SIMPLE' }).service?.tls).toEqual({ mode: 'SIMPLE', servername: undefined, caFile: undefined, clientCertificate: undefined, privateKey: undefined });
    expect(tls({ mode: 'SIMPLE', caCertificates: '/ca.pem', sni: 'a' }).service?.tls).toMatchObject({ caFile: '/ca.pem', servername: 'a' });
    expect(tls({ mode: 'MUTUAL', clientCertificate: '/c.pem', privateKey: '/k.pem' }).service?.tls?.mode).toBe('MUTUAL');
    expect(tls({ mode: 'ISTIO_MUTUAL' }).service?.tls?.mode).toBe('ISTIO_MUTUAL');
    expect(tls({ mode: 'DISABLE' }).service?.tls).toBeUndefined();
  });

  it('refuses fields a mode would ignore, so nothing is silently dropped', () => {
    const fields = (t: Record<string, unknown>) => tls(t).errors.map((e) => e.field);
    expect(fields({ mode: 'MUTUAL' })).toEqual(['spec.tls.clientCertificate', 'spec.tls.privateKey']);
    expect(fields({ mode: 'SIMPLE', clientCertificate: '/c.pem' })).toEqual(['spec.tls.clientCertificate']);
    expect(fields({ mode: 'ISTIO_MUTUAL', caFile: '/ca.pem' })).toEqual(['spec.tls.caFile']);
    expect(fields({ mode: 'SIMPLE', caFile: 'relative.pem' })).toEqual(['spec.tls.caFile']);
    expect(fields({ mode: 'SIMPLE', caFile: '/a', caCertificates: '/b' })).toEqual(['spec.tls.caCertificates']);
    expect(fields({ mode: 'SIMPLE', insecureSkipVerify: true })).toEqual(['spec.tls.insecureSkipVerify']);
    expect(fields({ mode: 'PLAIN' })).toEqual(['spec.tls.mode']);
  });
});

describe('admission checks of Services and Routes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-gw-grants-'));
  writeFileSync(join(dir, 'ca.pem'), 'x');
  const grants = { upstreams: UpstreamGuard.from(['10.0.0.0/8']), hostDirs: HostDirs.from([dir]) };

  it('names refused endpoint literals and TLS files outside the grants', () => {
    const svc = service('s', { endpoints: [{ address: '10.1.2.3', port: 80 }, { address: 'localhost', port: 80 }, { address: 'db.internal', port: 5432 }, { address: '169.254.169.254', port: 80 }], tls: { mode: 'SIMPLE', caFile: '/etc/ssl/ca.pem' } });
    const problems = serviceGrantProblems(svc, grants);
    expect(problems.map((p) => p.field)).toEqual(['spec.endpoints[1].address', 'spec.endpoints[3].address', 'spec.tls.caFile']);
    expect(problems[0]!.message).toContain('--allow-upstream');
    expect(problems[2]!.message).toContain('--allow-host-dir');
    expect(serviceGrantProblems(service('ok', { endpoints: [{ address: '10.1.2.3', port: 80 }], tls: { mode: 'SIMPLE', caFile: join(dir, 'ca.pem') } }), grants)).toEqual([]);
  });

  it('names JWT filters whose jwksFile or jwksUri the grants refuse, once per declaration', () => {
    const r = route('r', {
      filters: [{ jwt: { issuer: 'x', jwksFile: '/etc/passwd' } }],
      http: [
        { route: [{ destination: { service: 's' } }] },
        { filters: [{ jwt: { issuer: 'x', jwksUri: 'http://[::1]:9/keys' } }], route: [{ destination: { service: 's' } }] },
        { filters: [{ jwt: { issuer: 'x', jwksFile: join(dir, 'ca.pem') } }], route: [{ destination: { service: 's' } }] },
      ],
    });
    expect(routeGrantProblems(r, grants).map((p) => p.field)).toEqual(['spec.filters[0].jwt.jwksFile', 'spec.http[1].filters[0].jwt.jwksUri']);
  });
});
