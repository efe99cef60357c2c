import { describe, expect, it } from 'vitest';

import { fakeCtx } from '../../test/gateway/filter-kit.js';

import { compose } from './compose.js';
import type { Dispatch, Handler } from './context.js';

describe('compose', () => {
  it('runs handlers in order, unwinding after next()', async () => {
    const log: string[] = [];
    const mk = (n: string): Handler => async (_c, next) => {
      log.push(`>${n}`);
      await next();
      log.push(`<${n}`);
    };
    await compose([mk('a'), mk('b'), mk('c')])(fakeCtx());
    expect(log).toEqual(['>a', '>b', '>c', '<c', '<b', '<a']);
  });

  it('stops when a handler does not call next()', async () => {
    let reached = false;
    await compose([async () => undefined, async () => void (reached = true)])(fakeCtx());
    expect(reached).toBe(false);
  });

  it('refuses a second next() from the same handler', async () => {
    let downstream = 0;
    const twice: Handler = async (_c, next) => {
      await next();
      await next();
    };
    await expect(compose([twice, async () => void downstream++])(fakeCtx())).rejects.toMatchObject({ code: 'next_called_twice' });
    expect(downstream).toBe(1);
  });

  it('ends in the dispatch, and hands filters a promise even when the dispatch answered at once', async () => {
    const log: string[] = [];
    let fromNext: unknown;
    const filter: Handler = async (_c, next) => {
      fromNext = next();
      await fromNext;
      log.push('after');
    };
    const dispatch: Dispatch = (ctx) => {
      log.push('dispatch');
      ctx.response = { status: 204, headers: {}, body: '' };
      return undefined;
    };
    const ctx = fakeCtx();
    const run = compose([filter], dispatch)(ctx);
    expect(run).toBeInstanceOf(Promise);
    await run;
    expect(fromNext).toBeInstanceOf(Promise);
    expect(log).toEqual(['dispatch', 'after']);
    expect(ctx.response?.status).toBe(204);
  });

  it('passes an answer that comes later through next()', async () => {
    let settled = false;
    const dispatch: Dispatch = () => new Promise<void>((r) => setTimeout(r, 10)).then(() => void (settled = true));
    await compose([async (_c, next) => next()], dispatch)(fakeCtx());
    expect(settled).toBe(true);
  });

  it('turns a dispatch that throws into a rejection', async () => {
    const dispatch = (() => {
      throw new Error('dispatch bug');
    }) as Dispatch;
    await expect(compose([async (_c, next) => next()], dispatch)(fakeCtx())).rejects.toThrow('dispatch bug');
  });

  it('turns a synchronous throw into a rejection', async () => {
    const bad = (() => {
      throw new Error('sync');
    }) as unknown as Handler;
    await expect(compose([bad])(fakeCtx())).rejects.toThrow('sync');
  });
});
