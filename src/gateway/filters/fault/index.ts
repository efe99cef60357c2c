import { setTimeout as sleep } from 'node:timers/promises';

import type { FieldError } from '../../../api/kinds/types.js';
import type { Handler } from '../../context.js';
import { durationField, invalid, isObj, percentageField } from '../../router/values.js';
import type { FilterModule } from '../types.js';

/** FaultConfig follows Istio's HTTPFaultInjection: a delay and/or an abort, each for a percentage of requests. */
export interface FaultConfig {
  delay?: { fixedDelay: string; percentage?: { value: number } };
  abort?: { httpStatus: number; percentage?: { value: number } };
}

interface Compiled {
  delayMs?: number;
  delayPct: number;
  abortStatus?: number;
  abortPct: number;
}

function compile(config: unknown, field: string, errors: FieldError[]): Compiled {
  const out: Compiled = { delayPct: 0, abortPct: 0 };
  if (!isObj(config)) {
    errors.push(invalid(field, 'must be an object with delay or abort'));
    return out;
  }
  if (config.delay !== undefined) {
    const d = isObj(config.delay) ? config.delay : {};
    out.delayMs = durationField(d.fixedDelay, `${field}.delay.fixedDelay`, errors);
    if (d.fixedDelay === undefined) errors.push({ field: `${field}.delay.fixedDelay`, message: 'a duration is required', reason: 'FieldValueRequired' });
    out.delayPct = percentageField(d.percentage, `${field}.delay.percentage`, errors);
  }
  if (config.abort !== undefined) {
    const a = isObj(config.abort) ? config.abort : {};
    if (typeof a.httpStatus !== 'number' || a.httpStatus < 200 || a.httpStatus > 599) errors.push(invalid(`${field}.abort.httpStatus`, 'must be an HTTP status from 200 to 599'));
    else out.abortStatus = a.httpStatus;
    out.abortPct = percentageField(a.percentage, `${field}.abort.percentage`, errors);
  }
  return out;
}

/** faultFilter injects delays and aborts for a share of requests, to test how callers cope. */
export const faultFilter: FilterModule<FaultConfig> = {
  name: 'fault',
  validate(config, field) {
    const errors: FieldError[] = [];
    compile(config, field, errors);
    return errors;
  },
  create(config) {
    const c = compile(config, '', []);
    const handler: Handler = async function fault(ctx, next) {
      if (c.delayMs !== undefined && Math.random() * 100 < c.delayPct) {
        await sleep(c.delayMs, undefined, { signal: ctx.signal }).catch(() => undefined);
      }
      if (c.abortStatus !== undefined && Math.random() * 100 < c.abortPct) {
        ctx.response = { status: c.abortStatus, headers: { 'content-type': 'text/plain' }, body: 'fault filter abort\n' };
        return;
      }
      return next();
    };
    return handler;
  },
};
