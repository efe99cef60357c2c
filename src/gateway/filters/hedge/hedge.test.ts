import { describe, expect, it } from 'vitest';

import { fakeCtx, run } from '../../../../test/gateway/filter-kit.js';

import { hedgeFilter } from './index.js';

describe('hedge filter', () => {
  it('uses the observed p95 unless a fixed delay is given', async () => {
    const a = fakeCtx();
    await run(hedgeFilter, { delay: 'p95' }, a);
    expect(a.hedge).toEqual({ delayMs: undefined, minDelayMs: 5 });
    const b = fakeCtx();
    await run(hedgeFilter, { delay: '20ms', minDelay: '1ms' }, b);
    expect(b.hedge).toEqual({ delayMs: 20, minDelayMs: 1 });
  });

  it('refuses a malformed delay', () => {
    expect(hedgeFilter.validate({ delay: 'whenever' }, 'h').map((e) => e.field)).toEqual(['h.delay']);
  });
});
