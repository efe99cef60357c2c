import { beforeAll, describe, expect, it } from 'vitest';

import type { ArtifactVerifier } from '../../src/admission/index.js';
import type { ImageReference } from '../../src/oci/types.js';
import {
  attachBundle,
  attestImage,
  type Authority,
  buildStatement,
  generateKeyPair,
  IN_TOTO_PAYLOAD_TYPE,
  loadPrivateKey,
  parseTrustedRoot,
  SIGN_PREDICATE_TYPE,
  signImage,
  SigstoreVerifier,
  type TrustedRoot,
  VerdictCache,
  verifyArtifact,
} from '../../src/signing/index.js';

import { FakeSigstore } from './fake-sigstore.js';
import { MemoryRegistry } from './memory-registry.js';

const ref = (tag: string): ImageReference => ({ registry: '127.0.0.1:5000', repository: 'team/app', tag });
const pair = () => {
  const p = generateKeyPair();
  return { key: loadPrivateKey(p.privatePem, 'k'), pub: p.publicPem };
};

let fake: FakeSigstore;
let root: TrustedRoot;
beforeAll(async () => {
  fake = await FakeSigstore.create();
  root = await parseTrustedRoot(fake.trustedRoot(), 'fake-root');
});

describe('verifyArtifact', () => {
  it('passes on the first satisfied authority, in the order given, and names it', async () => {
    const reg = new MemoryRegistry();
    await reg.pushImage(ref('v1'), 'm');
    const [a, b] = [pair(), pair()];
    await signImage(reg, ref('v1'), { key: b.key });
    const v = await verifyArtifact(reg, ref('v1'), [{ name: 'team-a', key: { data: a.pub } }, { name: 'team-b', key: { data: b.pub } }]);
    expect(v).toMatchObject({ verified: true, authority: 'team-b' });
    expect(v.reasons).toEqual([expect.stringMatching(/^authority team-a: no signature verified: tag sha256-.*\.sig layer 0: the signature does not verify with the key$/)]);
    expect(v.signatures).toEqual([expect.objectContaining({ authority: 'team-b' })]);
  });

  it('fails an unsigned artifact with a reason naming it', async () => {
    const reg = new MemoryRegistry();
    const digest = await reg.pushImage(ref('v1'), 'm');
    const v = await verifyArtifact(reg, ref('v1'), [{ key: { data: pair().pub } }]);
    expect(v).toMatchObject({ verified: false, digest, reference: `127.0.0.1:5000/team/app@${digest}` });
    expect(v.reasons).toEqual([`authority authority-0: no signatures found for 127.0.0.1:5000/team/app@${digest}`]);
  });

  it('reports an unusable authority rather than throwing', async () => {
    const reg = new MemoryRegistry();
    await reg.pushImage(ref('v1'), 'm');
    const v = await verifyArtifact(reg, ref('v1'), [
      { name: 'bad-pem', key: { data: 'not a key' } },
      { name: 'no-root', keyless: { identities: [{ subject: 'a@b', issuer: 'https://i' }] } },
      { name: 'no-ids', keyless: { identities: [], trustRootRef: 'x' } },
    ], { trustedRoots: { x: root } });
    expect(v.verified).toBe(false);
    expect(v.reasons).toEqual([
      expect.stringMatching(/^authority bad-pem: authority bad-pem key\.data: not a PEM file/),
      'authority no-root: keyless verification needs a trusted root and none is configured',
      'authority no-ids: keyless.identities is empty: name at least one issuer and subject',
    ]);
  });

  it('keyless authorities match identities under the named trusted root', async () => {
    const reg = new MemoryRegistry();
    const digest = await reg.pushImage(ref('v1'), 'm');
    const statement = buildStatement('127.0.0.1:5000/team/app', digest, SIGN_PREDICATE_TYPE, {});
    await attachBundle(reg, ref('v1'), await reg.resolve(ref('v1')), await fake.signDsse(IN_TOTO_PAYLOAD_TYPE, statement, { subject: 'ci@skiff.test' }), SIGN_PREDICATE_TYPE);
    const authority: Authority = { name: 'ci', keyless: { trustRootRef: 'fake', identities: [{ issuer: 'https://accounts.skiff.test', subjectRegExp: '^ci@' }] } };
    const v = await verifyArtifact(reg, ref('v1'), [authority], { trustedRoots: { fake: root } });
    expect(v).toMatchObject({ verified: true, authority: 'ci', signatures: [{ signer: { subject: 'ci@skiff.test' } }] });
    const wrong = await verifyArtifact(reg, ref('v1'), [{ ...authority, keyless: { ...authority.keyless!, identities: [{ issuer: 'https://accounts.skiff.test', subject: 'release@skiff.test' }] } }], { trustedRoots: { fake: root } });
    expect(wrong.verified).toBe(false);
    expect(wrong.reasons[0]).toMatch(/subject "ci@skiff.test" is not "release@skiff.test"/);
  });

  it('attestation requirements: predicates come back for policy, and the checker can refuse them', async () => {
    const reg = new MemoryRegistry();
    await reg.pushImage(ref('v1'), 'm');
    const k = pair();
    await attestImage(reg, ref('v1'), { key: k.key, predicateType: 'https://slsa.dev/provenance/v1', predicate: { builder: { id: 'trusted-ci' } } });
    const authority: Authority = { name: 'prov', key: { data: k.pub }, attestations: [{ name: 'slsa', predicateType: 'https://slsa.dev/provenance/v1', policy: { type: 'rego', data: 'package x' } }] };
    const seen: unknown[] = [];
    const v = await verifyArtifact(reg, ref('v1'), [authority], {
      checkAttestation: async ({ statement }) => {
        seen.push(statement.predicate);
        return (statement.predicate as { builder: { id: string } }).builder.id === 'trusted-ci' ? undefined : 'builder is not trusted-ci';
      },
    });
    expect(seen).toEqual([{ builder: { id: 'trusted-ci' } }]);
    expect(v).toMatchObject({ verified: true, authority: 'prov', attestations: [{ name: 'slsa', predicateType: 'https://slsa.dev/provenance/v1', predicate: { builder: { id: 'trusted-ci' } } }] });
    const refused = await verifyArtifact(reg, ref('v1'), [authority], { checkAttestation: async () => 'builder is not trusted-ci' });
    expect(refused.verified).toBe(false);
    expect(refused.reasons).toEqual(['authority prov: attestation slsa: the policy refused every https://slsa.dev/provenance/v1 attestation: builder is not trusted-ci']);
    const missing = await verifyArtifact(reg, ref('v1'), [{ ...authority, attestations: [{ name: 'sbom', predicateType: 'https://spdx.dev/Document' }] }]);
    expect(missing.reasons[0]).toMatch(/^authority prov: attestation sbom: no verified attestation of type https:\/\/spdx\.dev\/Document/);
  });
});

