import { createHmac, createPrivateKey, createPublicKey, type KeyObject,sign as cryptoSign, timingSafeEqual, verify as cryptoVerify, X509Certificate } from 'node:crypto';

import { fromJSON, isNumber, isObject, objEntries, objGet, type PlainObject, toJSON, type Value } from '../value.js';

import { jsonText } from './encoding.js';
import { obj, str } from './operands.js';
import { type Builtin, type BuiltinContext,builtinErr, BuiltinError } from './types.js';

const HASH: Record<string, string> = { 256: 'sha256', 384: 'sha384', 512: 'sha512' };

function b64urlDecode(name: string, part: string, what: string): Buffer {
  const bad = [...part].findIndex((c) => !/[A-Za-z0-9_\-=]/.test(c));
  if (bad >= 0) throw builtinErr(name, `JWT ${what} had invalid encoding: illegal base64 data at input byte ${bad}`);
  return Buffer.from(part.replace(/=+$/, ''), 'base64url');
}

interface Token {
  /** for nested tokens: the enclosing token's signed part */
  outer?: { signingInput: string; sig: Buffer; header: Value };
  header: Value;
  payload: Value;
  sig: Buffer;
  signingInput: string;
  headerRaw: string;
  payloadRaw: Buffer;
}

function parseToken(name: string, tok: string): Token {
  if (!tok.includes('.')) throw builtinErr(name, 'encoded JWT had no period separators');
  const parts = tok.split('.');
  if (parts.length !== 3) throw builtinErr(name, `encoded JWT must have 3 sections, found ${parts.length}`);
  const h = b64urlDecode(name, parts[0]!, 'header');
  let header: Value;
  try {
    header = fromJSON(JSON.parse(h.toString('utf8')));
  } catch {
    throw builtinErr(name, 'JWT header had invalid encoding: not JSON');
  }
  if (isObject(header) && objGet(header, 'enc') !== undefined) throw builtinErr(name, 'JWT is a JWE object, which is not supported');
  const p = b64urlDecode(name, parts[1]!, 'payload');
  const sig = b64urlDecode(name, parts[2]!, 'signature');
  let payload: Value;
  const cty = isObject(header) ? objGet(header, 'cty') : undefined;
  if (typeof cty === 'string' && cty.toUpperCase() === 'JWT') {
    // a nested JWT: the payload is another token (bare, or as a JSON string)
    let inner = p.toString('utf8').trim();
    try {
      const j = JSON.parse(inner) as unknown;
      if (typeof j === 'string') inner = j;
    } catch {
      /* bare token */
    }
    const t = parseToken(name, inner);
    return { ...t, outer: { signingInput: `${parts[0]}.${parts[1]}`, sig, header } };
  }
  try {
    payload = fromJSON(JSON.parse(p.toString('utf8')));
  } catch {
    throw builtinErr(name, 'JWT payload had invalid encoding: not JSON');
  }
  void cty;
  return { header, payload, sig, signingInput: `${parts[0]}.${parts[1]}`, headerRaw: h.toString('utf8'), payloadRaw: p };
}

/** keysFrom reads verification keys from a PEM certificate, PEM public key, or JWK (set). */
function keysFrom(name: string, text: string): KeyObject[] {
  const t = text.trim();
  if (t.startsWith('-----BEGIN CERTIFICATE-----')) {
    const blocks = t.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    const rest = t.replace(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g, '').trim();
    if (!blocks.length) throw builtinErr(name, 'failed to extract a Key from the PEM certificate');
    if (rest) throw builtinErr(name, 'extra data after a PEM certificate block');
    try {
      return blocks.map((b) => new X509Certificate(b).publicKey);
    } catch {
      throw builtinErr(name, 'failed to parse a PEM certificate');
    }
  }
  if (t.startsWith('-----BEGIN')) {
    try {
      return [createPublicKey(t)];
    } catch {
      throw builtinErr(name, 'failed to extract a Key from the PEM certificate');
    }
  }
  try {
    const j = JSON.parse(t) as { keys?: unknown[] };
    const jwks = Array.isArray(j.keys) ? j.keys : [j];
    return jwks.map((k) => createPublicKey({ key: k as never, format: 'jwk' }));
  } catch {
    throw builtinErr(name, 'failed to parse a JWK key (set)');
  }
}

