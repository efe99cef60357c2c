import { SkiffError } from '../../util/errors.js';

/** The five fields of a cron expression, as errors name them. */
export type CronField = 'minute' | 'hour' | 'day-of-month' | 'month' | 'day-of-week' | 'expression' | 'timezone';

/**
 * CronError: a cron expression or time zone that cannot be used. `field` names the part at fault;
 * codes: `cron_field_count`, `cron_syntax`, `cron_range`, `cron_time_zone`.
 */
export class CronError extends SkiffError {
  constructor(
    code: 'cron_field_count' | 'cron_syntax' | 'cron_range' | 'cron_time_zone',
    readonly field: CronField,
    message: string,
  ) {
    super(code, message);
  }
}

/**
 * TriggerError: a trigger's settings are wrong or its source answered something unusable. `field`
 * names the metadata key at fault when there is one (`valueLocation`, `desiredReplicas`). Codes:
 * `trigger_metadata`, `trigger_timeout`, `trigger_fetch`, `trigger_too_large`, `trigger_bad_json`,
 * `trigger_value`.
 */
export class TriggerError extends SkiffError {
  constructor(
    code: 'trigger_metadata' | 'trigger_timeout' | 'trigger_fetch' | 'trigger_too_large' | 'trigger_bad_json' | 'trigger_value',
    message: string,
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}
