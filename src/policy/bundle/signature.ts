import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';

import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose';

import { parseYamlValueLikeGo } from '../../util/yaml-go.js';

import { canonicalText, HASH_ALGORITHMS, hashHex, JSONSyntaxError, parseRawJSON, rawFromPlain,type RawJSON } from './canonical-json.js';
import { BundleError } from './errors.js';

/** SIGNATURES_FILE is where a signed bundle keeps its JWS, at the bundle root. */
export const SIGNATURES_FILE = '.signatures.json';

/** VerificationOptions say which key a bundle must be signed with. */
export interface VerificationOptions {
  /** PEM public key (SPKI `PUBLIC KEY`, PKCS#1 `RSA PUBLIC KEY`) or a certificate whose key is used */
  publicKey: string;
  /** when set, a signature naming another key id (JWS `kid`, else the payload's `keyid`) is refused */
  keyId?: string;
  /** must equal the payload's `scope` (absent on both sides is equal), as OPA compares it */
  scope?: string;
  /** refuse a bundle without `.signatures.json` (default true) */
  required?: boolean;
}

/** SignedFile is one entry of the signature payload's `files`. */
export interface SignedFile {
  name: string;
  hash: string;
  algorithm: string;
}

/** SignatureInfo is what a verified signature said. */
export interface SignatureInfo {
  algorithm: string;
  keyId?: string;
  scope?: string;
  issuer?: string;
  issuedAt?: number;
  files: SignedFile[];
}

/** Structured files are hashed over their canonical JSON form, the rest over their bytes (OPA's IsStructuredDoc). */
export function isStructured(path: string): boolean {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return base === 'data.json' || base === 'data.yaml' || base === '.manifest';
}

/** parseStructured reads a structured bundle file into a RawJSON tree, naming the file and line on failure. */
export function parseStructured(path: string, bytes: Uint8Array, bundle: string): RawJSON {
  const text = Buffer.from(bytes).toString('utf8');
  try {
    if (path.endsWith('.yaml') || path.endsWith('.yml')) return rawFromPlain(parseYamlValueLikeGo(text, { intAsBigInt: true }));
    return parseRawJSON(text);
  } catch (err) {
    const where = err instanceof JSONSyntaxError ? `${path}:${err.line}` : path;
    throw new BundleError(path === '.manifest' ? 'bundle_manifest_invalid' : 'bundle_data_invalid', bundle, where, `does not parse: ${(err as Error).message}`, { cause: err });
  }
}

/** fileDigest is a bundle file's digest as a signature lists it (hex). */
export function fileDigest(path: string, bytes: Uint8Array, algorithm: string, bundle: string, parsed?: RawJSON): string {
  return isStructured(path) ? hashHex(algorithm, canonicalText(parsed ?? parseStructured(path, bytes, bundle))) : hashHex(algorithm, bytes);
}

/** publicKeyFrom reads a PEM public key or certificate. */
export function publicKeyFrom(pem: string, bundle: string): KeyObject {
  try {
    if (pem.includes('BEGIN CERTIFICATE')) return new X509Certificate(pem).publicKey;
    return createPublicKey(pem);
  } catch (err) {
    throw new BundleError('bundle_key_invalid', bundle, undefined, `the verification key is not a PEM public key or certificate (${(err as Error).message})`, { cause: err });
  }
}

/** algorithmsFor lists the JWS algorithms a key can verify (or sign): one per EC curve, as JWA pairs them. */
export function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === 'prime256v1' || curve === 'P-256' ? ['ES256'] : curve === 'secp384r1' || curve === 'P-384' ? ['ES384'] : curve === 'secp521r1' || curve === 'P-521' ? ['ES512'] : [];
    }
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      return [];
  }
}

/** signingAlgorithm picks the JWS algorithm for a private key: ES256/384/512 by curve, RS256 for RSA (opa build's default), EdDSA for Ed25519. */
export function signingAlgorithm(key: KeyObject): string {
  const algs = algorithmsFor(key);
  if (!algs.length) throw new BundleError('bundle_key_invalid', '(new)', undefined, `a ${key.asymmetricKeyType ?? 'symmetric'} key${key.asymmetricKeyDetails?.namedCurve ? ` on ${key.asymmetricKeyDetails.namedCurve}` : ''} cannot sign bundles: use ECDSA P-256/P-384/P-521, RSA or Ed25519`);
  return algs[0]!;
}

const b64json = (part: string): Record<string, unknown> => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;

/**
 * verifySignatures checks `.signatures.json` as OPA does: exactly one JWS in compact form, no signing
 * plugin, signed by `opts.publicKey` with an algorithm that key can use, a key id and scope as
 * expected. It returns the files the payload lists; comparing them with the bundle is the caller's.
 */
