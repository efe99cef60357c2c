import type { JSONWebKeySet,JWTPayload, JWTVerifyGetKey } from 'jose';

import type { FieldError } from '../../../api/kinds/types.js';
import type { Handler } from '../../context.js';
import { durationField, invalid, isObj } from '../../router/values.js';
import { guardedFetch } from '../../upstream/connector.js';
import type { FilterModule } from '../types.js';

import { fileKeySet, inlineKeySet, loadJose, MAX_JWKS_BYTES,remoteKeySet } from './keys.js';

/**
 * JwtConfig follows Istio's RequestAuthentication (issuer, audiences, jwksUri, fromHeaders,
 * fromParams, outputClaimToHeaders, forwardOriginalToken) plus `jwks` inline, `jwksFile`,
 * `clockSkew` and `allowMissing` (let requests without a token through, as Istio does by default).
 */
export interface JwtConfig {
  issuer?: string;
  audiences?: string[];
  jwks?: JSONWebKeySet;
  jwksFile?: string;
  jwksUri?: string;
  jwksCacheDuration?: string;
  clockSkew?: string;
  algorithms?: string[];
  fromHeaders?: Array<{ name: string; prefix?: string }>;
  fromParams?: string[];
  outputClaimToHeaders?: Array<{ header: string; claim: string }>;
  forwardOriginalToken?: boolean;
  allowMissing?: boolean;
}

function check(config: unknown, field: string): FieldError[] {
  const errors: FieldError[] = [];
  if (!isObj(config)) return [invalid(field, 'must be an object with issuer and one of jwks, jwksFile or jwksUri')];
  const sources = ['jwks', 'jwksFile', 'jwksUri'].filter((k) => config[k] !== undefined);
  if (sources.length !== 1) errors.push(invalid(field, 'must set exactly one of jwks, jwksFile or jwksUri'));
  if (config.jwks !== undefined && (!isObj(config.jwks) || !Array.isArray(config.jwks.keys))) errors.push(invalid(`${field}.jwks`, 'must be a JWKS document with a keys array'));
  if (config.jwksUri !== undefined) {
    try {
      const u = new URL(String(config.jwksUri));
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('scheme');
    } catch {
      errors.push(invalid(`${field}.jwksUri`, 'must be an http(s) URL'));
    }
  }
  if (config.jwksFile !== undefined && typeof config.jwksFile !== 'string') errors.push(invalid(`${field}.jwksFile`, 'must be a file path'));
  if (config.issuer !== undefined && typeof config.issuer !== 'string') errors.push(invalid(`${field}.issuer`, 'must be a string'));
  if (config.audiences !== undefined && (!Array.isArray(config.audiences) || config.audiences.some((a) => typeof a !== 'string'))) errors.push(invalid(`${field}.audiences`, 'must be a list of strings'));
  durationField(config.clockSkew, `${field}.clockSkew`, errors);
  durationField(config.jwksCacheDuration, `${field}.jwksCacheDuration`, errors);
  const pairs = (k: string, a: string, b: string) => {
    const v = config[k];
    if (v === undefined) return;
    if (!Array.isArray(v) || v.some((x) => !isObj(x) || typeof x[a] !== 'string' || (x[b] !== undefined && typeof x[b] !== 'string'))) errors.push(invalid(`${field}.${k}`, `must be a list of { ${a}, ${b} }`));
  };
  pairs('fromHeaders', 'name', 'prefix');
  pairs('outputClaimToHeaders', 'header', 'claim');
  if (config.fromParams !== undefined && (!Array.isArray(config.fromParams) || config.fromParams.some((x) => typeof x !== 'string'))) errors.push(invalid(`${field}.fromParams`, 'must be a list of query parameter names'));
  return errors;
}

