import { mkdtempSync, rmSync,writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { exportJWK, generateKeyPair, type JWK,SignJWT } from 'jose';
type Key = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { fakeCtx, fakeEnv, run } from '../../../../test/gateway/filter-kit.js';
import { HostDirs, UpstreamGuard } from '../../../security/index.js';

import { jwtFilter } from './index.js';

let key1: Key;
let key2: Key;
let jwk1: JWK;
let jwk2: JWK;
const dir = mkdtempSync(join(tmpdir(), 'skiff-jwt-'));

beforeAll(async () => {
  const a = await generateKeyPair('ES256', { extractable: true });
  const b = await generateKeyPair('ES256', { extractable: true });
  key1 = a.privateKey;
  key2 = b.privateKey;
  jwk1 = { ...(await exportJWK(a.publicKey)), kid: 'k1', alg: 'ES256' };
  jwk2 = { ...(await exportJWK(b.publicKey)), kid: 'k2', alg: 'ES256' };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sign = (key: Key, kid: string, claims: Record<string, unknown> = {}, exp: string | number = '5m') =>
  new SignJWT({ sub: 'alice', role: 'admin', ...claims }).setProtectedHeader({ alg: 'ES256', kid }).setIssuer('https://issuer.test').setAudience('api').setIssuedAt().setExpirationTime(exp).sign(key);

const base = () => ({ issuer: 'https://issuer.test', audiences: ['api'], jwks: { keys: [jwk1] } });
const bearer = (t: string) => fakeCtx({ headers: { authorization: `Bearer ${t}` } });

describe('jwt filter', () => {
  it('accepts a valid token, exposes claims and copies them to headers', async () => {
    const ctx = bearer(await sign(key1, 'k1'));
    ctx.headers['x-sub'] = 'spoofed';
    const r = await run(jwtFilter, { ...base(), outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }, { header: 'x-role', claim: 'role' }] }, ctx);
    expect(r.passed).toBe(true);
    expect(ctx.claims).toMatchObject({ sub: 'alice', role: 'admin' });
    expect(ctx.headers['x-sub']).toBe('alice');
    expect(ctx.headers['x-role']).toBe('admin');
    expect(ctx.headers.authorization).toBeUndefined();
  });

  it('answers 401 without detail for a bad signature, wrong issuer, audience or expiry', async () => {
    const cases = [
      await sign(key2, 'k1'),
      await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('https://evil').setAudience('api').setExpirationTime('5m').sign(key1),
      await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('https://issuer.test').setAudience('other').setExpirationTime('5m').sign(key1),
      await sign(key1, 'k1', {}, Math.floor(Date.now() / 1000) - 600),
      'not.a.jwt',
    ];
    for (const tok of cases) {
      const ctx = bearer(tok);
      const r = await run(jwtFilter, base(), ctx);
      expect(r.passed).toBe(false);
      expect(ctx.response?.status).toBe(401);
      expect(ctx.response?.body).toBe('unauthorized\n');
    }
  });

  it('tolerates clock skew on expiry', async () => {
    const tok = await sign(key1, 'k1', {}, Math.floor(Date.now() / 1000) - 10);
    expect((await run(jwtFilter, { ...base(), clockSkew: '30s' }, bearer(tok))).passed).toBe(true);
    expect((await run(jwtFilter, { ...base(), clockSkew: '1s' }, bearer(tok))).passed).toBe(false);
  });

  it('requires a token unless allowMissing, and reads tokens from query parameters', async () => {
    const missing = fakeCtx();
    expect((await run(jwtFilter, base(), missing)).passed).toBe(false);
    expect(missing.response?.status).toBe(401);
    expect((await run(jwtFilter, { ...base(), allowMissing: true }, fakeCtx())).passed).toBe(true);
    const q = fakeCtx({ rawQuery: `access_token=${await sign(key1, 'k1')}` });
    expect((await run(jwtFilter, { ...base(), fromParams: ['access_token'] }, q)).passed).toBe(true);
  });

  it('picks up a rotated key from a JWKS file', async () => {
    const file = join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [jwk1] }));
    const env = fakeEnv({ hostDirs: HostDirs.from([dir]) });
    const h = jwtFilter.create({ issuer: 'https://issuer.test', jwksFile: file }, env);
    const pass = async (tok: string) => {
      const ctx = bearer(tok);
      let ok = false;
      await h(ctx, async () => void (ok = true));
      return ok;
    };
    expect(await pass(await sign(key1, 'k1'))).toBe(true);
    expect(await pass(await sign(key2, 'k2'))).toBe(false);
    writeFileSync(file, JSON.stringify({ keys: [jwk1, jwk2], extra: 'changed' }));
    await new Promise((r) => setTimeout(r, 1100));
    expect(await pass(await sign(key2, 'k2'))).toBe(true);
  });

  it('fetches a JWKS URL and refetches for an unknown key id', async () => {
    let keys = [jwk1];
    let fetches = 0;
    const server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
      const env = fakeEnv();
      const cfg = { issuer: 'https://issuer.test', jwksUri: uri };
      expect((await run(jwtFilter, cfg, bearer(await sign(key1, 'k1')), env)).passed).toBe(true);
      expect((await run(jwtFilter, cfg, bearer(await sign(key1, 'k1', { n: 2 })), env)).passed).toBe(true);
      expect(fetches).toBe(1);
      keys = [jwk1, jwk2];
      // jose refetches for an unknown kid once its cooldown (30 s) has passed; a fresh set refetches at once.
      env.carry.clear();
      expect((await run(jwtFilter, cfg, bearer(await sign(key2, 'k2')), env)).passed).toBe(true);
      expect(fetches).toBe(2);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('reads a JWKS file only inside the host-dir grants and never quotes it in errors', () => {
    const outside = mkdtempSync(join(tmpdir(), 'skiff-jwt-outside-'));
    try {
      const secret = join(outside, 'secret.json');
      writeFileSync(secret, JSON.stringify({ keys: [jwk1] }));
      const create = (file: string, hostDirs: HostDirs) => () => jwtFilter.create({ issuer: 'x', jwksFile: file }, fakeEnv({ hostDirs, field: 'spec.filters[0].jwt' }));
      expect(create(secret, HostDirs.from([dir]))).toThrow(/spec\.filters\[0\]\.jwt\.jwksFile: .* is outside every directory .*--allow-host-dir/);
      const notJson = join(dir, 'passwd');
      writeFileSync(notJson, 'root:x:0:0:SECRET-LINE:/root:/bin/sh\n');
      let message = '';
      try {
        create(notJson, HostDirs.from([dir]))();
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toContain('is not valid JSON');
      expect(message).not.toMatch(/root|SECRET/);
      writeFileSync(notJson, JSON.stringify({ secret: 'SECRET-VALUE' }));
      expect(create(notJson, HostDirs.from([dir]))).toThrow(/not a JWKS document/);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('fetches a JWKS URL only where the upstream grants allow', async () => {
    let fetches = 0;
    const server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk1] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      for (const uri of [`http://127.0.0.1:${port}/jwks`, `http://localhost:${port}/jwks`]) {
        const env = fakeEnv({ upstreams: UpstreamGuard.from([]) });
        expect((await run(jwtFilter, { issuer: 'https://issuer.test', jwksUri: uri }, bearer(await sign(key1, 'k1')), env)).passed).toBe(false);
      }
      expect(fetches).toBe(0);
      const allowed = fakeEnv({ upstreams: UpstreamGuard.from([`127.0.0.1:${port}`]) });
      expect((await run(jwtFilter, { issuer: 'https://issuer.test', jwksUri: `http://127.0.0.1:${port}/jwks` }, bearer(await sign(key1, 'k1')), allowed)).passed).toBe(true);
      expect(fetches).toBe(1);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('validates its configuration with field paths', () => {
    const fields = jwtFilter.validate({ jwks: { keys: [] }, jwksUri: 'ftp://x', clockSkew: 'later' }, 'spec.filters[0].jwt').map((e) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['spec.filters[0].jwt', 'spec.filters[0].jwt.jwksUri', 'spec.filters[0].jwt.clockSkew']));
  });
});
