import { createHash, createHmac } from 'node:crypto';

import { fromJSON, isNumber, isObject, ObjectBuilder, objEntries, objGet, type Value } from '../value.js';

import { jsonText } from './encoding.js';
import { obj } from './operands.js';
import { type Builtin,BuiltinError } from './types.js';

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const hmac = (k: Buffer | string, s: string): Buffer => createHmac('sha256', k).update(s).digest();
const NAME = 'providers.aws.sign_req';

function requireKeys(o: Value, keys: string[], pos: number, what: string): void {
  const missing0 = keys.filter((k) => objGet(o as never, k) === undefined);
  if (missing0.length) throw new BuiltinError('eval_type_error', `${NAME}: operand ${pos} missing required ${what} parameters(s): {${missing0.map((k) => JSON.stringify(k)).join(', ')}}`);
  const bad = keys.filter((k) => typeof objGet(o as never, k) !== 'string');
  if (bad.length) throw new BuiltinError('eval_type_error', `${NAME}: operand ${pos} invalid values for required ${what} parameters(s): {${bad.map((k) => JSON.stringify(k)).join(', ')}}`);
}

/** signRequest adds AWS Signature Version 4 headers to a request object. */
function signRequest(req: Value, cfg: Value, timeNs: Value): Value {
  requireKeys(req, ['method', 'url'], 1, 'request');
  requireKeys(cfg, ['aws_access_key', 'aws_region', 'aws_secret_access_key', 'aws_service'], 2, 'AWS config');
  const get = (o: Value, k: string): Value | undefined => objGet(o as never, k);
  const dps = get(cfg, 'disable_payload_signing');
  if (dps !== undefined && typeof dps !== 'boolean') throw new BuiltinError('eval_type_error', `${NAME}: operand 2 invalid value for 'disable_payload_signing' in AWS config`);
  if (!isNumber(timeNs) || Number(timeNs) < 0) throw new BuiltinError('eval_type_error', `${NAME}: operand 3 could not convert time_ns value into a unix timestamp`);
  const date = new Date(Number(BigInt(typeof timeNs === 'object' ? Math.trunc(Number(timeNs)) : timeNs) / 1000000n));
  const amzDate = date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const url = new URL(get(req, 'url') as string);
  const method = get(req, 'method') as string;
  const raw = get(req, 'raw_body');
  const body = get(req, 'body');
  const payload = typeof raw === 'string' ? raw : body !== undefined ? jsonText(body) : '';
  const payloadHash = dps === true ? 'UNSIGNED-PAYLOAD' : sha256(payload);
  const headers = new Map<string, string>();
  const given = get(req, 'headers');
  if (isObject(given)) for (const [k, v] of objEntries(given)) headers.set(String(k).toLowerCase(), String(v));
  headers.set('host', url.host);
  // a caller-supplied content hash is what gets signed (OPA signs the request headers as given)
  const prior = headers.get('x-amz-content-sha256');
  headers.set('x-amz-content-sha256', payloadHash);
  headers.set('x-amz-date', amzDate);
  const token = get(cfg, 'aws_session_token');
  if (typeof token === 'string') headers.set('x-amz-security-token', token);
  const names = [...headers.keys()].sort();
  const query = [...url.searchParams.entries()].map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).sort().join('&');
  const rawPath = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*([^?#]*)/i.exec(get(req, 'url') as string)?.[1] ?? '';
  const canonical = [method, rawPath, query, names.map((n) => `${n}:${n === 'x-amz-content-sha256' && prior !== undefined ? prior : headers.get(n)!.trim()}\n`).join(''), names.join(';'), payloadHash].join('\n');
  const scope = `${day}/${get(cfg, 'aws_region') as string}/${get(cfg, 'aws_service') as string}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let key = hmac('AWS4' + (get(cfg, 'aws_secret_access_key') as string), day);
  key = hmac(key, get(cfg, 'aws_region') as string);
  key = hmac(key, get(cfg, 'aws_service') as string);
  key = hmac(key, 'aws4_request');
  const sig = createHmac('sha256', key).update(toSign).digest('hex');
  const out = new ObjectBuilder();
  for (const [k, v] of objEntries(req as never)) out.set(k, v);
  const h = new ObjectBuilder();
  if (isObject(given)) for (const [k, v] of objEntries(given)) h.set(k, v);
  for (const [k, v] of headers) if (k !== 'x-amz-content-sha256' || !isObject(given) || true) h.set(k, v);
  h.set('Authorization', `AWS4-HMAC-SHA256 Credential=${get(cfg, 'aws_access_key') as string}/${scope},SignedHeaders=${names.join(';')},Signature=${sig}`);
  out.set('headers', h.build());
  return out.build();
}

/** Cloud providers: AWS SigV4 request signing. */
export const register: Record<string, Builtin> = {
  'providers.aws.sign_req': {
    arity: 3,
    fn: (a) => {
      obj(NAME, a, 0);
      obj(NAME, a, 1);
      return signRequest(a[0]!, a[1]!, a[2]!);
    },
  },
};
void fromJSON;