const UNAUTHORIZED = { status: 401, headers: { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="skiff", error="invalid_token"' }, body: 'unauthorized\n' };
const MISSING = { status: 401, headers: { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="skiff"' }, body: 'unauthorized\n' };

function claimValue(payload: JWTPayload, path: string): string | undefined {
  let v: unknown = payload;
  for (const part of path.split('.')) v = isObj(v) ? v[part] : undefined;
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
}

/**
 * jwtFilter verifies a bearer JWT with `jose` (signature against the JWKS, issuer, audience, expiry
 * with clock skew) and copies claims to headers. Failures answer 401 without saying why; the reason
 * goes to the debug log. Verified tokens are cached until they expire (at most a minute) because a
 * signature check costs far more than the rest of the chain.
 */
export const jwtFilter: FilterModule<JwtConfig> = {
  name: 'jwt',
  validate: check,
  create(config, env) {
    // jose is loaded when the first JWT filter is configured (not with the gateway); start now so the
    // first request does not wait for it. A failure surfaces on that request.
    loadJose().catch(() => undefined);
    let keys: JWTVerifyGetKey;
    if (config.jwks) keys = inlineKeySet(config.jwks);
    else if (config.jwksFile) keys = fileKeySet(config.jwksFile, env.hostDirs, `${env.field ?? 'jwt'}.jwksFile`);
    else {
      const cacheMs = durationField(config.jwksCacheDuration, '', []) ?? 300_000;
      const carryKey = `jwks ${config.jwksUri} ${cacheMs}`;
      const fetchImpl = guardedFetch({ upstreams: env.upstreams, maxBytes: MAX_JWKS_BYTES, timeoutMs: 5000, logger: env.logger, where: `${env.where}.jwksUri` });
      keys = (env.carry.get(carryKey) as JWTVerifyGetKey | undefined) ?? remoteKeySet(config.jwksUri!, cacheMs, 30_000, fetchImpl);
      env.carry.set(carryKey, keys);
    }
    const skewS = (durationField(config.clockSkew, '', []) ?? 60_000) / 1000;
    const options = { issuer: config.issuer, audience: config.audiences, clockTolerance: skewS, algorithms: config.algorithms };
    const fromHeaders = (config.fromHeaders ?? (config.fromParams ? [] : [{ name: 'authorization', prefix: 'Bearer ' }])).map((h) => ({ name: h.name.toLowerCase(), prefix: h.prefix ?? '' }));
    const fromParams = config.fromParams ?? [];
    const outputs = (config.outputClaimToHeaders ?? []).map((o) => ({ header: o.header.toLowerCase(), claim: o.claim }));
    const forward = config.forwardOriginalToken === true;
    const allowMissing = config.allowMissing === true;
    const cache = new Map<string, { payload: JWTPayload; until: number }>();
    const maxCache = 10_000;

    const extract = (ctx: Parameters<Handler>[0]): { token: string; header?: string } | undefined => {
      for (const h of fromHeaders) {
        const v = ctx.headers[h.name];
        if (typeof v !== 'string') continue;
        if (h.prefix === '') return { token: v.trim(), header: h.name };
        if (v.length > h.prefix.length && v.slice(0, h.prefix.length).toLowerCase() === h.prefix.toLowerCase()) return { token: v.slice(h.prefix.length).trim(), header: h.name };
      }
      if (fromParams.length > 0 && ctx.rawQuery) {
        const q = new URLSearchParams(ctx.rawQuery);
        for (const p of fromParams) {
          const v = q.get(p);
          if (v) return { token: v };
        }
      }
      return undefined;
    };

    const handler: Handler = async function jwt(ctx, next) {
      // Claim headers are ours to set: a client must not be able to send them pre-filled.
      for (const o of outputs) delete ctx.headers[o.header];
      const found = extract(ctx);
      if (!found) {
        if (allowMissing) return next();
        ctx.response = { ...MISSING, headers: { ...MISSING.headers } };
        return;
      }
      const now = env.now();
      let payload: JWTPayload | undefined;
      const hit = cache.get(found.token);
      if (hit && hit.until > now) payload = hit.payload;
      else {
        try {
          payload = (await (await loadJose()).jwtVerify(found.token, keys, options)).payload;
        } catch (err) {
          env.logger.debug({ where: env.where, requestId: ctx.requestId, reason: (err as { code?: string }).code ?? (err as Error).message }, 'jwt rejected');
          ctx.response = { ...UNAUTHORIZED, headers: { ...UNAUTHORIZED.headers } };
          return;
        }
        const exp = typeof payload.exp === 'number' ? payload.exp * 1000 + skewS * 1000 : Infinity;
        if (cache.size >= maxCache) cache.delete(cache.keys().next().value!);
        cache.set(found.token, { payload, until: Math.min(exp, now + 60_000) });
      }
      ctx.claims = payload as Record<string, unknown>;
      ctx.state.jwtToken = found.token;
      for (const o of outputs) {
        const v = claimValue(payload, o.claim);
        if (v !== undefined) ctx.headers[o.header] = v;
      }
      if (!forward && found.header) delete ctx.headers[found.header];
      return next();
    };
    return handler;
  },
};
