import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';

import { describe, expect, it } from 'vitest';

import { buildBundle, type BundleError, canonicalText, parseRawJSON, readBundle } from '../../../src/policy/bundle/index.js';
import { PolicyEngine } from '../../../src/policy/index.js';

import { jws, keys, sha256, tarGz } from './helpers.js';

const AUTHZ = 'package authz\n\ndefault allow := false\n\nallow if input.user in data.roles.admin\n';

/** refusal runs a read that must fail and returns the BundleError. */
async function refusal(p: Promise<unknown>): Promise<BundleError> {
  try {
    await p;
  } catch (err) {
    return err as BundleError;
  }
  throw new Error('the bundle was accepted');
}

function decide(b: { modules: Array<{ file: string; text: string; regoVersion: 0 | 1 }>; data: unknown }, input: unknown): unknown {
  const e = new PolicyEngine();
  for (const m of b.modules) e.addModule(m.file, m.text, { regoVersion: m.regoVersion });
  e.setData(b.data);
  return e.evaluate('data.authz.allow', { input })[0]?.expressions[0]?.value;
}

/**
 * opaBuildFixture is the bundle `opa build -b . --signing-key rsa.pem` writes for a directory with
 * authz.rego and roles/data.json, put together by hand from OPA's documented layout: entries with a
 * leading slash, all data in one /data.json, a /.signatures.json indented by one space, the manifest
 * last; an RS256 JWS with kid "default" whose payload lists the module over its bytes and data.json
 * and .manifest over their canonical JSON (written out literally here).
 */
async function opaBuildFixture(mutate: (files: Array<{ name: string; body: string }>) => void = () => {}) {
  const { privateKey, publicPem } = keys('rsa');
  const payload = {
    files: [
      { name: 'authz.rego', hash: sha256(AUTHZ), algorithm: 'SHA-256' },
      { name: 'data.json', hash: sha256('{"roles":{"admin":["alice"]}}'), algorithm: 'SHA-256' },
      { name: '.manifest', hash: sha256('{"rego_version":1,"revision":"","roots":[""]}'), algorithm: 'SHA-256' },
    ],
    keyid: 'default',
  };
  const token = await jws(payload, privateKey, { alg: 'RS256', kid: 'default' });
  const files = [
    { name: '/data.json', body: '{"roles":{"admin":["alice"]}}\n' },
    { name: '/authz.rego', body: AUTHZ },
    { name: '/.signatures.json', body: `{\n "signatures": [\n  "${token}"\n ]\n}` },
    { name: '/.manifest', body: '{"revision":"","roots":[""],"rego_version":1}\n' },
  ];
  mutate(files);
  return { bytes: await tarGz(files), publicPem, privateKey };
}

