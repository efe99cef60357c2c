import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRegistryClient, parseReference, pushWasmModule, type RegistryClient } from '../../src/oci/index.js';
import { UpstreamGuard } from '../../src/security/index.js';
import { attachBundle, buildStatement, IN_TOTO_PAYLOAD_TYPE, parseTrustedRoot, SIGN_PREDICATE_TYPE, signatureTag, VerdictCache, verifyArtifact } from '../../src/signing/index.js';
import { hasRegistryTools, skopeo, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { runCli } from '../helpers/run-cli.js';
import { wat } from '../helpers/wat.js';

import { FakeSigstore } from './fake-sigstore.js';

const tools = hasRegistryTools();

/**
 * skiff sign / verify / attest against a real registry (Debian's docker-registry 2.8, which has no
 * referrers API, so bundle referrers go through the client's tag-schema fallback), with skopeo as
 * the independent reader of what was written.
 */
describe.skipIf(!tools)('signing against docker-registry', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  let dir: string;
  const at = (n: string) => join(dir, n);
  const flags = () => ['--insecure-registry', reg.host];
  const module = (n: number) => wat(`(module (global i32 (i32.const ${n})) (func (export "_start")))`);
  async function push(tag: string, n: number): Promise<string> {
    return (await pushWasmModule(client, parseReference(`${reg.host}/team/app:${tag}`), await module(n))).manifest.digest;
  }

  beforeAll(async () => {
    reg = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'skiff-signing-reg-'));
    client = createRegistryClient({ upstreams: UpstreamGuard.permissive(), insecure: [reg.host] });
    expect((await runCli('generate-key-pair', '--output-key-prefix', at('cosign'))).code).toBe(0);
    expect((await runCli('generate-key-pair', '--output-key-prefix', at('other'), '--algorithm', 'ed25519')).code).toBe(0);
  }, 60_000);
  afterAll(async () => {
    client?.close();
    await reg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('sign writes the .sig tag skopeo reads, and verify prints the payloads and exits 0', async () => {
    const digest = await push('v1', 1);
    const ref = `${reg.host}/team/app:v1`;
    const signed = await runCli('sign', ref, '--key', at('cosign.key'), ...flags());
    expect(signed.code).toBe(0);
    expect(signed.out).toBe(`${reg.host}/team/app@${digest}\n`);
    const raw = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/team/app:${signatureTag(digest)}`]));
    expect(raw.layers[0]).toMatchObject({ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', annotations: { 'dev.cosignproject.cosign/signature': expect.any(String) } });
    const v = await runCli('verify', '--key', at('cosign.pub'), ref, ...flags());
    expect(v.code).toBe(0);
    expect(JSON.parse(v.out)).toEqual([{ critical: { identity: { 'docker-reference': `${reg.host}/team/app` }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' }, optional: null }]);
    expect(v.err).toContain(`Verification for ${reg.host}/team/app@${digest} --`);
  });

  it('verify exits 1 naming the artifact: unsigned, wrong key, unreachable registry', async () => {
    const digest = await push('unsigned', 2);
    const unsigned = await runCli('verify', '--key', at('cosign.pub'), `${reg.host}/team/app:unsigned`, ...flags());
    expect(unsigned.code).toBe(1);
    expect(unsigned.err).toBe(`skiff verify: ${reg.host}/team/app@${digest}: no signatures found (looked for tag ${signatureTag(digest)} and Sigstore bundle referrers)\n`);
    const wrong = await runCli('verify', '--key', at('other.pub'), `${reg.host}/team/app:v1`, ...flags());
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/no signature verified:\n {2}tag sha256-[0-9a-f]{64}\.sig layer 0: the signature does not verify with the key/);
    const gone = await runCli('verify', '--key', at('cosign.pub'), '127.0.0.1:9/team/app:v1', '--insecure-registry', '127.0.0.1:9');
    expect(gone.code).toBe(1);
    expect(gone.err).toMatch(/^skiff verify: /);
  });

  it('a moved tag fails even with the old signature copied to the new digest', async () => {
    const old = await push('moving', 3);
    expect((await runCli('sign', `${reg.host}/team/app:moving`, '--key', at('cosign.key'), ...flags())).code).toBe(0);
    const moved = await push('moving', 4);
    const sig = await client.getManifest(parseReference(`${reg.host}/team/app:${signatureTag(old)}`));
    await client.putManifest(parseReference(`${reg.host}/team/app:${signatureTag(moved)}`), sig.bytes, sig.mediaType);
    const v = await runCli('verify', '--key', at('cosign.pub'), `${reg.host}/team/app:moving`, ...flags());
    expect(v.code).toBe(1);
    expect(v.err).toContain(`signs ${old}, not ${moved}`);
    expect((await runCli('verify', '--key', at('cosign.pub'), `${reg.host}/team/app@${old}`, ...flags())).code).toBe(0);
  });

  it('--new-bundle-format attaches a bundle referrer (tag-schema fallback) that verify finds', async () => {
    const digest = await push('bundled', 5);
    const signed = await runCli('sign', '--new-bundle-format', '--key', at('cosign.key'), `${reg.host}/team/app:bundled`, ...flags());
    expect(signed.code).toBe(0);
    expect((await client.referrers(parseReference(`${reg.host}/team/app`), digest)).map((d) => d.artifactType)).toEqual(['application/vnd.dev.sigstore.bundle.v0.3+json']);
    const v = await runCli('verify', '--key', at('cosign.pub'), `${reg.host}/team/app:bundled`, ...flags());
    expect(v.code).toBe(0);
    expect(JSON.parse(v.out)[0].critical.type).toBe('https://sigstore.dev/cosign/sign/v1');
    expect((await runCli('verify', '--key', at('other.pub'), `${reg.host}/team/app:bundled`, ...flags())).code).toBe(1);
  });

  it('attest and verify-attestation hand back the SLSA predicate', async () => {
    await push('attested', 6);
    writeFileSync(at('provenance.json'), JSON.stringify({ buildType: 'https://skiff.dev/build/v1', builder: { id: 'https://ci.skiff.test' } }));
    const ref = `${reg.host}/team/app:attested`;
    expect((await runCli('attest', ref, '--key', at('cosign.key'), '--predicate', at('provenance.json'), '--type', 'slsaprovenance1', ...flags())).code).toBe(0);
    const v = await runCli('verify-attestation', ref, '--key', at('cosign.pub'), '--type', 'slsaprovenance1', ...flags());
    expect(v.code).toBe(0);
    expect(JSON.parse(v.out.trim())).toMatchObject({ predicateType: 'https://slsa.dev/provenance/v1', predicate: { builder: { id: 'https://ci.skiff.test' } } });
    expect((await runCli('verify-attestation', ref, '--key', at('cosign.pub'), '--type', 'spdxjson', ...flags())).code).toBe(1);
  });

  it('verifyArtifact: keyless bundle referrer under a trusted root, through the real client and the cache', async () => {
    const fake = await FakeSigstore.create();
    const root = await parseTrustedRoot(fake.trustedRoot(), 'fake');
    const digest = await push('keyless', 7);
    const ref = parseReference(`${reg.host}/team/app:keyless`);
    const bundle = await fake.signDsse(IN_TOTO_PAYLOAD_TYPE, buildStatement(`${reg.host}/team/app`, digest, SIGN_PREDICATE_TYPE, {}), { subject: 'https://ci.skiff.test/release', issuer: 'https://token.skiff.test' });
    await attachBundle(client, ref, await client.resolve(ref), bundle, SIGN_PREDICATE_TYPE);
    const cache = new VerdictCache();
    const authorities = [{ name: 'ci', keyless: { identities: [{ subject: 'https://ci.skiff.test/release', issuer: 'https://token.skiff.test' }] } }];
    const v = await verifyArtifact(client, ref, authorities, { defaultTrustedRoot: root, cache });
    expect(v).toMatchObject({ verified: true, authority: 'ci', digest });
    expect((await verifyArtifact(client, ref, authorities, { defaultTrustedRoot: root, cache })).verified).toBe(true);
    expect(cache.hits).toBe(1);
  });
});
