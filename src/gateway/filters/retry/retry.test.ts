import { describe, expect, it } from 'vitest';

import { fakeCtx, run } from '../../../../test/gateway/filter-kit.js';

import { backoffMs, compileRetry, retryFilter } from './index.js';

describe('retry filter', () => {
  it('hands a compiled policy to the dispatcher', async () => {
    const ctx = fakeCtx();
    await run(retryFilter, { attempts: 3, perTryTimeout: '200ms', retryOn: 'gateway-error,retriable-status-codes', retriableStatusCodes: [409] }, ctx);
    expect(ctx.retry).toMatchObject({ attempts: 3, perTryTimeoutMs: 200, on5xx: false, onGatewayError: true, onConnectFailure: false });
    expect([...ctx.retry!.retriableStatusCodes]).toEqual([409]);
  });

  it('backs off exponentially with full jitter under a cap', () => {
    const p = compileRetry({ attempts: 5, backoff: { baseInterval: '10ms', maxInterval: '50ms' } }, 'r', [])!;
    expect(backoffMs(p, 1, () => 0.999)).toBeCloseTo(9.99);
    expect(backoffMs(p, 3, () => 0.999)).toBeCloseTo(39.96);
    expect(backoffMs(p, 6, () => 0.999)).toBeCloseTo(49.95);
    expect(backoffMs(p, 2, () => 0)).toBe(0);
  });

  it('refuses unknown conditions', () => {
    expect(retryFilter.validate({ attempts: 2, retryOn: '5xx,whenever' }, 'spec.http[0].retries').map((e) => e.field)).toEqual(['spec.http[0].retries.retryOn']);
  });
});
