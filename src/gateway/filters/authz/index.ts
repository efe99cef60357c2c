import type { FieldError } from '../../../api/kinds/types.js';
import type { GatewayContext, Handler } from '../../context.js';
import { durationField, invalid, isObj } from '../../router/values.js';
import type { AuthzDecision } from '../../types.js';
import type { FilterModule } from '../types.js';

import { buildAuthzInput, IsoClock } from './input.js';

/**
 * AuthzConfig names the policy to ask (`policy`, e.g. `data.envoy.authz.allow`), whether to send the
 * body, what to do when the authorizer fails, and an optional decision cache.
 */
export interface AuthzConfig {
  policy?: string;
  withBody?: boolean;
  /** Let requests through when the authorizer itself fails (Envoy's failure_mode_allow). Default false. */
  failOpen?: boolean;
  /** Status for denials that do not set one (default 403). */
  deniedStatus?: number;
  /**
   * Deadline of one decision (default 20ms, at most 1s). Evaluation runs on the gateway's thread, so
   * this is also the longest one request's policy may hold every other request. A decision past it is
   * denied whatever `failOpen` says.
   */
  timeout?: string;
  /**
   * Cache decisions for `ttl`. The key is the method, path, query, peer identity, the bearer token and
   * the listed headers: list every header the policy reads, or do not cache.
   */
  cache?: { ttl: string; maxEntries?: number; keyHeaders?: string[] };
}

/**
 * DEFAULT_AUTHZ_TIMEOUT_MS is the decision deadline when a filter names none: decisions take
 * microseconds, and while one runs the gateway's thread serves nothing else.
 */
export const DEFAULT_AUTHZ_TIMEOUT_MS = 20;
/** MAX_AUTHZ_TIMEOUT_MS is the longest deadline a filter may ask for. */
export const MAX_AUTHZ_TIMEOUT_MS = 1000;

function check(config: unknown, field: string): FieldError[] {
  const errors: FieldError[] = [];
  if (config === undefined || config === null || config === true) return errors;
  if (!isObj(config)) return [invalid(field, 'must be an object')];
  if (config.policy !== undefined && typeof config.policy !== 'string') errors.push(invalid(`${field}.policy`, 'must be a string'));
  if (config.deniedStatus !== undefined && (typeof config.deniedStatus !== 'number' || config.deniedStatus < 400 || config.deniedStatus > 599)) errors.push(invalid(`${field}.deniedStatus`, 'must be a 4xx or 5xx status'));
  if (config.timeout !== undefined) {
    const ms = durationField(config.timeout, `${field}.timeout`, errors);
    if (ms !== undefined && (ms <= 0 || ms > MAX_AUTHZ_TIMEOUT_MS)) errors.push(invalid(`${field}.timeout`, `must be more than 0 and at most ${MAX_AUTHZ_TIMEOUT_MS}ms: policy evaluation holds the gateway's thread`));
  }
  if (config.cache !== undefined) {
    const c = isObj(config.cache) ? config.cache : {};
    if (c.ttl === undefined) errors.push({ field: `${field}.cache.ttl`, message: 'is required', reason: 'FieldValueRequired' });
    durationField(c.ttl, `${field}.cache.ttl`, errors);
    if (c.keyHeaders !== undefined && (!Array.isArray(c.keyHeaders) || c.keyHeaders.some((h) => typeof h !== 'string'))) errors.push(invalid(`${field}.cache.keyHeaders`, 'must be a list of header names'));
  }
  return errors;
}

/**
 * authzFilter asks the policy engine (through the gateway's Authorizer) whether the request may
 * proceed, with Envoy ext_authz input. Allowed decisions may add upstream headers; denials answer
 * with the decision's status (403 by default), headers and body.
 */
export const authzFilter: FilterModule<AuthzConfig> = {
  name: 'authz',
  validate: check,
  create(config0, env) {
    const config: AuthzConfig = isObj(config0) ? config0 : {};
    const authorizer = env.authorizer;
    if (!authorizer) throw new Error('the authz filter needs a policy engine, and the gateway was started without an authorizer');
    const timeoutMs = Math.min(config.timeout !== undefined ? (durationField(config.timeout, '', []) ?? DEFAULT_AUTHZ_TIMEOUT_MS) : DEFAULT_AUTHZ_TIMEOUT_MS, MAX_AUTHZ_TIMEOUT_MS);
    const options = config.policy ? { policy: config.policy, timeoutMs } : { timeoutMs };
    const denied = config.deniedStatus ?? 403;
    const ttl = config.cache ? durationField(config.cache.ttl, '', [])! : 0;
    const maxEntries = config.cache?.maxEntries ?? 10_000;
    const keyHeaders = (config.cache?.keyHeaders ?? []).map((h) => h.toLowerCase());
    const cache = new Map<string, { d: AuthzDecision; until: number }>();
    const clock = new IsoClock();
    const keyOf = (ctx: GatewayContext) => {
      let k = `${ctx.method}\u0000${ctx.host}\u0000${ctx.path}\u0000${ctx.rawQuery}\u0000${ctx.peerIdentity ?? ''}\u0000${(ctx.state.jwtToken as string | undefined) ?? ''}`;
      for (const h of keyHeaders) k += `\u0000${String(ctx.headers[h] ?? '')}`;
      return k;
    };

    const handler: Handler = async function authz(ctx, next) {
      let decision: AuthzDecision | undefined;
      const key = ttl > 0 ? keyOf(ctx) : '';
      const now = ttl > 0 ? env.now() : 0;
      if (ttl > 0) {
        const hit = cache.get(key);
        if (hit && hit.until > now) decision = hit.d;
      }
      if (!decision) {
        let started = 0;
        try {
          const body = config.withBody ? await ctx.readBody() : undefined;
          started = performance.now();
          decision = await authorizer.check(buildAuthzInput(ctx, body, clock), options);
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          // Past its deadline the decision is denied: were it allowed, a slow policy would be a way in.
          // A policy in back-off was logged once by the authorizer when its back-off began.
          if (code === 'eval_cancel_error') {
            const elapsedMs = Math.round((performance.now() - started) * 10) / 10;
            env.logger.warn({ route: env.where, policy: config.policy ?? '(default)', elapsedMs, deadlineMs: timeoutMs, requestId: ctx.requestId }, `authz deadline exceeded after ${elapsedMs}ms (deadline ${timeoutMs}ms): request denied`);
          } else if (code !== 'policy_backoff') {
            env.logger.warn({ err, where: env.where, requestId: ctx.requestId }, 'authorizer failed');
            if (config.failOpen) return next();
          }
          ctx.response = { status: denied, headers: { 'content-type': 'text/plain' }, body: 'forbidden\n' };
          return;
        }
        if (ttl > 0) {
          if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
          cache.set(key, { d: decision, until: now + ttl });
        }
      }
      if (!decision.allowed) {
        ctx.response = { status: decision.status ?? denied, headers: { 'content-type': 'text/plain', ...decision.headers }, body: decision.body ?? 'forbidden\n' };
        return;
      }
      if (decision.headers) for (const [k, v] of Object.entries(decision.headers)) ctx.headers[k.toLowerCase()] = v;
      return next();
    };
    return handler;
  },
};
