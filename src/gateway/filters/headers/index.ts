import type { FieldError } from '../../../api/kinds/types.js';
import type { GatewayContext, Handler, OutgoingHeaders } from '../../context.js';
import { invalid, isObj } from '../../router/values.js';
import type { FilterModule } from '../types.js';

/** HeaderOperations follows Istio: `set` replaces, `add` appends, `remove` deletes. */
export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

/** HeadersConfig edits request headers before the destination and response headers after it. */
export interface HeadersConfig {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

type HeaderBag = Record<string, string | string[] | undefined>;
type Edit = (h: HeaderBag) => void;

function checkOps(ops: unknown, field: string, errors: FieldError[]): void {
  if (ops === undefined) return;
  if (!isObj(ops)) return void errors.push(invalid(field, 'must be an object with set, add or remove'));
  for (const k of Object.keys(ops)) if (!['set', 'add', 'remove'].includes(k)) errors.push(invalid(`${field}.${k}`, 'unknown field; use set, add or remove'));
  for (const k of ['set', 'add'] as const) {
    const m = ops[k];
    if (m === undefined) continue;
    if (!isObj(m) || Object.values(m).some((v) => typeof v !== 'string')) errors.push(invalid(`${field}.${k}`, 'must map header names to strings'));
  }
  if (ops.remove !== undefined && (!Array.isArray(ops.remove) || ops.remove.some((v) => typeof v !== 'string'))) {
    errors.push(invalid(`${field}.remove`, 'must be a list of header names'));
  }
}

/** compileHeaderOps precomputes one function applying set, add and remove in that order (lower-cased names). */
export function compileHeaderOps(ops: HeaderOperations | undefined): Edit | undefined {
  if (!ops) return undefined;
  const set = Object.entries(ops.set ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const);
  const add = Object.entries(ops.add ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const);
  const remove = (ops.remove ?? []).map((k) => k.toLowerCase());
  if (set.length + add.length + remove.length === 0) return undefined;
  return (h) => {
    for (const [k, v] of set) h[k] = v;
    for (const [k, v] of add) {
      const cur = h[k];
      h[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
    }
    for (const k of remove) delete h[k];
  };
}

/** validateHeaders checks a HeadersConfig and returns every problem. */
export function validateHeaders(config: unknown, field: string): FieldError[] {
  const errors: FieldError[] = [];
  if (!isObj(config)) return [invalid(field, 'must be an object with request or response')];
  for (const k of Object.keys(config)) if (k !== 'request' && k !== 'response') errors.push(invalid(`${field}.${k}`, 'unknown field; use request or response'));
  checkOps(config.request, `${field}.request`, errors);
  checkOps(config.response, `${field}.response`, errors);
  return errors;
}

/** headersFilter adds, sets and removes request and response headers. */
export const headersFilter: FilterModule<HeadersConfig> = {
  name: 'headers',
  validate: validateHeaders,
  create(config) {
    const req = compileHeaderOps(config.request);
    const res = compileHeaderOps(config.response);
    const resEdit = res ? (h: OutgoingHeaders) => res(h as HeaderBag) : undefined;
    const handler: Handler = async function headers(ctx: GatewayContext, next) {
      if (req) req(ctx.headers);
      if (resEdit) ctx.responseHeaderEdits.push(resEdit);
      return next();
    };
    return handler;
  },
};
