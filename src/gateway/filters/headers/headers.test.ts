import { describe, expect, it } from 'vitest';

import { fakeCtx, run } from '../../../../test/gateway/filter-kit.js';

import { headersFilter } from './index.js';

describe('headers filter', () => {
  it('sets, adds and removes request and response headers', async () => {
    const ctx = fakeCtx({ headers: { 'x-a': 'old', 'x-b': 'one', 'x-drop': 'secret' } });
    const r = await run(headersFilter, { request: { set: { 'X-A': 'new' }, add: { 'x-b': 'two' }, remove: ['X-Drop'] }, response: { set: { 'x-served-by': 'skiff' }, remove: ['server'] } }, ctx);
    expect(r.passed).toBe(true);
    expect(ctx.headers).toEqual({ 'x-a': 'new', 'x-b': ['one', 'two'] });
    const out: Record<string, string> = { server: 'upstream' };
    for (const e of ctx.responseHeaderEdits) e(out, ctx);
    expect(out).toEqual({ 'x-served-by': 'skiff' });
  });

  it('validates with field paths', () => {
    expect(headersFilter.validate({ request: { set: { a: 1 }, put: {} }, other: 1 }, 'h').map((e) => e.field)).toEqual(['h.other', 'h.request.put', 'h.request.set']);
  });
});
