import { describe, expect, it } from 'vitest';
import { fakeCtx } from '../../test/gateway/filter-kit.js';
import { compose } from './compose.js';
import type { Handler } from './context.js';

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

  it('turns a synchronous throw into a rejection', async () => {
    const bad = (() => {
      throw new Error('sync');
    }) as unknown as Handler;
    await expect(compose([bad])(fakeCtx())).rejects.toThrow('sync');
  });
});
