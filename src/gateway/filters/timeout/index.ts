import type { FieldError } from '../../../api/kinds/types.js';
import type { Handler } from '../../context.js';
import { durationField } from '../../router/values.js';
import type { FilterModule } from '../types.js';

/** TimeoutConfig is the overall time the destination has to answer (`"5s"`), like Istio's `timeout`. */
export type TimeoutConfig = string | number | { timeout: string | number };

function read(config: unknown, field: string, errors: FieldError[]): number | undefined {
  const raw = typeof config === 'object' && config !== null ? (config as { timeout?: unknown }).timeout : config;
  const f = typeof config === 'object' && config !== null ? `${field}.timeout` : field;
  const ms = durationField(raw, f, errors);
  if (raw === undefined) errors.push({ field: f, message: 'a duration is required', reason: 'FieldValueRequired' });
  return ms;
}

/** timeoutFilter sets the overall deadline the dispatcher enforces (504 when it passes). */
export const timeoutFilter: FilterModule<TimeoutConfig> = {
  name: 'timeout',
  validate(config, field) {
    const errors: FieldError[] = [];
    read(config, field, errors);
    return errors;
  },
  create(config) {
    const ms = read(config, '', [])!;
    const handler: Handler = async function timeout(ctx, next) {
      ctx.timeoutMs = ms;
      return next();
    };
    return handler;
  },
};
