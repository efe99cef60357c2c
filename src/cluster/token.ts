import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

import { JoinError } from './errors.js';

/**
 * A node token has K3s's "secure" form, `K10<CA hash>::<user>:<secret>`: the hash (SHA-256, hex, of
 * the trust bundle PEM the cluster serves at /cluster/v1/cacerts) lets a joiner check the CA before
 * trusting it, and the secret authenticates the joiner. The user part is always `node`.
 */
export interface NodeToken {
  caHash: string;
  user: string;
  secret: string;
}

const TOKEN = /^K10([0-9a-f]{64})::([a-z][a-z0-9-]*):(\S{16,})$/;

/** caBundleHash is the hash a token pins: SHA-256 over the bundle's PEM text exactly as served. */
export function caBundleHash(bundlePem: string): string {
  return createHash('sha256').update(bundlePem).digest('hex');
}

/** formatNodeToken writes a token for the bundle and join secret. */
export function formatNodeToken(bundlePem: string, secret: string): string {
  return `K10${caBundleHash(bundlePem)}::node:${secret}`;
}

/** newJoinSecret is a fresh random join secret (32 bytes, base64url, so it holds no `:`). */
export function newJoinSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** parseNodeToken reads a full token; anything else is a JoinError naming the expected form (never echoing the secret). */
export function parseNodeToken(token: string): NodeToken {
  const m = TOKEN.exec(token.trim());
  if (!m) throw new JoinError('join_token', 'the token is not a Skiff node token: expected K10<sha256 of the cluster CA bundle>::node:<secret>, as written to DATA_DIR/node-token by the first node (skiff up --cluster-init)');
  return { caHash: m[1]!, user: m[2]!, secret: m[3]! };
}

/**
 * joinSecretOf takes the secret a `--cluster-init --token` sets: a full node token (its secret part)
 * or a bare secret of at least 16 characters without `:` or spaces.
 */
export function joinSecretOf(token: string): string {
  const t = token.trim();
  if (t.startsWith('K10')) return parseNodeToken(t).secret;
  if (!/^[^\s:]{16,}$/.test(t)) throw new JoinError('join_token', 'a join secret set with --token must have at least 16 characters and no ":" or spaces');
  return t;
}

/** sameHash compares two hex hashes in constant time (inputs of other lengths are simply unequal). */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

// scrypt's cost makes guessing a weak, operator-chosen secret from a leaked store slow.
const SCRYPT = { N: 16384, r: 8, p: 1 } as const;

function derive(secret: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolveKey, reject) => scrypt(secret, salt, 32, SCRYPT, (err, key) => (err ? reject(err) : resolveKey(key))));
}

/** hashJoinSecret is what the store keeps instead of the secret: `scrypt$<salt b64url>$<key b64url>`. */
export async function hashJoinSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  return `scrypt$${salt.toString('base64url')}$${(await derive(secret, salt)).toString('base64url')}`;
}

/**
 * verifyJoinSecret tells whether `secret` is the one `stored` was made from. The derived keys are
 * compared in constant time, and every input costs one derivation, so the time taken says nothing
 * about how close a guess was.
 */
export async function verifyJoinSecret(secret: string, stored: string): Promise<boolean> {
  const [scheme, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !key) return false;
  const want = Buffer.from(key, 'base64url');
  const got = await derive(secret, Buffer.from(salt, 'base64url'));
  return want.length === got.length && timingSafeEqual(want, got);
}
