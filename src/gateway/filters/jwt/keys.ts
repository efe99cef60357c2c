import { readFileSync, statSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

/**
 * fileKeySet serves keys from a JWKS file and re-reads the file when a token names a key it does not
 * hold and the file changed since (checked at most once per `recheckMs`), so rotating keys on disk
 * needs no restart.
 */
export function fileKeySet(path: string, recheckMs = 1000, now = Date.now): JWTVerifyGetKey {
  const load = () => {
    const st = statSync(path);
    const jwks = JSON.parse(readFileSync(path, 'utf8')) as JSONWebKeySet;
    if (!Array.isArray(jwks.keys)) throw new Error(`${path} is not a JWKS document (no "keys" array)`);
    return { set: createLocalJWKSet(jwks), mtimeMs: st.mtimeMs, size: st.size, checkedAt: now() };
  };
  let cur = load();
  return async (header, token) => {
    try {
      return await cur.set(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || now() - cur.checkedAt < recheckMs) throw err;
      cur.checkedAt = now();
      const st = statSync(path, { throwIfNoEntry: false });
      if (!st || (st.mtimeMs === cur.mtimeMs && st.size === cur.size)) throw err;
      cur = load();
      return cur.set(header, token);
    }
  };
}

/**
 * remoteKeySet fetches a JWKS URL with jose's cache: keys are kept for `cacheMaxAgeMs` and an unknown
 * `kid` triggers a refetch (no more often than `cooldownMs`), which is how key rotation is picked up.
 */
export function remoteKeySet(uri: string, cacheMaxAgeMs: number, cooldownMs: number): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL(uri), { cacheMaxAge: cacheMaxAgeMs, cooldownDuration: cooldownMs, timeoutDuration: 5000 });
}

/** inlineKeySet serves keys from a JWKS given in the route itself. */
export function inlineKeySet(jwks: JSONWebKeySet): JWTVerifyGetKey {
  return createLocalJWKSet(jwks);
}
