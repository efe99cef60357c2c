import type { FieldError } from '../../../api/kinds/types.js';
import type { Handler, HedgePolicy } from '../../context.js';
import { durationField, isObj } from '../../router/values.js';
import type { FilterModule } from '../types.js';

/**
 * HedgeConfig: after `delay` (or, when it is absent or `"p95"`, the route's observed p95 latency)
 * a second attempt starts; the first response wins and the other attempt is cancelled.
 */
export interface HedgeConfig {
  delay?: string;
  minDelay?: string;
}

function compile(config: unknown, field: string, errors: FieldError[]): HedgePolicy {
  const c = isObj(config) ? config : {};
  if (config !== undefined && config !== null && config !== true && !isObj(config)) {
    errors.push({ field, message: 'must be an object such as { delay: "p95" }', reason: 'FieldValueInvalid' });
  }
  const delayMs = c.delay === undefined || c.delay === 'p95' ? undefined : durationField(c.delay, `${field}.delay`, errors);
  const minDelayMs = durationField(c.minDelay, `${field}.minDelay`, errors) ?? 5;
  return { delayMs, minDelayMs };
}

/** hedgeFilter hands the hedging policy to the dispatcher (applies to requests without a streamed body). */
export const hedgeFilter: FilterModule<HedgeConfig> = {
  name: 'hedge',
  validate(config, field) {
    const errors: FieldError[] = [];
    compile(config, field, errors);
    return errors;
  },
  create(config) {
    const policy = compile(config, '', []);
    const handler: Handler = async function hedge(ctx, next) {
      ctx.hedge = policy;
      return next();
    };
    return handler;
  },
};