describe('bundles opa build writes', () => {
  it('load and verify: modules, data at its path, manifest, RS256 signature with kid default', async () => {
    const { bytes, publicPem } = await opaBuildFixture();
    const b = await readBundle(bytes, { name: 'opa', verification: { publicKey: publicPem } });
    expect(b.modules.map((m) => m.path)).toEqual(['authz.rego']);
    expect(b.manifest).toMatchObject({ revision: '', roots: [''], regoVersion: 1 });
    expect(b.signature).toMatchObject({ algorithm: 'RS256', keyId: 'default' });
    expect(decide(b, { user: 'alice' })).toBe(true);
    expect(decide(b, { user: 'bob' })).toBe(false);
    expect(b.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('refuse a changed file, naming it', async () => {
    const { bytes, publicPem } = await opaBuildFixture((f) => (f[1]!.body = AUTHZ.replace('admin', 'guest')));
    const err = await refusal(readBundle(bytes, { name: 'opa', verification: { publicKey: publicPem } }));
    expect(err.code).toBe('bundle_files_mismatch');
    expect(err.file).toBe('authz.rego');
    expect(err.message).toContain('bundle opa, file authz.rego: does not match its signed digest');
  });

  it('refuse a changed data value but not reformatted data (data is hashed over its canonical JSON)', async () => {
    const { bytes, publicPem } = await opaBuildFixture((f) => (f[0]!.body = '{ "roles" : {\n  "admin": [ "alice" ] } }'));
    await expect(readBundle(bytes, { name: 'opa', verification: { publicKey: publicPem } })).resolves.toBeTruthy();
    const changed = await opaBuildFixture((f) => (f[0]!.body = '{"roles":{"admin":["alice","mallory"]}}'));
    const err = await refusal(readBundle(changed.bytes, { name: 'opa', verification: { publicKey: changed.publicPem } }));
    expect([err.code, err.file]).toEqual(['bundle_files_mismatch', 'data.json']);
  });

  it('refuse a signature over different files: one added, one removed', async () => {
    const added = await opaBuildFixture((f) => f.push({ name: '/extra.rego', body: 'package authz\nallow := true\n' }));
    const a = await refusal(readBundle(added.bytes, { name: 'opa', verification: { publicKey: added.publicPem } }));
    expect([a.code, a.file]).toEqual(['bundle_files_mismatch', 'extra.rego']);
    expect(a.message).toContain('not covered by the bundle signature');
    const removed = await opaBuildFixture((f) => f.splice(1, 1));
    const r = await refusal(readBundle(removed.bytes, { name: 'opa', verification: { publicKey: removed.publicPem } }));
    expect([r.code, r.file]).toEqual(['bundle_files_mismatch', 'authz.rego']);
    expect(r.message).toContain('does not hold');
  });

  it('refuse a signature by another key, an unsigned bundle when one is required, and a signed bundle without a key', async () => {
    const { bytes } = await opaBuildFixture();
    const other = keys('rsa').publicPem;
    const wrong = await refusal(readBundle(bytes, { name: 'opa', verification: { publicKey: other } }));
    expect(wrong.code).toBe('bundle_signature_invalid');
    expect(wrong.message).toContain('does not verify with the configured key');
    const unsigned = await tarGz([{ name: '/authz.rego', body: AUTHZ }]);
    const missing = await refusal(readBundle(unsigned, { name: 'u', verification: { publicKey: other } }));
    expect(missing.code).toBe('bundle_signature_missing');
    await expect(readBundle(unsigned, { name: 'u', verification: { publicKey: other, required: false } })).resolves.toBeTruthy();
    const nokey = await refusal(readBundle(bytes, { name: 'opa' }));
    expect(nokey.message).toContain('no verification key is configured');
    await expect(readBundle(bytes, { name: 'opa', skipVerification: true })).resolves.toBeTruthy();
  });

  it('compare scope and key id', async () => {
    const { bytes, publicPem } = await opaBuildFixture();
    const scoped = await refusal(readBundle(bytes, { name: 'opa', verification: { publicKey: publicPem, scope: 'write' } }));
    expect(scoped.message).toContain('has scope "" but "write" is expected');
    const kid = await refusal(readBundle(bytes, { name: 'opa', verification: { publicKey: publicPem, keyId: 'prod' } }));
    expect(kid.message).toContain('signed with key id "default"');
  });
});

describe('skiff policy build output', () => {
  function dir(): string {
    const d = mkdtempSync(join(tmpdir(), 'skiff-bundle-'));
    writeFileSync(join(d, 'authz.rego'), AUTHZ);
    mkdirSync(join(d, 'roles'));
    writeFileSync(join(d, 'roles', 'data.json'), '{"admin": ["alice"], "big": 12345678901234567890, "f": 1.50}');
    mkdirSync(join(d, 'x', 'y'), { recursive: true });
    writeFileSync(join(d, 'x', 'y', 'data.yaml'), 'limit: 3\nname: "é"\n');
    writeFileSync(join(d, 'README.md'), 'not part of a bundle');
    return d;
  }

  for (const [kind, curve, alg] of [['ec', 'P-256', 'ES256'], ['ec', 'P-384', 'ES384'], ['ec', 'P-521', 'ES512'], ['rsa', '', 'RS256'], ['ed25519', '', 'EdDSA']] as const) {
    it(`signs with ${alg} for a ${kind}${curve ? ` ${curve}` : ''} key and reads back`, async () => {
      const { privateKey, publicPem } = keys(kind, curve || undefined);
      const built = await buildBundle(dir(), { signingKey: privateKey, keyId: 'default', revision: 'r1' });
      const b = await readBundle(built.bytes, { name: 'built', verification: { publicKey: publicPem } });
      expect(b.signature?.algorithm).toBe(alg);
      expect(b.manifest.revision).toBe('r1');
      expect(b.files.sort()).toEqual(['.manifest', '.signatures.json', 'authz.rego', 'data.json']);
      expect(b.data).toMatchObject({ roles: { admin: ['alice'] }, x: { y: { limit: 3, name: 'é' } } });
      expect(decide(b, { user: 'alice' })).toBe(true);
    });
  }

  it('writes the layout opa reads: leading-slash entries, data merged into /data.json, numbers as written', async () => {
    const built = await buildBundle(dir(), { revision: 'v2' });
    const out = mkdtempSync(join(tmpdir(), 'skiff-bundle-out-'));
    writeFileSync(join(out, 'b.tar.gz'), built.bytes);
    const listed = spawnSync('tar', ['tzf', join(out, 'b.tar.gz')], { encoding: 'utf8' });
    expect(listed.stdout.trim().split('\n')).toEqual(['/data.json', '/authz.rego', '/.manifest']);
    const cat = spawnSync('tar', ['xzOf', join(out, 'b.tar.gz'), '/data.json', '/.manifest'], { encoding: 'utf8' });
    expect(cat.stdout).toContain('"big":12345678901234567890');
    expect(cat.stdout).toContain('"f":1.50');
    expect(cat.stdout).toContain('{"revision":"v2","roots":[""],"rego_version":1}');
  });

  it('refuses a directory whose package lies outside its .manifest roots', async () => {
    const d = dir();
    writeFileSync(join(d, '.manifest'), '{"roots": ["authz", "roles", "x"]}');
    await expect(buildBundle(d)).resolves.toBeTruthy();
    writeFileSync(join(d, '.manifest'), '{"roots": ["authz", "x"]}');
    const err = await refusal(buildBundle(d));
    expect(err.code).toBe('bundle_roots');
    expect(err.message).toContain('data at /roles is outside');
    writeFileSync(join(d, '.manifest'), '{"roots": ["roles", "x"]}');
    expect((await refusal(buildBundle(d))).message).toContain('file authz.rego: package authz is outside');
  });
});

describe('what a bundle may not contain', () => {
  it('refuses .. entries, links, devices and names that appear twice', async () => {
    for (const [entries, what] of [
      [[{ name: '../evil.rego', body: 'package x' }], 'climbs out'],
      [[{ name: 'a/../../b/data.json', body: '{}' }], 'climbs out'],
      [[{ name: 'C:/x.rego', body: 'package x' }], 'drive letter'],
      [[{ name: 'data.json', type: 'symlink' as const, linkname: '/etc/passwd' }], 'symlink entry to /etc/passwd'],
      [[{ name: 'x.rego', body: 'package x' }, { name: 'y.rego', type: 'link' as const, linkname: 'x.rego' }], 'link entry'],
      [[{ name: 'f', type: 'fifo' as const }], 'fifo entry'],
      [[{ name: '/x.rego', body: 'package x' }, { name: './x.rego', body: 'package y' }], 'appears twice'],
    ] as const) {
      const err = await refusal(readBundle(await tarGz([...entries]), { name: 'evil' }));
      expect(err.code, what).toBe('bundle_unsafe_entry');
      expect(err.message).toContain(what);
    }
  });

  it('stops a gzip bomb at the uncompressed limit, and a file over the per-file limit', async () => {
    // 80 MiB of zeros inside a tar, a few hundred KiB once gzipped: past the 64 MiB default
    const tarHeader = Buffer.alloc(512);
    tarHeader.write('zeros/data.json', 0);
    const gz = createGzip();
    const chunks: Buffer[] = [];
    gz.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((r) => gz.on('end', r));
    gz.write(tarHeader);
    const mib = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 80; i++) gz.write(mib);
    gz.end();
    await ended;
    const bomb = Buffer.concat(chunks);
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const err = await refusal(readBundle(bomb, { name: 'bomb' }));
    expect(err.code).toBe('bundle_too_large');
    expect(err.message).toContain('decompresses to more than 67108864 bytes');
    const big = await tarGz([{ name: 'data.json', body: `{"x":"${'a'.repeat(5000)}"}` }]);
    const one = await refusal(readBundle(big, { name: 'big', limits: { maxFileBytes: 1000 } }));
    expect([one.code, one.file]).toEqual(['bundle_too_large', 'data.json']);
  });

  it('refuses what is not a gzipped tarball', async () => {
    expect((await refusal(readBundle(Buffer.from('hello'), { name: 'x' }))).code).toBe('bundle_corrupt');
  });
});

describe('manifest rules', () => {
  it('roots must not overlap; packages and data must lie within them', async () => {
    const overlap = await refusal(readBundle(await tarGz([{ name: '.manifest', body: '{"roots":["a/b","a"]}' }]), { name: 'm' }));
    expect([overlap.code, overlap.file]).toEqual(['bundle_roots', '.manifest']);
    await expect(readBundle(await tarGz([{ name: '.manifest', body: '{"roots":["a/b","a/bc"]}' }]), { name: 'm' })).resolves.toBeTruthy();
    const pkg = await refusal(readBundle(await tarGz([{ name: '.manifest', body: '{"roots":["a"]}' }, { name: 'p/x.rego', body: 'package b.c\nx := 1' }]), { name: 'm' }));
    expect([pkg.code, pkg.file]).toEqual(['bundle_roots', 'p/x.rego']);
    const data = await refusal(readBundle(await tarGz([{ name: '.manifest', body: '{"roots":["a/b"]}' }, { name: 'a/c/data.json', body: '{"x":1}' }]), { name: 'm' }));
    expect(data.message).toContain('data at /a/c is outside');
    await expect(readBundle(await tarGz([{ name: '.manifest', body: '{"roots":["a/b"]}' }, { name: 'a/data.json', body: '{"b":{"x":1}}' }]), { name: 'm' })).resolves.toBeTruthy();
  });

  it('reads modules in the manifest rego_version, with per-file overrides; a parse error names file and line', async () => {
    const v0 = 'package p\n\nallow { input.x == 1 }\n';
    const v1 = 'package q\n\nallow if input.x == 1\n';
    const b = await readBundle(await tarGz([{ name: '.manifest', body: '{"rego_version":0,"file_rego_versions":{"/v1/*.rego":1}}' }, { name: 'old.rego', body: v0 }, { name: 'v1/new.rego', body: v1 }]), { name: 'mixed' });
    expect(b.modules.map((m) => [m.path, m.regoVersion])).toEqual([['old.rego', 0], ['v1/new.rego', 1]]);
    const err = await refusal(readBundle(await tarGz([{ name: 'old.rego', body: v0 }]), { name: 'v1' }));
    expect([err.code, err.file]).toEqual(['bundle_parse_error', 'old.rego:3']);
    expect(err.message).toContain('`if` keyword is required');
  });

  it('refuses delta and Wasm bundles it cannot evaluate, and a manifest of the wrong shape', async () => {
    expect((await refusal(readBundle(await tarGz([{ name: 'patch.json', body: '{"data":[]}' }]), { name: 'd' }))).code).toBe('bundle_unsupported');
    expect((await refusal(readBundle(await tarGz([{ name: '.manifest', body: '{"wasm":[{"entrypoint":"a/b","module":"/policy.wasm"}]}' }]), { name: 'w' }))).code).toBe('bundle_unsupported');
    const bad = await refusal(readBundle(await tarGz([{ name: '.manifest', body: '{"revision": 7}' }]), { name: 'm' }));
    expect(bad.message).toContain('bundle m, file .manifest: revision must be a string');
  });
});

describe('canonical JSON, as OPA hashes structured files', () => {
  it('sorts keys by UTF-8 bytes, keeps number text and escapes as Go does', () => {
    expect(canonicalText(parseRawJSON('{"b": [1.0, 2e3, -0], "a": {"y": true, "x": null}}'))).toBe('{"a":{"x":null,"y":true},"b":[1.0,2e3,-0]}');
    expect(canonicalText(parseRawJSON('{"\uffff": 1, "\ud83d\ude00": 2}'))).toBe('{"\uffff":1,"\ud83d\ude00":2}');
    expect(canonicalText(parseRawJSON('"a\\u2028b\\u0001<&>"'))).toBe('"a\\u2028b\\u0001<&>"');
    expect(canonicalText(parseRawJSON('{"k": 1, "k": 2}'))).toBe('{"k":2}');
    expect(() => parseRawJSON('{"a": 1,}')).toThrow(/line 1, column 9/);
  });
});
