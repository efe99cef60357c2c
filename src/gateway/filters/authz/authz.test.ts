import { pino } from 'pino';
import { describe, expect, it } from 'vitest';

import { fakeCtx, fakeEnv, run } from '../../../../test/gateway/filter-kit.js';
import type { Authorizer } from '../../types.js';

import { authzFilter } from './index.js';

class FakeAuthorizer implements Authorizer {
  inputs: any[] = [];
  policies: Array<string | undefined> = [];
  constructor(private readonly decide: (input: any) => any) {}
  timeouts: Array<number | undefined> = [];
  async check(input: object, options?: { policy?: string; timeoutMs?: number }) {
    this.inputs.push(input);
    this.policies.push(options?.policy);
    this.timeouts.push(options?.timeoutMs);
    return this.decide(input);
  }
}

describe('authz filter', () => {
  it('sends an Envoy ext_authz shaped input and allows', async () => {
    const a = new FakeAuthorizer(() => ({ allowed: true, headers: { 'x-authz': 'ok' } }));
    const ctx = fakeCtx({ method: 'POST', path: '/v1/users/a%20b', rawQuery: 'x=1&x=2&y=3', headers: { 'x-h': 'v', cookie: ['a', 'b'] }, claims: { sub: 'alice' }, peerIdentity: 'spiffe://skiff.local/ns/default/fn/caller' });
    const r = await run(authzFilter, { policy: 'data.envoy.authz.allow' }, ctx, fakeEnv({ authorizer: a }));
    expect(r.passed).toBe(true);
    expect(ctx.headers['x-authz']).toBe('ok');
    expect(a.policies).toEqual(['data.envoy.authz.allow']);
    const input = a.inputs[0];
    expect(input.attributes.request.http).toMatchObject({ method: 'POST', path: '/v1/users/a%20b?x=1&x=2&y=3', host: 'example.com', headers: { 'x-h': 'v', cookie: 'a,b' } });
    expect(input.parsed_path).toEqual(['v1', 'users', 'a b']);
    expect(input.parsed_query).toEqual({ x: ['1', '2'], y: ['3'] });
    expect(input.attributes.source.principal).toBe('spiffe://skiff.local/ns/default/fn/caller');
    expect(input.attributes.metadataContext.filterMetadata['envoy.filters.http.jwt_authn'].jwt_payload).toEqual({ sub: 'alice' });
  });

  it('denies with 403 by default, or with the decision status and body', async () => {
    const deny = fakeCtx();
    await run(authzFilter, {}, deny, fakeEnv({ authorizer: new FakeAuthorizer(() => ({ allowed: false })) }));
    expect(deny.response?.status).toBe(403);
    const custom = fakeCtx();
    const r = await run(authzFilter, {}, custom, fakeEnv({ authorizer: new FakeAuthorizer(() => ({ allowed: false, status: 401, body: 'log in\n', headers: { 'www-authenticate': 'Bearer' } })) }));
    expect(r.passed).toBe(false);
    expect(custom.response).toMatchObject({ status: 401, body: 'log in\n', headers: { 'www-authenticate': 'Bearer' } });
  });

  it('fails closed unless failOpen when the authorizer throws', async () => {
    const broken = new FakeAuthorizer(() => {
      throw new Error('engine down');
    });
    const closed = fakeCtx();
    expect((await run(authzFilter, {}, closed, fakeEnv({ authorizer: broken }))).passed).toBe(false);
    expect(closed.response?.status).toBe(403);
    expect((await run(authzFilter, { failOpen: true }, fakeCtx(), fakeEnv({ authorizer: broken }))).passed).toBe(true);
  });

  it('caches decisions by request identity for the ttl', async () => {
    const a = new FakeAuthorizer((input) => ({ allowed: input.attributes.request.http.method === 'GET' }));
    const env = fakeEnv({ authorizer: a });
    const h = authzFilter.create({ cache: { ttl: '10s' } }, env);
    const go = async (method: string, path: string) => {
      let ok = false;
      await h(fakeCtx({ method, path }), async () => void (ok = true));
      return ok;
    };
    expect(await go('GET', '/a')).toBe(true);
    expect(await go('GET', '/a')).toBe(true);
    expect(await go('DELETE', '/a')).toBe(false);
    expect(await go('DELETE', '/a')).toBe(false);
    expect(a.inputs).toHaveLength(2);
    env.clock.t += 11_000;
    expect(await go('GET', '/a')).toBe(true);
    expect(a.inputs).toHaveLength(3);
  });

  it('gives each decision a deadline: 20ms by default, configurable up to 1s', async () => {
    const a = new FakeAuthorizer(() => ({ allowed: true }));
    await run(authzFilter, {}, fakeCtx(), fakeEnv({ authorizer: a }));
    await run(authzFilter, { policy: 'data.x.allow', timeout: '150ms' }, fakeCtx(), fakeEnv({ authorizer: a }));
    expect(a.timeouts).toEqual([20, 150]);
    expect(authzFilter.validate({ timeout: '2s' }, 'f')).toEqual([expect.objectContaining({ field: 'f.timeout', message: expect.stringMatching(/at most 1000ms/) })]);
    expect(authzFilter.validate({ timeout: '0s' }, 'f')).toHaveLength(1);
    expect(authzFilter.validate({ timeout: 'soon' }, 'f')).toEqual([expect.objectContaining({ field: 'f.timeout' })]);
  });

  it('denies a decision past its deadline, even with failOpen, with one log line', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const late = new FakeAuthorizer(() => {
      throw Object.assign(new Error('evaluation exceeded its deadline'), { code: 'eval_cancel_error' });
    });
    const ctx = fakeCtx();
    const r = await run(authzFilter, { policy: 'data.slow.allow', failOpen: true, timeout: '30ms' }, ctx, fakeEnv({ authorizer: late, logger, where: 'default/slow spec.filters[0]' }));
    expect(r.passed).toBe(false);
    expect(ctx.response?.status).toBe(403);
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ level: 40, route: 'default/slow spec.filters[0]', policy: 'data.slow.allow', deadlineMs: 30 });
    expect(typeof line.elapsedMs).toBe('number');
    expect(line.msg).toMatch(/authz deadline exceeded after [\d.]+ms \(deadline 30ms\): request denied/);
  });

  it('denies a policy in back-off at once and leaves the logging to the authorizer', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const off = new FakeAuthorizer(() => {
      throw Object.assign(new Error('in back-off'), { code: 'policy_backoff' });
    });
    const ctx = fakeCtx();
    expect((await run(authzFilter, { failOpen: true }, ctx, fakeEnv({ authorizer: off, logger }))).passed).toBe(false);
    expect(ctx.response?.status).toBe(403);
    expect(lines).toEqual([]);
  });

  it('refuses to start without an authorizer', () => {
    expect(() => authzFilter.create({}, fakeEnv())).toThrow(/authorizer/);
  });
});
