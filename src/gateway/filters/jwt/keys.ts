import { readFileSync, statSync } from 'node:fs';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';

type Jose = typeof import('jose');

/**
 * jose is loaded on first use, not with the gateway: it costs ~9 MB of resident memory, which a
 * gateway without a JWT filter should not pay. Process-wide and safe: it caches one module import.
 */
let jose: Promise<Jose> | undefined;
export function loadJose(): Promise<Jose> {
  return (jose ??= import('jose'));
}

/**
 * fileKeySet serves keys from a JWKS file and re-reads the file when a token names a key it does not
 * hold and the file changed since (checked at most once per `recheckMs`), so rotating keys on disk
 * needs no restart. The file is read (and checked) at once, so a bad path fails the configuration.
 */
export function fileKeySet(path: string, recheckMs = 1000, now = Date.now): JWTVerifyGetKey {
  const load = () => {
    const st = statSync(path);
    const jwks = JSON.parse(readFileSync(path, 'utf8')) as JSONWebKeySet;
    if (!Array.isArray(jwks.keys)) throw new Error(`${path} is not a JWKS document (no "keys" array)`);
    checkJwks(jwks);
    return { jwks, set: undefined as JWTVerifyGetKey | undefined, mtimeMs: st.mtimeMs, size: st.size, checkedAt: now() };
  };
  let cur = load();
  return async (header, token) => {
    const j = await loadJose();
    cur.set ??= j.createLocalJWKSet(cur.jwks);
    try {
      return await cur.set(header, token);
    } catch (err) {
      if (!(err instanceof j.errors.JWKSNoMatchingKey) || now() - cur.checkedAt < recheckMs) throw err;
      cur.checkedAt = now();
      const st = statSync(path, { throwIfNoEntry: false });
      if (!st || (st.mtimeMs === cur.mtimeMs && st.size === cur.size)) throw err;
      cur = load();
      cur.set = j.createLocalJWKSet(cur.jwks);
      return cur.set(header, token);
    }
  };
}

/**
 * remoteKeySet fetches a JWKS URL with jose's cache: keys are kept for `cacheMaxAgeMs` and an unknown
 * `kid` triggers a refetch (no more often than `cooldownMs`), which is how key rotation is picked up.
 */
export function remoteKeySet(uri: string, cacheMaxAgeMs: number, cooldownMs: number): JWTVerifyGetKey {
  const url = new URL(uri);
  let set: JWTVerifyGetKey | undefined;
  return async (header, token) => {
    set ??= (await loadJose()).createRemoteJWKSet(url, { cacheMaxAge: cacheMaxAgeMs, cooldownDuration: cooldownMs, timeoutDuration: 5000 });
    return set(header, token);
  };
}

/** inlineKeySet serves keys from a JWKS given in the route itself. */
export function inlineKeySet(jwks: JSONWebKeySet): JWTVerifyGetKey {
  checkJwks(jwks);
  let set: JWTVerifyGetKey | undefined;
  return async (header, token) => {
    set ??= (await loadJose()).createLocalJWKSet(jwks);
    return set(header, token);
  };
}

/** checkJwks refuses what jose's createLocalJWKSet would, now that jose builds the set on first use. */
function checkJwks(jwks: JSONWebKeySet): void {
  const ok = jwks !== null && typeof jwks === 'object' && Array.isArray(jwks.keys) && jwks.keys.every((k) => k !== null && typeof k === 'object' && !Array.isArray(k));
  if (!ok) throw new TypeError('JSON Web Key Set malformed');
}
