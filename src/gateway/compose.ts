import type { GatewayContext, Handler, Next } from './context.js';
import { SkiffError } from '../util/errors.js';

/**
 * compose chains handlers Koa-style: each receives `next` to run the rest and may act after it
 * returns. Calling `next()` twice from one handler is a bug (it would run the upstream twice), so it
 * rejects instead.
 *
 * @example
 * const run = compose([logFilter, authFilter, dispatch]);
 * await run(ctx);
 */
export function compose(handlers: readonly Handler[]): (ctx: GatewayContext, last?: Next) => Promise<void> | void {
  const n = handlers.length;
  // A chain of one (the usual empty filter list plus the dispatcher) needs no bookkeeping.
  if (n === 1) {
    const only = handlers[0]!;
    const end = () => Promise.resolve();
    return function composed(ctx, last) {
      try {
        return only(ctx, last ?? end);
      } catch (err) {
        return Promise.reject(err);
      }
    };
  }
  return function composed(ctx, last) {
    let index = -1;
    const dispatch = (i: number): Promise<void> | void => {
      if (i <= index) return Promise.reject(new SkiffError('next_called_twice', `filter #${index} called next() more than once`));
      index = i;
      if (i === n) return last ? last() : Promise.resolve();
      try {
        return handlers[i]!(ctx, () => dispatch(i + 1));
      } catch (err) {
        return Promise.reject(err);
      }
    };
    return dispatch(0);
  };
}