export async function verifySignatures(bytes: Uint8Array, bundle: string, opts: VerificationOptions): Promise<SignatureInfo> {
  const bad = (detail: string, cause?: unknown): never => {
    throw new BundleError('bundle_signature_invalid', bundle, SIGNATURES_FILE, detail, cause ? { cause } : undefined);
  };
  let doc: { signatures?: unknown; plugin?: unknown };
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as typeof doc;
  } catch (err) {
    return bad(`is not JSON (${(err as Error).message})`, err);
  }
  if (doc.plugin) bad(`names the signing plugin ${JSON.stringify(doc.plugin)}, which Skiff does not have; sign with a key (opa build --signing-key or skiff policy build --signing-key)`);
  const sigs = doc.signatures;
  if (!Array.isArray(sigs) || sigs.length === 0) return bad('holds no signature (expected exactly one JWS)');
  if (sigs.length > 1) bad(`holds ${sigs.length} signatures; OPA and Skiff accept exactly one`);
  const token = sigs[0];
  if (typeof token !== 'string' || token.split('.').length !== 3) return bad('the signature is not a JWS in compact form');
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(token) as Record<string, unknown>;
    claims = b64json(token.split('.')[1]!);
  } catch (err) {
    return bad(`the signature does not decode (${(err as Error).message})`, err);
  }
  const key = publicKeyFrom(opts.publicKey, bundle);
  const allowed = algorithmsFor(key);
  const alg = String(header.alg ?? '');
  if (alg.startsWith('HS')) bad(`is signed with ${alg}, a shared secret; Skiff verifies bundles with public keys only`);
  if (!allowed.includes(alg)) bad(`is signed with ${alg || 'no algorithm'}, which the configured ${key.asymmetricKeyType} key cannot verify (it verifies ${allowed.join(', ') || 'nothing'})`);
  try {
    await compactVerify(token, key, { algorithms: [alg] });
  } catch (err) {
    bad(`the signature does not verify with the configured key (${(err as Error).message}): the bundle was signed by another key or changed after signing`, err);
  }
  const kid = typeof header.kid === 'string' && header.kid ? header.kid : typeof claims.keyid === 'string' && claims.keyid ? claims.keyid : undefined;
  if (opts.keyId && kid && kid !== opts.keyId) bad(`is signed with key id ${JSON.stringify(kid)}; spec.verification.keyId expects ${JSON.stringify(opts.keyId)}`);
  const scope = typeof claims.scope === 'string' ? claims.scope : '';
  if (scope !== (opts.scope ?? '')) bad(`has scope ${JSON.stringify(scope)} but ${JSON.stringify(opts.scope ?? '')} is expected (scopes must match exactly, as in OPA)`);
  const files = claims.files;
  if (!Array.isArray(files)) return bad('the signed payload has no files list');
  const list: SignedFile[] = [];
  const names = new Set<string>();
  for (const f of files as Array<Record<string, unknown>>) {
    if (!f || typeof f.name !== 'string' || typeof f.hash !== 'string') bad('a files entry lacks its name or hash');
    const algorithm = typeof f.algorithm === 'string' ? f.algorithm : '';
    if (!HASH_ALGORITHMS[algorithm]) bad(`file ${f.name as string} is hashed with ${algorithm ? JSON.stringify(algorithm) : 'no algorithm'}; accepted: ${Object.keys(HASH_ALGORITHMS).join(', ')}`);
    const name = (f.name as string).replace(/^\/+/, '');
    if (names.has(name)) bad(`file ${name} is listed twice`);
    names.add(name);
    list.push({ name, hash: (f.hash as string).toLowerCase(), algorithm });
  }
  return {
    algorithm: alg,
    ...(kid ? { keyId: kid } : {}),
    ...(scope ? { scope } : {}),
    ...(typeof claims.iss === 'string' ? { issuer: claims.iss } : {}),
    ...(typeof claims.iat === 'number' ? { issuedAt: claims.iat } : {}),
    files: list,
  };
}

/** SignOptions are the claims `skiff policy build` adds beside the files. */
export interface SignOptions {
  /** JWS `kid` and the payload's (deprecated) `keyid`; `opa build` uses "default" */
  keyId?: string;
  scope?: string;
  issuer?: string;
  /** seconds since the epoch (default now) */
  issuedAt?: number;
}

/** signFiles makes the compact JWS for `.signatures.json` over `files`, with the algorithm the key calls for. */
export async function signFiles(files: SignedFile[], key: KeyObject, opts: SignOptions = {}): Promise<string> {
  const alg = signingAlgorithm(key);
  const payload = {
    files,
    ...(opts.keyId ? { keyid: opts.keyId } : {}),
    ...(opts.scope ? { scope: opts.scope } : {}),
    ...(opts.issuer ? { iss: opts.issuer } : {}),
    iat: opts.issuedAt ?? Math.floor(Date.now() / 1000),
  };
  return new CompactSign(Buffer.from(JSON.stringify(payload))).setProtectedHeader({ alg, typ: 'JWT', ...(opts.keyId ? { kid: opts.keyId } : {}) }).sign(key);
}