function verifySig(alg: string, signingInput: string, sig: Buffer, key: KeyObject | string): boolean {
  const data = Buffer.from(signingInput);
  const bits = alg.slice(2);
  try {
    if (alg.startsWith('HS')) {
      const mac = createHmac(HASH[bits]!, key as string).update(data).digest();
      return mac.length === sig.length && timingSafeEqual(mac, sig);
    }
    const k = key as KeyObject;
    if (alg.startsWith('RS')) return cryptoVerify(HASH[bits]!, data, k, sig);
    if (alg.startsWith('PS')) return cryptoVerify(HASH[bits]!, data, { key: k, padding: 6, saltLength: Number(bits) / 8 }, sig);
    if (alg.startsWith('ES')) return cryptoVerify(HASH[bits]!, data, { key: k, dsaEncoding: 'ieee-p1363' }, sig);
    if (alg === 'EdDSA') return cryptoVerify(null, data, k, sig);
  } catch {
    return false;
  }
  return false;
}

function verifier(alg: string): Builtin {
  const name = `io.jwt.verify_${alg.toLowerCase()}`;
  return {
    arity: 2,
    fn: (a) => {
      const t = parseToken(name, str(name, a, 0));
      const key = str(name, a, 1);
      if (alg.startsWith('HS')) return verifySig(alg, t.signingInput, t.sig, key);
      const keys = keysFrom(name, key);
      return keys.some((k) => verifySig(alg, t.signingInput, t.sig, k));
    },
  };
}

const ALGS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

function decodeVerify(a: Value[], ctx: BuiltinContext): Value {
  const name = 'io.jwt.decode_verify';
  const invalid: Value = [false, Object.create(null) as PlainObject, Object.create(null) as PlainObject];
  const tok = str(name, a, 0);
  const c = obj(name, a, 1);
  const t = parseToken(name, tok);
  const alg = isObject(t.header) ? objGet(t.header, 'alg') : undefined;
  if (typeof alg !== 'string' || !ALGS.includes(alg)) return invalid;
  // critical header parameters this implementation does not understand make the token invalid
  for (const h of [t.header, t.outer?.header]) if (isObject(h) && objGet(h, 'crit') !== undefined) return invalid;
  let cert: string | undefined;
  let secret: string | undefined;
  let wantAlg: string | undefined;
  let iss: Value | undefined;
  let aud: Value | undefined;
  let time: bigint = ctx.nowNs;
  for (const [k, v] of objEntries(c)) {
    if (k === 'cert') cert = typeof v === 'string' ? v : undefined;
    else if (k === 'secret') secret = typeof v === 'string' ? v : undefined;
    else if (k === 'alg') wantAlg = typeof v === 'string' ? v : undefined;
    else if (k === 'iss') iss = v;
    else if (k === 'aud') aud = v;
    else if (k === 'time') time = isNumber(v) ? BigInt(Math.trunc(Number(v))) : time;
    else throw builtinErr(name, `unknown token validation constraint: ${String(k)}`);
  }
  if (wantAlg && wantAlg !== alg) return invalid;
  let ok = false;
  if (alg.startsWith('HS')) ok = secret !== undefined && verifySig(alg, t.signingInput, t.sig, secret);
  else if (cert !== undefined) ok = keysFrom(name, cert).some((k) => verifySig(alg, t.signingInput, t.sig, k));
  if (ok && t.outer) {
    const oalg = isObject(t.outer.header) ? objGet(t.outer.header, 'alg') : undefined;
    const o = t.outer;
    ok = typeof oalg === 'string' && ALGS.includes(oalg) && (oalg.startsWith('HS') ? secret !== undefined && verifySig(oalg, o.signingInput, o.sig, secret) : cert !== undefined && keysFrom(name, cert).some((k) => verifySig(oalg, o.signingInput, o.sig, k)));
  }
  if (!ok) return invalid;
  const p = t.payload;
  if (!isObject(p)) return invalid;
  const nowSec = Number(time) / 1e9;
  const exp = objGet(p, 'exp');
  if (exp !== undefined) {
    if (!isNumber(exp)) throw builtinErr(name, 'exp value must be a number');
    if (nowSec >= Number(exp)) return invalid;
  }
  const nbf = objGet(p, 'nbf');
  if (nbf !== undefined) {
    if (!isNumber(nbf)) throw builtinErr(name, 'nbf value must be a number');
    if (nowSec < Number(nbf)) return invalid;
  }
  if (iss !== undefined && objGet(p, 'iss') !== iss) return invalid;
  const taud = objGet(p, 'aud');
  if (taud !== undefined) {
    if (aud === undefined) return invalid;
    const list = Array.isArray(taud) ? taud : [taud];
    if (!list.includes(aud)) return invalid;
  } else if (aud !== undefined) return invalid;
  return [true, t.header, p];
}

