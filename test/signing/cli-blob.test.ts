import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildStatement, IN_TOTO_PAYLOAD_TYPE, sha256Digest } from '../../src/signing/index.js';
import { runCli } from '../helpers/run-cli.js';

import { FakeSigstore } from './fake-sigstore.js';

const dir = mkdtempSync(join(tmpdir(), 'skiff-signing-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

const WHO = ['--certificate-identity', 'builder@skiff.test', '--certificate-oidc-issuer', 'https://accounts.skiff.test'];
let fake: FakeSigstore;

beforeAll(async () => {
  fake = await FakeSigstore.create();
  writeFileSync(at('trusted_root.json'), JSON.stringify(fake.trustedRoot()));
  writeFileSync(at('module.wasm'), Buffer.from('\0asm\x01\0\0\0'));
  writeFileSync(at('other.wasm'), Buffer.from('\0asm\x01\0\0\0\x00'));
});

describe('skiff generate-key-pair, sign-blob, verify-blob (key)', () => {
  it('round-trips with cosign\'s encrypted key format and $COSIGN_PASSWORD', async () => {
    process.env.COSIGN_PASSWORD = 'hunter2';
    try {
      const gen = await runCli('generate-key-pair', '--output-key-prefix', at('release'));
      expect(gen.code).toBe(0);
      expect(readFileSync(at('release.key'), 'utf8')).toMatch(/^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----/);
      expect(statSync(at('release.key')).mode & 0o777).toBe(0o600);
      expect((await runCli('generate-key-pair', '--output-key-prefix', at('release'))).err).toMatch(/release\.key already exists/);
      const signed = await runCli('sign-blob', '--key', at('release.key'), '--bundle', at('module.bundle.json'), at('module.wasm'));
      expect(signed.code).toBe(0);
      expect(signed.out.trim()).toMatch(/^[A-Za-z0-9+/]+=*$/);
    } finally {
      delete process.env.COSIGN_PASSWORD;
    }
    // Flags after the positional argument, as the contract allows.
    const ok = await runCli('verify-blob', at('module.wasm'), '--bundle', at('module.bundle.json'), '--key', at('release.pub'));
    expect(ok).toMatchObject({ code: 0, err: 'Verified OK\n' });
  });

  it('verifiers exit 1, never 2, on a usage mistake', async () => {
    const missing = await runCli('verify-blob', '--key', at('release.pub'), at('module.wasm'));
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('--bundle');
    expect((await runCli('verify', '--no-such-flag', 'x')).code).toBe(1);
  });

  it('a wrong password says so and exits 2 for sign-blob', async () => {
    process.env.COSIGN_PASSWORD = 'wrong';
    try {
      const r = await runCli('sign-blob', '--key', at('release.key'), '--bundle', at('x.json'), at('module.wasm'));
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/wrong password .*COSIGN_PASSWORD/);
    } finally {
      delete process.env.COSIGN_PASSWORD;
    }
  });

  it('exits 1 naming the problem: another file, another key, a tampered bundle, a missing bundle', async () => {
    const other = await runCli('verify-blob', '--bundle', at('module.bundle.json'), '--key', at('release.pub'), at('other.wasm'));
    expect(other.code).toBe(1);
    expect(other.err).toMatch(/^skiff verify-blob: .*module\.bundle\.json: the bundle's message digest is not the sha256 of the artifact/);
    const gen = await runCli('generate-key-pair', '--output-key-prefix', at('stranger'), '--algorithm', 'ed25519');
    expect(gen.code).toBe(0);
    const wrongKey = await runCli('verify-blob', '--bundle', at('module.bundle.json'), '--key', at('stranger.pub'), at('module.wasm'));
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.err).toMatch(/signature verification failed/);
    const b = JSON.parse(readFileSync(at('module.bundle.json'), 'utf8'));
    b.messageSignature.signature = Buffer.from('tampered').toString('base64');
    writeFileSync(at('tampered.json'), JSON.stringify(b));
    expect((await runCli('verify-blob', '--bundle', at('tampered.json'), '--key', at('release.pub'), at('module.wasm'))).code).toBe(1);
    const none = await runCli('verify-blob', '--key', at('release.pub'), at('module.wasm'));
    expect(none).toMatchObject({ code: 1 });
    expect(none.err).toMatch(/--bundle FILE is required/);
    const missing = await runCli('verify-blob', '--bundle', at('nope.json'), '--key', at('release.pub'), at('module.wasm'));
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/--bundle .*nope\.json: cannot read it \(ENOENT\)/);
  });
});

