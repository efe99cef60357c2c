/**
 * KEDA-style event triggers of a Function's spec.scale: the cron schedule and the metrics-api
 * reader. The autoscaler controller turns what they return into a recommendation.
 */
export { parseCron, cronDesired, type CronSchedule, type CronTriggerMetadata, type CronDesired } from './cron.js';
export { readMetricsApi, guardedFetchJson, parseValueLocation, valueAt, type FetchJson, type GuardedFetchOptions, type MetricsApiMetadata } from './metrics-api.js';
export { CronError, TriggerError, type CronField } from './errors.js';
