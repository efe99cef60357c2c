import type { FieldError } from '../../../api/kinds/types.js';
import type { Handler, RetryPolicy } from '../../context.js';
import { durationField, invalid, isObj } from '../../router/values.js';
import type { FilterModule } from '../types.js';

/** RetryConfig follows Istio's HTTPRetry: attempts, perTryTimeout and a comma-separated retryOn. */
export interface RetryConfig {
  attempts: number;
  perTryTimeout?: string;
  retryOn?: string;
  retriableStatusCodes?: number[];
  /** Backoff base and cap (Envoy defaults: 25ms and 10 times the base). */
  backoff?: { baseInterval?: string; maxInterval?: string };
}

const CONDITIONS = new Set(['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-status-codes', 'refused-stream']);

/** compileRetry validates a retry configuration and builds the policy the dispatcher follows. */
export function compileRetry(config: unknown, field: string, errors: FieldError[]): RetryPolicy | undefined {
  if (!isObj(config)) {
    errors.push(invalid(field, 'must be an object with attempts'));
    return undefined;
  }
  const attempts = config.attempts;
  if (typeof attempts !== 'number' || !Number.isInteger(attempts) || attempts < 0 || attempts > 10) {
    errors.push(invalid(`${field}.attempts`, 'must be an integer from 0 to 10'));
  }
  const perTry = durationField(config.perTryTimeout, `${field}.perTryTimeout`, errors);
  const retryOn = config.retryOn ?? '5xx,connect-failure,reset';
  const conds = new Set<string>();
  if (typeof retryOn !== 'string') errors.push(invalid(`${field}.retryOn`, 'must be a comma-separated string'));
  else
    for (const c of retryOn.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (!CONDITIONS.has(c)) errors.push(invalid(`${field}.retryOn`, `unknown condition '${c}'; known: ${[...CONDITIONS].join(', ')}`));
      conds.add(c);
    }
  const codes = config.retriableStatusCodes ?? [];
  if (!Array.isArray(codes) || codes.some((c) => typeof c !== 'number' || c < 100 || c > 599)) {
    errors.push(invalid(`${field}.retriableStatusCodes`, 'must be a list of HTTP status codes'));
  }
  const backoff = isObj(config.backoff) ? config.backoff : {};
  const base = durationField(backoff.baseInterval, `${field}.backoff.baseInterval`, errors) ?? 25;
  const max = durationField(backoff.maxInterval, `${field}.backoff.maxInterval`, errors) ?? base * 10;
  if (typeof attempts !== 'number') return undefined;
  return {
    attempts,
    perTryTimeoutMs: perTry,
    on5xx: conds.has('5xx'),
    onGatewayError: conds.has('gateway-error') || conds.has('5xx'),
    onReset: conds.has('reset') || conds.has('refused-stream'),
    onConnectFailure: conds.has('connect-failure'),
    retriableStatusCodes: new Set(conds.has('retriable-status-codes') && Array.isArray(codes) ? (codes as number[]) : []),
    baseIntervalMs: base,
    maxIntervalMs: max,
  };
}

/** retryFilter hands its policy to the dispatcher, which retries within the upstream's retry budget. */
export const retryFilter: FilterModule<RetryConfig> = {
  name: 'retry',
  validate(config, field) {
    const errors: FieldError[] = [];
    compileRetry(config, field, errors);
    return errors;
  },
  create(config) {
    const policy = compileRetry(config, '', [])!;
    const handler: Handler = async function retry(ctx, next) {
      ctx.retry = policy;
      return next();
    };
    return handler;
  },
};

/** backoffMs is Envoy's fully jittered exponential backoff for retry number `n` (1-based). */
export function backoffMs(policy: RetryPolicy, n: number, random = Math.random): number {
  const ceiling = Math.min(policy.maxIntervalMs, policy.baseIntervalMs * 2 ** (n - 1));
  return random() * ceiling;
}
