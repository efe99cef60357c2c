import { describe, expect, it } from 'vitest';

import { fakeCtx, run } from '../../../../test/gateway/filter-kit.js';

import { timeoutFilter } from './index.js';

describe('timeout filter', () => {
  it('sets the deadline from a duration string or object', async () => {
    const a = fakeCtx();
    await run(timeoutFilter, '1.5s', a);
    expect(a.timeoutMs).toBe(1500);
    const b = fakeCtx();
    await run(timeoutFilter, { timeout: '250ms' }, b);
    expect(b.timeoutMs).toBe(250);
  });

  it('refuses malformed durations', () => {
    expect(timeoutFilter.validate('soon', 'spec.http[0].timeout')).toEqual([expect.objectContaining({ field: 'spec.http[0].timeout' })]);
  });
});
