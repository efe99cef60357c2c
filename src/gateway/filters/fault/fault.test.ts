import { describe, expect, it } from 'vitest';

import { fakeCtx, run } from '../../../../test/gateway/filter-kit.js';

import { faultFilter } from './index.js';

describe('fault filter', () => {
  it('aborts every request at 100%', async () => {
    const ctx = fakeCtx();
    const r = await run(faultFilter, { abort: { httpStatus: 503, percentage: { value: 100 } } }, ctx);
    expect(r.passed).toBe(false);
    expect(ctx.response?.status).toBe(503);
  });

  it('never aborts at 0% and delays when asked', async () => {
    const t0 = Date.now();
    const r = await run(faultFilter, { delay: { fixedDelay: '80ms' }, abort: { httpStatus: 500, percentage: { value: 0 } } }, fakeCtx());
    expect(r.passed).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(70);
  });

  it('aborts roughly the configured share', async () => {
    let aborted = 0;
    const h = faultFilter.create({ abort: { httpStatus: 500, percentage: { value: 30 } } }, undefined as never);
    for (let i = 0; i < 1000; i++) {
      const ctx = fakeCtx();
      await h(ctx, async () => undefined);
      if (ctx.response) aborted++;
    }
    expect(aborted).toBeGreaterThan(220);
    expect(aborted).toBeLessThan(380);
  });

  it('validates with field paths', () => {
    expect(faultFilter.validate({ delay: { fixedDelay: 'x' }, abort: { httpStatus: 99, percentage: { value: 200 } } }, 'f').map((e) => e.field)).toEqual(['f.delay.fixedDelay', 'f.abort.httpStatus', 'f.abort.percentage.value']);
  });
});
