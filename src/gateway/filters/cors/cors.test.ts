import { describe, expect, it } from 'vitest';

import { fakeCtx, run } from '../../../../test/gateway/filter-kit.js';

import { corsFilter } from './index.js';

const config = { allowOrigins: [{ exact: 'https://app.test' }, { regex: 'https://.*\\.dev\\.test' }], allowMethods: ['GET', 'POST'], allowHeaders: ['authorization'], exposeHeaders: ['x-total'], maxAge: '10m', allowCredentials: true };

describe('cors filter', () => {
  it('answers a preflight from an allowed origin itself', async () => {
    const ctx = fakeCtx({ method: 'OPTIONS', headers: { origin: 'https://a.dev.test', 'access-control-request-method': 'POST' } });
    const r = await run(corsFilter, config, ctx);
    expect(r.passed).toBe(false);
    expect(ctx.response?.status).toBe(200);
    expect(ctx.response?.headers).toMatchObject({ 'access-control-allow-origin': 'https://a.dev.test', 'access-control-allow-methods': 'GET,POST', 'access-control-allow-headers': 'authorization', 'access-control-max-age': '600', 'access-control-allow-credentials': 'true' });
  });

  it('adds headers to actual requests from allowed origins only', async () => {
    const ok = await run(corsFilter, config, fakeCtx({ headers: { origin: 'https://app.test' } }));
    expect(ok.passed).toBe(true);
    expect(ok.responseHeaders).toMatchObject({ 'access-control-allow-origin': 'https://app.test', 'access-control-expose-headers': 'x-total', vary: 'origin' });
    const other = await run(corsFilter, config, fakeCtx({ method: 'OPTIONS', headers: { origin: 'https://evil.test', 'access-control-request-method': 'GET' } }));
    expect(other.passed).toBe(true);
    expect(other.responseHeaders).toEqual({});
  });

  it('reports a bad origin regex with its path', () => {
    expect(corsFilter.validate({ allowOrigins: [{ regex: '(' }] }, 'spec.http[0].corsPolicy').map((e) => e.field)).toEqual(['spec.http[0].corsPolicy.allowOrigins[0].regex']);
  });
});
