import type { FieldError } from '../../../api/kinds/types.js';
import type { Handler, OutgoingHeaders } from '../../context.js';
import { compileStringMatch, durationField, invalid, isObj, type StringMatch, type StringMatcher } from '../../router/values.js';
import type { FilterModule } from '../types.js';

/** CorsConfig follows Istio's CorsPolicy. */
export interface CorsConfig {
  allowOrigins: StringMatch[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: string;
  allowCredentials?: boolean;
}

interface Compiled {
  origins: StringMatcher[];
  methods?: string;
  headers?: string;
  expose?: string;
  maxAge?: string;
  credentials: boolean;
}

function compile(config: unknown, field: string, errors: FieldError[]): Compiled {
  const out: Compiled = { origins: [], credentials: false };
  if (!isObj(config)) {
    errors.push(invalid(field, 'must be an object with allowOrigins'));
    return out;
  }
  const origins = config.allowOrigins;
  if (!Array.isArray(origins)) errors.push(invalid(`${field}.allowOrigins`, 'must be a list of string matches ({ exact | prefix | regex })'));
  else
    origins.forEach((o, i) => {
      const m = compileStringMatch(o, `${field}.allowOrigins[${i}]`, errors);
      if (m) out.origins.push(m);
    });
  const list = (k: string): string | undefined => {
    const v = config[k];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
      errors.push(invalid(`${field}.${k}`, 'must be a list of strings'));
      return undefined;
    }
    return v.join(',');
  };
  out.methods = list('allowMethods');
  out.headers = list('allowHeaders');
  out.expose = list('exposeHeaders');
  const maxAge = durationField(config.maxAge, `${field}.maxAge`, errors);
  if (maxAge !== undefined) out.maxAge = String(Math.floor(maxAge / 1000));
  if (config.allowCredentials !== undefined && typeof config.allowCredentials !== 'boolean') errors.push(invalid(`${field}.allowCredentials`, 'must be a boolean'));
  out.credentials = config.allowCredentials === true;
  return out;
}

/**
 * corsFilter answers preflight requests from allowed origins itself and adds the CORS response
 * headers to actual requests; requests from other origins pass through untouched (browsers block them).
 */
export const corsFilter: FilterModule<CorsConfig> = {
  name: 'cors',
  validate(config, field) {
    const errors: FieldError[] = [];
    compile(config, field, errors);
    return errors;
  },
  create(config) {
    const c = compile(config, '', []);
    const allowed = (origin: string) => c.origins.some((m) => m(origin));
    const handler: Handler = async function cors(ctx, next) {
      const origin = ctx.headers.origin;
      if (typeof origin !== 'string' || !allowed(origin)) return next();
      if (ctx.method === 'OPTIONS' && ctx.headers['access-control-request-method'] !== undefined) {
        const h: OutgoingHeaders = { 'access-control-allow-origin': origin, vary: 'origin' };
        if (c.methods) h['access-control-allow-methods'] = c.methods;
        if (c.headers) h['access-control-allow-headers'] = c.headers;
        if (c.maxAge) h['access-control-max-age'] = c.maxAge;
        if (c.credentials) h['access-control-allow-credentials'] = 'true';
        ctx.response = { status: 200, headers: h, body: '' };
        return;
      }
      ctx.responseHeaderEdits.push((h) => {
        h['access-control-allow-origin'] = origin;
        if (c.credentials) h['access-control-allow-credentials'] = 'true';
        if (c.expose) h['access-control-expose-headers'] = c.expose;
        const vary = h.vary;
        h.vary = vary ? `${vary}, origin` : 'origin';
      });
      return next();
    };
    return handler;
  },
};