describe('skiff verify-blob (keyless)', () => {
  it('verifies a keyless bundle against --trusted-root with identity and issuer', async () => {
    writeFileSync(at('keyless.json'), JSON.stringify(await fake.signBlob(readFileSync(at('module.wasm')), { version: '0.2' })));
    const r = await runCli('verify-blob', '--bundle', at('keyless.json'), ...WHO, '--trusted-root', at('trusted_root.json'), at('module.wasm'));
    expect(r.code).toBe(0);
    expect(r.err).toBe('Certificate subject: builder@skiff.test\nCertificate issuer URL: https://accounts.skiff.test\nVerified OK\n');
    const re = await runCli('verify-blob', '--bundle', at('keyless.json'), '--certificate-identity-regexp', '@skiff\\.test$', '--certificate-oidc-issuer-regexp', '^https://accounts\\.', '--trusted-root', at('trusted_root.json'), at('module.wasm'));
    expect(re.code).toBe(0);
  });

  it('exits 1 on a wrong identity, a wrong issuer, no trusted root, no issuer flag', async () => {
    const base = ['verify-blob', '--bundle', at('keyless.json'), '--trusted-root', at('trusted_root.json'), at('module.wasm')];
    const wrongId = await runCli(...base, '--certificate-identity', 'eve@skiff.test', '--certificate-oidc-issuer', 'https://accounts.skiff.test');
    expect(wrongId.code).toBe(1);
    expect(wrongId.err).toMatch(/subject "builder@skiff.test" is not "eve@skiff.test"/);
    const wrongIssuer = await runCli(...base, '--certificate-identity', 'builder@skiff.test', '--certificate-oidc-issuer', 'https://evil.example');
    expect(wrongIssuer.code).toBe(1);
    const noRoot = await runCli('verify-blob', '--bundle', at('keyless.json'), ...WHO, at('module.wasm'));
    expect(noRoot.code).toBe(1);
    expect(noRoot.err).toMatch(/needs --trusted-root FILE/);
    const noIssuer = await runCli(...base, '--certificate-identity', 'builder@skiff.test');
    expect(noIssuer.code).toBe(1);
    expect(noIssuer.err).toMatch(/set --certificate-oidc-issuer or --certificate-oidc-issuer-regexp/);
  });

  it('a DSSE bundle must name the file among its subjects', async () => {
    const file = readFileSync(at('module.wasm'));
    const about = (digest: string) => buildStatement('module.wasm', digest, 'https://slsa.dev/provenance/v1', {});
    writeFileSync(at('dsse-good.json'), JSON.stringify(await fake.signDsse(IN_TOTO_PAYLOAD_TYPE, about(sha256Digest(file)))));
    writeFileSync(at('dsse-other.json'), JSON.stringify(await fake.signDsse(IN_TOTO_PAYLOAD_TYPE, about(sha256Digest(Buffer.from('x'))))));
    const args = (b: string) => ['verify-blob', '--bundle', at(b), ...WHO, '--trusted-root', at('trusted_root.json'), at('module.wasm')];
    expect((await runCli(...args('dsse-good.json'))).code).toBe(0);
    const other = await runCli(...args('dsse-other.json'));
    expect(other.code).toBe(1);
    expect(other.err).toMatch(/the statement's subjects do not include .*module\.wasm/);
  });
});
