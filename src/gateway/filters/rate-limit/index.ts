import type { FieldError } from '../../../api/kinds/types.js';
import type { GatewayContext, Handler } from '../../context.js';
import { durationField, invalid, isObj } from '../../router/values.js';
import type { FilterModule } from '../types.js';

/**
 * RateLimitConfig is a token bucket per key, like Envoy's local rate limit: `maxTokens` in the bucket,
 * `tokensPerFill` added every `fillInterval`. The key is the client address (default), a header or a
 * JWT claim; requests without the header or claim fall back to the client address.
 */
export interface RateLimitConfig {
  maxTokens: number;
  tokensPerFill?: number;
  fillInterval: string;
  key?: { remoteAddress?: true; header?: string; claim?: string };
  /** Add RateLimit-* headers to every response, not only to 429s (default true). */
  headers?: boolean;
  maxKeys?: number;
}

interface Bucket {
  tokens: number;
  lastFill: number;
}

function check(config: unknown, field: string): FieldError[] {
  const errors: FieldError[] = [];
  if (!isObj(config)) return [invalid(field, 'must be an object with maxTokens and fillInterval')];
  const pos = (k: string, required: boolean) => {
    const v = config[k];
    if (v === undefined && !required) return;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) errors.push(invalid(`${field}.${k}`, 'must be a positive integer'));
  };
  pos('maxTokens', true);
  pos('tokensPerFill', false);
  pos('maxKeys', false);
  if (config.fillInterval === undefined) errors.push({ field: `${field}.fillInterval`, message: 'is required', reason: 'FieldValueRequired' });
  const ms = durationField(config.fillInterval, `${field}.fillInterval`, errors);
  if (ms !== undefined && ms < 1) errors.push(invalid(`${field}.fillInterval`, 'must be at least 1ms'));
  if (config.key !== undefined) {
    const k = isObj(config.key) ? config.key : {};
    const set = ['remoteAddress', 'header', 'claim'].filter((x) => k[x] !== undefined);
    if (set.length !== 1) errors.push(invalid(`${field}.key`, 'must set exactly one of remoteAddress, header or claim'));
    if (k.header !== undefined && typeof k.header !== 'string') errors.push(invalid(`${field}.key.header`, 'must be a header name'));
    if (k.claim !== undefined && typeof k.claim !== 'string') errors.push(invalid(`${field}.key.claim`, 'must be a claim name'));
  }
  return errors;
}

/**
 * rateLimitFilter answers 429 with `Retry-After` and the IETF draft `RateLimit-*` headers once a key's
 * bucket is empty. Buckets survive configuration updates of the same route.
 */
export const rateLimitFilter: FilterModule<RateLimitConfig> = {
  name: 'rateLimit',
  validate: check,
  create(config, env) {
    const max = config.maxTokens;
    const perFill = config.tokensPerFill ?? max;
    const interval = durationField(config.fillInterval, '', [])!;
    const maxKeys = config.maxKeys ?? 100_000;
    const withHeaders = config.headers !== false;
    const policy = `${max};w=${Math.max(1, Math.ceil(interval / 1000))}`;
    const carryKey = `buckets ${max} ${perFill} ${interval}`;
    const buckets = (env.carry.get(carryKey) as Map<string, Bucket> | undefined) ?? new Map<string, Bucket>();
    env.carry.set(carryKey, buckets);
    const header = config.key?.header?.toLowerCase();
    const claim = config.key?.claim;
    const keyOf = (ctx: GatewayContext): string => {
      if (header) {
        const v = ctx.headers[header];
        if (typeof v === 'string') return `h:${v}`;
      } else if (claim) {
        const v = ctx.claims?.[claim];
        if (v !== undefined) return `c:${String(v)}`;
      }
      return `a:${ctx.remoteAddress}`;
    };
    const evict = (now: number) => {
      // Full buckets carry no information (a new bucket starts full), so drop those first, then the
      // oldest. Evicting down to 90% keeps sweeps rare even when every request brings a new key.
      const target = Math.floor(maxKeys * 0.9);
      for (const [k, b] of buckets) if (b.tokens + Math.floor((now - b.lastFill) / interval) * perFill >= max) buckets.delete(k);
      for (const k of buckets.keys()) {
        if (buckets.size <= target) break;
        buckets.delete(k);
      }
    };

    const handler: Handler = async function rateLimit(ctx, next) {
      const now = env.now();
      const key = keyOf(ctx);
      let b = buckets.get(key);
      if (!b) {
        if (buckets.size >= maxKeys) evict(now);
        b = { tokens: max, lastFill: now };
        buckets.set(key, b);
      } else if (now - b.lastFill >= interval) {
        const fills = Math.floor((now - b.lastFill) / interval);
        b.tokens = Math.min(max, b.tokens + fills * perFill);
        b.lastFill += fills * interval;
      }
      const resetS = Math.max(1, Math.ceil((b.lastFill + interval - now) / 1000));
      if (b.tokens < 1) {
        ctx.response = {
          status: 429,
          headers: { 'content-type': 'text/plain', 'retry-after': String(resetS), 'ratelimit-limit': String(max), 'ratelimit-remaining': '0', 'ratelimit-reset': String(resetS), 'ratelimit-policy': policy },
          body: 'too many requests\n',
        };
        return;
      }
      b.tokens--;
      if (withHeaders) {
        const remaining = String(b.tokens);
        ctx.responseHeaderEdits.push((h) => {
          h['ratelimit-limit'] = String(max);
          h['ratelimit-remaining'] = remaining;
          h['ratelimit-reset'] = String(resetS);
          h['ratelimit-policy'] = policy;
        });
      }
      return next();
    };
    return handler;
  },
};