describe('VerdictCache', () => {
  it('reuses a positive verdict per (digest, authority) and re-checks when the authority changes', async () => {
    const reg = new MemoryRegistry();
    await reg.pushImage(ref('v1'), 'm');
    const k = pair();
    await signImage(reg, ref('v1'), { key: k.key });
    const cache = new VerdictCache();
    const authorities = [{ key: { data: k.pub } }];
    expect((await verifyArtifact(reg, ref('v1'), authorities, { cache })).verified).toBe(true);
    const before = reg.calls.length;
    expect((await verifyArtifact(reg, ref('v1'), authorities, { cache })).verified).toBe(true);
    // Only the tag is resolved again: the verdict for that digest comes from the cache.
    expect(reg.calls.slice(before)).toEqual(['resolve', 'getManifest v1']);
    expect([cache.hits, cache.misses]).toEqual([1, 1]);
    await verifyArtifact(reg, ref('v1'), [{ key: { data: pair().pub } }], { cache });
    expect(cache.misses).toBe(2);
  });

  it('does not keep a refusal by default: a signature added after it is seen at once', async () => {
    const reg = new MemoryRegistry();
    await reg.pushImage(ref('v1'), 'm');
    const k = pair();
    const cache = new VerdictCache();
    expect((await verifyArtifact(reg, ref('v1'), [{ key: { data: k.pub } }], { cache })).verified).toBe(false);
    await signImage(reg, ref('v1'), { key: k.key });
    expect((await verifyArtifact(reg, ref('v1'), [{ key: { data: k.pub } }], { cache })).verified).toBe(true);
  });

  it('a moved tag is a new digest: the cached verdict of the old one does not carry over', async () => {
    const reg = new MemoryRegistry();
    await reg.pushImage(ref('v1'), 'good');
    const k = pair();
    await signImage(reg, ref('v1'), { key: k.key });
    const cache = new VerdictCache();
    expect((await verifyArtifact(reg, ref('v1'), [{ key: { data: k.pub } }], { cache })).verified).toBe(true);
    await reg.pushImage(ref('v1'), 'evil');
    const v = await verifyArtifact(reg, ref('v1'), [{ key: { data: k.pub } }], { cache });
    expect(v.verified).toBe(false);
  });

  it('expires entries after the TTL and shares one verification between concurrent callers', async () => {
    let now = 1_000;
    const cache = new VerdictCache({ ttlMs: 100, now: () => now });
    let runs = 0;
    const verify = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 5));
      return { satisfied: true, reasons: [], signatures: [], attestations: [] };
    };
    await Promise.all([cache.get('k', verify), cache.get('k', verify), cache.get('k', verify)]);
    expect(runs).toBe(1);
    await cache.get('k', verify);
    expect(runs).toBe(1);
    now += 101;
    await cache.get('k', verify);
    expect(runs).toBe(2);
  });
});

