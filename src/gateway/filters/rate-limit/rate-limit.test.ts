import { describe, expect, it } from 'vitest';

import { fakeCtx, fakeEnv } from '../../../../test/gateway/filter-kit.js';

import { rateLimitFilter } from './index.js';

describe('rateLimit filter', () => {
  const setup = (config: Record<string, unknown>) => {
    const env = fakeEnv();
    expect(rateLimitFilter.validate(config, 'f')).toEqual([]);
    const h = rateLimitFilter.create(config as never, env);
    const hit = async (over: Parameters<typeof fakeCtx>[0] = {}) => {
      const ctx = fakeCtx(over);
      let ok = false;
      await h(ctx, async () => void (ok = true));
      const headers: Record<string, unknown> = {};
      for (const e of ctx.responseHeaderEdits) e(headers as never, ctx);
      return { ok, ctx, headers };
    };
    return { env, hit };
  };

  it('allows maxTokens then answers 429 with Retry-After and RateLimit headers, then refills', async () => {
    const { env, hit } = setup({ maxTokens: 3, fillInterval: '10s' });
    const first = await hit();
    expect(first.headers).toMatchObject({ 'ratelimit-limit': '3', 'ratelimit-remaining': '2', 'ratelimit-policy': '3;w=10' });
    await hit();
    await hit();
    const denied = await hit();
    expect(denied.ok).toBe(false);
    expect(denied.ctx.response?.status).toBe(429);
    expect(denied.ctx.response?.headers).toMatchObject({ 'retry-after': '10', 'ratelimit-remaining': '0' });
    env.clock.t += 4000;
    expect((await hit()).ctx.response?.headers['retry-after']).toBe('6');
    env.clock.t += 6000;
    expect((await hit()).ok).toBe(true);
  });

  it('keeps separate buckets per client address, header or claim', async () => {
    const byAddr = setup({ maxTokens: 1, fillInterval: '1m' });
    expect((await byAddr.hit({ remoteAddress: '10.0.0.1' })).ok).toBe(true);
    expect((await byAddr.hit({ remoteAddress: '10.0.0.1' })).ok).toBe(false);
    expect((await byAddr.hit({ remoteAddress: '10.0.0.2' })).ok).toBe(true);
    const byHeader = setup({ maxTokens: 1, fillInterval: '1m', key: { header: 'X-Api-Key' } });
    expect((await byHeader.hit({ headers: { 'x-api-key': 'a' } })).ok).toBe(true);
    expect((await byHeader.hit({ headers: { 'x-api-key': 'b' } })).ok).toBe(true);
    expect((await byHeader.hit({ headers: { 'x-api-key': 'a' } })).ok).toBe(false);
    const byClaim = setup({ maxTokens: 1, fillInterval: '1m', key: { claim: 'sub' } });
    expect((await byClaim.hit({ claims: { sub: 'alice' } })).ok).toBe(true);
    expect((await byClaim.hit({ claims: { sub: 'bob' } })).ok).toBe(true);
    expect((await byClaim.hit({ claims: { sub: 'alice' } })).ok).toBe(false);
  });

  it('bounds the number of buckets it keeps', async () => {
    const { env, hit } = setup({ maxTokens: 2, fillInterval: '1s', maxKeys: 10 });
    for (let i = 0; i < 100; i++) await hit({ remoteAddress: `10.0.0.${i}` });
    const buckets = [...env.carry.values()][0] as Map<string, unknown>;
    expect(buckets.size).toBeLessThanOrEqual(10);
  });

  it('validates with field paths', () => {
    expect(rateLimitFilter.validate({ maxTokens: 0, key: { header: 'a', claim: 'b' } }, 'r').map((e) => e.field)).toEqual(['r.maxTokens', 'r.fillInterval', 'r.key']);
  });
});
