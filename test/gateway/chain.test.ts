import { exportJWK, generateKeyPair, type JWK,SignJWT } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { Authorizer } from '../../src/gateway/index.js';

import { route, startGateway, type TestGateway } from './helpers.js';

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

type Key = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
let priv: Key;
let jwk: JWK;
beforeAll(async () => {
  const k = await generateKeyPair('RS256', { extractable: true });
  priv = k.privateKey;
  jwk = { ...(await exportJWK(k.publicKey)), kid: 'main', alg: 'RS256' };
});
const token = (sub: string, role: string) => new SignJWT({ role }).setProtectedHeader({ alg: 'RS256', kid: 'main' }).setSubject(sub).setIssuer('https://id.test').setExpirationTime('5m').sign(priv);

/** A stand-in for the Rego engine: admins may do anything, others only GET. */
const authorizer: Authorizer & { calls: number } = {
  calls: 0,
  async check(input: any) {
    this.calls++;
    const role = input.attributes.metadataContext.filterMetadata?.['envoy.filters.http.jwt_authn']?.jwt_payload?.role;
    return { allowed: role === 'admin' || input.attributes.request.http.method === 'GET' };
  },
};

const chainRoute = route('api', {
  filters: [
    { jwt: { issuer: 'https://id.test', jwks: { keys: [] }, outputClaimToHeaders: [{ header: 'x-user', claim: 'sub' }] } },
    { authz: { policy: 'data.skiff.authz.allow' } },
    { rateLimit: { maxTokens: 3, fillInterval: '1m', key: { claim: 'sub' } } },
  ],
  http: [
    {
      match: [{ uri: { prefix: '/api' } }],
      corsPolicy: { allowOrigins: [{ exact: 'https://app.test' }], allowMethods: ['GET', 'DELETE'] },
      headers: { request: { set: { 'x-via': 'skiff' } }, response: { set: { 'x-chain': 'done' } } },
      route: [{ destination: { function: 'api' } }],
    },
  ],
});

describe('declared filter chain end to end', () => {
  it('runs CORS, JWT, authz and rate limiting in order before the function', async () => {
    (chainRoute.spec.filters[0].jwt as { jwks: { keys: JWK[] } }).jwks.keys = [jwk];
    t = await startGateway([chainRoute], [], { authorizer });
    const alice = await token('alice', 'admin');
    const bob = await token('bob', 'reader');

    const pre = await fetch(`${t.url}/api/x`, { method: 'OPTIONS', headers: { origin: 'https://app.test', 'access-control-request-method': 'DELETE' } });
    expect(pre.status).toBe(200);
    expect(pre.headers.get('access-control-allow-methods')).toBe('GET,DELETE');

    expect((await fetch(`${t.url}/api/x`)).status).toBe(401);
    const expired = await fetch(`${t.url}/api/x`, { headers: { authorization: 'Bearer abc.def.ghi' } });
    expect(expired.status).toBe(401);
    expect(await expired.text()).toBe('unauthorized\n');

    const ok = await fetch(`${t.url}/api/x`, { method: 'DELETE', headers: { authorization: `Bearer ${alice}`, origin: 'https://app.test', 'x-user': 'mallory' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-chain')).toBe('done');
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.test');
    expect(ok.headers.get('ratelimit-remaining')).toBe('2');
    const seen = JSON.parse(await ok.text());
    expect(seen.headers['x-user']).toBe('alice');
    expect(seen.headers['x-via']).toBe('skiff');
    expect(seen.headers.authorization).toBeUndefined();

    expect((await fetch(`${t.url}/api/x`, { method: 'DELETE', headers: { authorization: `Bearer ${bob}` } })).status).toBe(403);
    expect((await fetch(`${t.url}/api/x`, { headers: { authorization: `Bearer ${bob}` } })).status).toBe(200);

    await fetch(`${t.url}/api/x`, { headers: { authorization: `Bearer ${alice}` } });
    await fetch(`${t.url}/api/x`, { headers: { authorization: `Bearer ${alice}` } });
    const limited = await fetch(`${t.url}/api/x`, { headers: { authorization: `Bearer ${alice}` } });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(t.invoker.calls.length).toBe(4);
  });

  it('reports a route with an authz filter as a problem when no authorizer is configured', async () => {
    t = await startGateway([], []);
    const problems = t.gw.update({ routes: [route('a', { filters: [{ authz: {} }], http: [{ route: [{ destination: { function: 'f' } }] }] })], services: [] });
    expect(problems).toEqual([expect.objectContaining({ name: 'a', message: expect.stringContaining('authorizer') })]);
    expect((await fetch(`${t.url}/`)).status).toBe(404);
  });

  it('keeps rate-limit buckets across configuration updates of the same route', async () => {
    const limited = route('rl', { filters: [{ rateLimit: { maxTokens: 1, fillInterval: '1m' } }], http: [{ route: [{ destination: { function: 'f' } }] }] });
    t = await startGateway([limited]);
    expect((await fetch(`${t.url}/`)).status).toBe(200);
    expect(t.gw.update({ routes: [limited], services: [] })).toEqual([]);
    expect((await fetch(`${t.url}/`)).status).toBe(429);
  });

  it('injects faults from the rule', async () => {
    t = await startGateway([route('f', { http: [{ fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }, route: [{ destination: { function: 'f' } }] }] })]);
    expect((await fetch(`${t.url}/`)).status).toBe(418);
    expect(t.invoker.calls).toHaveLength(0);
  });
});