describe('SigstoreVerifier, the ImagePolicy enforcer\'s ArtifactVerifier', () => {
  it('fits the enforcer\'s interface and answers per (digest, authority), from the cache the second time', async () => {
    const reg = new MemoryRegistry();
    const digest = await reg.pushImage(ref('v1'), 'm');
    const k = pair();
    await signImage(reg, ref('v1'), { key: k.key });
    const verifier: ArtifactVerifier = new SigstoreVerifier({ registry: reg });
    expect(await verifier.resolve('oci://127.0.0.1:5000/team/app:v1')).toBe(digest);
    const reference = '127.0.0.1:5000/team/app:v1';
    const ok = await verifier.verify({ reference, digest, authority: { name: 'release', key: { pem: k.pub }, attestations: [] } });
    expect(ok).toEqual({ verified: true, reason: undefined, attestations: [] });
    await verifier.verify({ reference, digest, authority: { name: 'release', key: { pem: k.pub }, attestations: [] } });
    expect((verifier as SigstoreVerifier).cache.hits).toBe(1);
    const wrong = await verifier.verify({ reference, digest, authority: { name: 'other', key: { pem: pair().pub }, attestations: [] } });
    expect(wrong.verified).toBe(false);
    expect(wrong.reason).toMatch(/signature does not verify with the key/);
    const bad = await verifier.verify({ reference, digest, authority: { name: 'x', key: { pem: k.pub, hashAlgorithm: 'sha512' }, attestations: [] } });
    expect(bad.reason).toMatch(/hashAlgorithm sha512 is not supported/);
  });

  it('an authority listing attestations is satisfied by them alone and hands back their predicates', async () => {
    const reg = new MemoryRegistry();
    const digest = await reg.pushImage(ref('v1'), 'm');
    const k = pair();
    await attestImage(reg, ref('v1'), { key: k.key, predicateType: 'https://slsa.dev/provenance/v1', predicate: { builder: { id: 'ci' } } });
    const verifier = new SigstoreVerifier({ registry: reg });
    const v = await verifier.verify({ reference: '127.0.0.1:5000/team/app:v1', digest, authority: { name: 'prov', key: { pem: k.pub }, attestations: ['https://slsa.dev/provenance/v1'] } });
    expect(v).toEqual({ verified: true, reason: undefined, attestations: [{ predicateType: 'https://slsa.dev/provenance/v1', predicate: { builder: { id: 'ci' } } }] });
    const sbom = await verifier.verify({ reference: '127.0.0.1:5000/team/app:v1', digest, authority: { name: 'prov', key: { pem: k.pub }, attestations: ['https://spdx.dev/Document'] } });
    expect(sbom.verified).toBe(false);
  });

  it('keyless: the trust root arrives as a document and is parsed once', async () => {
    const reg = new MemoryRegistry();
    const digest = await reg.pushImage(ref('v1'), 'm');
    const statement = buildStatement('127.0.0.1:5000/team/app', digest, SIGN_PREDICATE_TYPE, {});
    await attachBundle(reg, ref('v1'), await reg.resolve(ref('v1')), await fake.signDsse(IN_TOTO_PAYLOAD_TYPE, statement, { subject: 'ci@skiff.test' }), SIGN_PREDICATE_TYPE);
    const verifier = new SigstoreVerifier({ registry: reg });
    const authority = { name: 'ci', keyless: { identities: [{ subject: 'ci@skiff.test', issuer: 'https://accounts.skiff.test' }], trustedRoot: fake.trustedRoot() }, attestations: [] };
    expect((await verifier.verify({ reference: '127.0.0.1:5000/team/app:v1', digest, authority })).verified).toBe(true);
    const broken = await verifier.verify({ reference: '127.0.0.1:5000/team/app:v1', digest, authority: { ...authority, name: 'b', keyless: { ...authority.keyless, trustedRoot: { mediaType: 'x' } } } });
    expect(broken.reason).toMatch(/authority b trust root: mediaType "x" is not a Sigstore trusted root/);
  });
});
