import { SkiffError } from '../util/errors.js';

import type { Dispatch, GatewayContext, Handler } from './context.js';

const DONE: Promise<void> = Promise.resolve();
const nothing: Dispatch = () => undefined;

/**
 * compose chains filters Koa-style, ending in the rule's dispatch: each filter receives `next` to run
 * the rest and may act after it settles. `next` always returns a promise, also when the dispatch
 * answered at once. Calling `next()` twice from one filter is a bug (it would run the upstream
 * twice), so it rejects instead.
 *
 * @example
 * const run = compose([logFilter, authFilter], dispatch);
 * await run(ctx);
 */
export function compose(handlers: readonly Handler[], terminal: Dispatch = nothing): (ctx: GatewayContext) => Promise<void> {
  const n = handlers.length;
  return function composed(ctx) {
    let index = -1;
    const step = (i: number): Promise<void> => {
      if (i <= index) return Promise.reject(new SkiffError('next_called_twice', `filter #${index} called next() more than once`));
      index = i;
      try {
        if (i === n) return terminal(ctx) ?? DONE;
        return handlers[i]!(ctx, () => step(i + 1));
      } catch (err) {
        return Promise.reject(err);
      }
    };
    return step(0);
  };
}