function signingKey(name: string, alg: string, jwk: Value): KeyObject | Buffer {
  if (!isObject(jwk)) throw builtinErr(name, 'invalid JWK');
  const j = toJSON(jwk) as Record<string, unknown>;
  if (alg.startsWith('HS')) {
    if (typeof j.k !== 'string') throw builtinErr(name, 'invalid JWK: missing k');
    return Buffer.from(j.k, 'base64url');
  }
  try {
    return createPrivateKey({ key: j as never, format: 'jwk' });
  } catch (e) {
    throw builtinErr(name, `invalid JWK: ${(e as Error).message}`);
  }
}

function signRaw(name: string, headerText: string, payloadText: string, jwk: Value): string {
  let header: unknown;
  try {
    if (!headerText) throw new Error('cannot parse JSON: cannot parse empty string');
    header = JSON.parse(headerText);
  } catch (e) {
    const m = (e as Error).message.startsWith('cannot parse') ? (e as Error).message : 'cannot parse JSON';
    if (/^[^{[]/.test(headerText) && headerText) throw builtinErr(name, `missing or invalid 'alg' header: jwsbb: header "alg" not found`);
    throw builtinErr(name, `missing or invalid 'alg' header: ${m}`);
  }
  const alg = (header as { alg?: unknown } | null)?.alg;
  if (typeof alg !== 'string') throw builtinErr(name, `missing or invalid 'alg' header: jwsbb: header "alg" not found`);
  if (!ALGS.includes(alg)) throw builtinErr(name, `unknown JWS algorithm: ${alg}`);
  const typ = (header as { typ?: unknown }).typ;
  if (typ === 'JWT') {
    try {
      JSON.parse(payloadText);
    } catch {
      throw builtinErr(name, 'type is JWT but payload is not JSON');
    }
  }
  const input = `${Buffer.from(headerText).toString('base64url')}.${Buffer.from(payloadText).toString('base64url')}`;
  const key = signingKey(name, alg, jwk);
  const bits = alg.slice(2);
  let sig: Buffer;
  if (alg.startsWith('HS')) sig = createHmac(HASH[bits]!, key as Buffer).update(input).digest();
  else if (alg.startsWith('RS')) sig = cryptoSign(HASH[bits]!, Buffer.from(input), key as KeyObject);
  else if (alg.startsWith('PS')) sig = cryptoSign(HASH[bits]!, Buffer.from(input), { key: key as KeyObject, padding: 6, saltLength: Number(bits) / 8 });
  else if (alg.startsWith('ES')) sig = cryptoSign(HASH[bits]!, Buffer.from(input), { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
  else sig = cryptoSign(null, Buffer.from(input), key as KeyObject);
  return `${input}.${sig.toString('base64url')}`;
}

/** JWT: decode, verify (HS/RS/PS/ES/EdDSA), decode_verify with constraints, and signing. */
export const register: Record<string, Builtin> = {
  'io.jwt.decode': {
    arity: 1,
    fn: (a) => {
      const t = parseToken('io.jwt.decode', str('io.jwt.decode', a, 0));
      return [t.header, t.payload, t.sig.toString('hex')];
    },
  },
  'io.jwt.decode_verify': { arity: 2, fn: decodeVerify },
  ...Object.fromEntries(ALGS.map((alg) => [`io.jwt.verify_${alg.toLowerCase()}`, verifier(alg)])),
  'io.jwt.encode_sign_raw': {
    arity: 3,
    fn: (a) => {
      const n = 'io.jwt.encode_sign_raw';
      let jwk: Value;
      try {
        jwk = fromJSON(JSON.parse(str(n, a, 2)));
      } catch {
        throw builtinErr(n, 'invalid JWK');
      }
      return signRaw(n, str(n, a, 0), str(n, a, 1), jwk);
    },
  },
  'io.jwt.encode_sign': {
    arity: 3,
    fn: (a) => {
      const n = 'io.jwt.encode_sign';
      const h = obj(n, a, 0);
      const p = obj(n, a, 1);
      const k = obj(n, a, 2);
      return signRaw(n, jsonText(h), jsonText(p), k);
    },
  },
};
void BuiltinError;
