import { closeSync, fstatSync } from 'node:fs';

import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';

import type { HostDirs } from '../../../security/index.js';
import { readFully } from '../../../util/read-fd.js';

type Jose = typeof import('jose');

/**
 * jose is loaded on first use, not with the gateway: it costs resident memory (README.md), which a
 * gateway without a JWT filter should not pay. Process-wide and safe: it caches one module import.
 */
let jose: Promise<Jose> | undefined;
export function loadJose(): Promise<Jose> {
  return (jose ??= import('jose'));
}

/** The largest JWKS document read from a file or a URL. */
export const MAX_JWKS_BYTES = 1024 * 1024;

/** JwksFileError: a JWKS file could not be used; the message names the field and path, never the file's contents. */
export class JwksFileError extends Error {
  readonly code = 'jwks_file_invalid';
}

/** readGranted reads a file through the host-dir grants and returns its bytes with what identifies this version of it. */
function readGranted(hostDirs: HostDirs, path: string, field: string): { text: string; mtimeMs: number; size: number } {
  const fd = hostDirs.openFile(path, field);
  try {
    const st = fstatSync(fd);
    if (st.size > MAX_JWKS_BYTES) throw new JwksFileError(`${field}: ${path} is ${st.size} bytes; a JWKS file may have at most ${MAX_JWKS_BYTES}`);
    const buf = readFully(fd, st.size);
    return { text: buf.toString('utf8'), mtimeMs: st.mtimeMs, size: st.size };
  } finally {
    closeSync(fd);
  }
}

/** parseJwks reads a JWKS document; errors say what is wrong without quoting the text (it may be any host file). */
function parseJwks(text: string, where: string): JSONWebKeySet {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new JwksFileError(`${where} is not valid JSON`);
  }
  if (doc === null || typeof doc !== 'object' || !Array.isArray((doc as JSONWebKeySet).keys)) throw new JwksFileError(`${where} is not a JWKS document (no "keys" array)`);
  const jwks = doc as JSONWebKeySet;
  try {
    checkJwks(jwks);
  } catch {
    throw new JwksFileError(`${where} is not a JWKS document (each key must be an object)`);
  }
  return jwks;
}

/**
 * fileKeySet serves keys from a JWKS file inside the operator's `--allow-host-dir` grants and re-reads
 * the file when a token names a key it does not hold and the file changed since (checked at most once
 * per `recheckMs`), so rotating keys on disk needs no restart. The file is read (and checked) at once,
 * so a bad path fails the configuration; no error quotes the file.
 */
export function fileKeySet(path: string, hostDirs: HostDirs, field = 'jwksFile', recheckMs = 1000, now = Date.now): JWTVerifyGetKey {
  const load = () => {
    const f = readGranted(hostDirs, path, field);
    const jwks = parseJwks(f.text, `${field}: ${path}`);
    return { jwks, set: undefined as JWTVerifyGetKey | undefined, mtimeMs: f.mtimeMs, size: f.size, checkedAt: now() };
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
      let next: ReturnType<typeof load>;
      try {
        next = load();
      } catch {
        // A file that vanished, left the grants or broke keeps the keys already loaded.
        throw err;
      }
      if (next.mtimeMs === cur.mtimeMs && next.size === cur.size) throw err;
      cur = next;
      cur.set = j.createLocalJWKSet(cur.jwks);
      return cur.set(header, token);
    }
  };
}

/**
 * remoteKeySet fetches a JWKS URL with jose's cache: keys are kept for `cacheMaxAgeMs` and an unknown
 * `kid` triggers a refetch (no more often than `cooldownMs`), which is how key rotation is picked up.
 */
export function remoteKeySet(uri: string, cacheMaxAgeMs: number, cooldownMs: number, fetchImpl: (url: string | URL, init?: RequestInit) => Promise<Response>): JWTVerifyGetKey {
  const url = new URL(uri);
  let set: JWTVerifyGetKey | undefined;
  return async (header, token) => {
    if (!set) {
      const j = await loadJose();
      // The fetch is the caller's: it connects only where the operator's upstream grants allow.
      set = j.createRemoteJWKSet(url, { cacheMaxAge: cacheMaxAgeMs, cooldownDuration: cooldownMs, timeoutDuration: 5000, [j.customFetch]: fetchImpl });
    }
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
