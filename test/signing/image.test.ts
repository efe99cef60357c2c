import { beforeAll, describe, expect, it } from 'vitest';

import type { ImageManifest, ImageReference } from '../../src/oci/types.js';
import {
  Annotations,
  attachBundle,
  attestImage,
  buildSimpleSigning,
  compileIdentity,
  generateKeyPair,
  loadPrivateKey,
  MediaTypes,
  parseTrustedRoot,
  type PrivateKey,
  signatureTag,
  signImage,
  type TrustedRoot,
  verifyImage,
} from '../../src/signing/index.js';

import { FakeSigstore } from './fake-sigstore.js';
import { MemoryRegistry } from './memory-registry.js';

const repo = (tag?: string): ImageReference => ({ registry: '127.0.0.1:5000', repository: 'team/app', ...(tag ? { tag } : {}) });
const keyOf = (algorithm: 'ecdsa-p256' | 'ed25519' = 'ecdsa-p256'): PrivateKey => loadPrivateKey(generateKeyPair(algorithm).privatePem, 'cosign.key');

async function sigManifest(reg: MemoryRegistry, digest: string): Promise<ImageManifest> {
  return (await reg.getManifest({ ...repo(), tag: signatureTag(digest) })).manifest as ImageManifest;
}

describe('cosign key signatures in the registry', () => {
  for (const algorithm of ['ecdsa-p256', 'ed25519'] as const) {
    it(`${algorithm}: sign writes cosign's .sig layout and verify accepts it`, async () => {
      const reg = new MemoryRegistry();
      const digest = await reg.pushImage(repo('v1'), 'module one');
      const key = keyOf(algorithm);
      const signed = await signImage(reg, repo('v1'), { key });
      expect(signed).toMatchObject({ digest, reference: `127.0.0.1:5000/team/app@${digest}`, tag: signatureTag(digest) });
      const m = await sigManifest(reg, digest);
      expect(m.mediaType).toBe(MediaTypes.ociManifest);
      expect(m.layers).toHaveLength(1);
      expect(m.layers[0]!.mediaType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
      expect(m.layers[0]!.annotations![Annotations.signature]).toMatch(/^[A-Za-z0-9+/]+=*$/);
      const payload = JSON.parse(Buffer.from(await reg.getBlob(repo(), m.layers[0]!.digest)).toString());
      expect(payload).toEqual({
        critical: { identity: { 'docker-reference': '127.0.0.1:5000/team/app' }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' },
        optional: null,
      });
      const v = await verifyImage(reg, repo('v1'), { kind: 'key', key: key.publicKey });
      expect(v.signatures).toHaveLength(1);
      expect(v.signatures[0]!.payload).toEqual(payload);
      expect(v.reasons).toEqual([]);
    });
  }

  it('a second signature is appended, not replacing the first; each key verifies its own', async () => {
    const reg = new MemoryRegistry();
    const digest = await reg.pushImage(repo('v1'), 'module');
    const [a, b] = [keyOf(), keyOf('ed25519')];
    await signImage(reg, repo('v1'), { key: a });
    await signImage(reg, repo('v1'), { key: b, annotations: { team: 'blue' } });
    expect((await sigManifest(reg, digest)).layers).toHaveLength(2);
    const va = await verifyImage(reg, repo('v1'), { kind: 'key', key: a.publicKey });
    expect(va.signatures).toHaveLength(1);
    expect(va.reasons).toEqual([expect.stringMatching(/layer 1: the signature does not verify with the key/)]);
    const vb = await verifyImage(reg, repo('v1'), { kind: 'key', key: b.publicKey });
    expect(vb.signatures[0]!.payload.optional).toEqual({ team: 'blue' });
  });

  it('an unsigned artifact has no candidates', async () => {
    const reg = new MemoryRegistry();
    await reg.pushImage(repo('v1'), 'module');
    const v = await verifyImage(reg, repo('v1'), { kind: 'key', key: keyOf().publicKey });
    expect(v).toMatchObject({ signatures: [], candidates: 0, reasons: [] });
  });

  it('a signature by the wrong key does not verify', async () => {
    const reg = new MemoryRegistry();
    await reg.pushImage(repo('v1'), 'module');
    await signImage(reg, repo('v1'), { key: keyOf() });
    const v = await verifyImage(reg, repo('v1'), { kind: 'key', key: keyOf().publicKey });
    expect(v.signatures).toEqual([]);
    expect(v.reasons[0]).toMatch(/^tag sha256-[0-9a-f]{64}\.sig layer 0: the signature does not verify with the key$/);
  });

  it('the tag moved: the old signature copied under the new digest does not count', async () => {
    const reg = new MemoryRegistry();
    const key = keyOf();
    const old = await reg.pushImage(repo('v1'), 'good module');
    await signImage(reg, repo('v1'), { key });
    const moved = await reg.pushImage(repo('v1'), 'evil module');
    // Someone copies the valid signature manifest to the new digest's signature tag.
    const sig = await reg.getManifest({ ...repo(), tag: signatureTag(old) });
    await reg.putManifest({ ...repo(), tag: signatureTag(moved) }, sig.bytes, sig.mediaType);
    const v = await verifyImage(reg, repo('v1'), { kind: 'key', key: key.publicKey });
    expect(v.digest).toBe(moved);
    expect(v.signatures).toEqual([]);
    expect(v.reasons[0]).toContain(`signs ${old}, not ${moved}`);
    // The old digest itself still verifies.
    expect((await verifyImage(reg, { ...repo(), digest: old }, { kind: 'key', key: key.publicKey })).signatures).toHaveLength(1);
  });

  it('a layer with a payload that is not simple signing is reported, not fatal', async () => {
    const reg = new MemoryRegistry();
    const digest = await reg.pushImage(repo('v1'), 'module');
    const key = keyOf();
    await signImage(reg, repo('v1'), { key });
    const junk = await reg.putBlob(repo(), Buffer.from('not json'), MediaTypes.simpleSigning);
    const m = await sigManifest(reg, digest);
    m.layers.push({ ...junk, annotations: { [Annotations.signature]: 'AAAA' } });
    await reg.putManifest({ ...repo(), tag: signatureTag(digest) }, Buffer.from(JSON.stringify(m)), MediaTypes.ociManifest);
    const v = await verifyImage(reg, repo('v1'), { kind: 'key', key: key.publicKey });
    expect(v.signatures).toHaveLength(1);
    expect(v.reasons).toEqual([expect.stringMatching(/layer 1: the payload is not JSON/)]);
  });
});

describe('Sigstore bundle referrers (cosign --new-bundle-format)', () => {
  for (const supportsReferrers of [true, false]) {
    it(`sign attaches a DSSE bundle referrer and verify finds it (${supportsReferrers ? 'referrers API' : 'tag-schema fallback'})`, async () => {
      const reg = new MemoryRegistry({ supportsReferrers });
      const digest = await reg.pushImage(repo('v1'), 'module');
      const key = keyOf();
      const signed = await signImage(reg, repo('v1'), { key, newBundleFormat: true });
      expect(signed.referrer).toMatch(/^sha256:/);
      const refs = await reg.referrers(repo(), digest);
      expect(refs).toHaveLength(1);
      expect(refs[0]!.artifactType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
      const m = (await reg.getManifest({ ...repo(), digest: signed.referrer! })).manifest as ImageManifest;
      expect(m).toMatchObject({ artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2 }, subject: { digest } });
      expect(m.annotations).toMatchObject({ 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1' });
      const v = await verifyImage(reg, repo('v1'), { kind: 'key', key: key.publicKey });
      expect(v.signatures).toHaveLength(1);
      expect(v.signatures[0]!.payload.critical).toEqual({ identity: { 'docker-reference': '127.0.0.1:5000/team/app' }, image: { 'docker-manifest-digest': digest }, type: 'https://sigstore.dev/cosign/sign/v1' });
      expect((await verifyImage(reg, repo('v1'), { kind: 'key', key: keyOf().publicKey })).signatures).toEqual([]);
    });
  }

  it('a bundle for another digest attached to this one does not count', async () => {
    const reg = new MemoryRegistry();
    const key = keyOf();
    const a = await reg.pushImage(repo('a'), 'module a');
    const b = await reg.pushImage(repo('b'), 'module b');
    const signed = await signImage(reg, repo('a'), { key, newBundleFormat: true });
    const m = (await reg.getManifest({ ...repo(), digest: signed.referrer! })).manifest as ImageManifest;
    const desc = await reg.resolve(repo('b'));
    await reg.putManifest(repo(), Buffer.from(JSON.stringify({ ...m, subject: { mediaType: desc.mediaType, digest: b, size: desc.size } })), MediaTypes.ociManifest);
    const v = await verifyImage(reg, repo('b'), { kind: 'key', key: key.publicKey });
    expect(v.signatures).toEqual([]);
    expect(v.reasons[0]).toMatch(new RegExp(`the statement is about sha256:${a.slice(7)}, not ${b}`));
  });
});

describe('attestations', () => {
  const provenance = { buildType: 'https://skiff.dev/build/v1', builder: { id: 'ci' } };

  for (const newBundleFormat of [false, true]) {
    it(`attest by key and verify the predicate back (${newBundleFormat ? 'bundle referrer' : '.att tag'})`, async () => {
      const reg = new MemoryRegistry();
      const digest = await reg.pushImage(repo('v1'), 'module');
      const key = keyOf();
      await attestImage(reg, repo('v1'), { key, predicateType: 'https://slsa.dev/provenance/v1', predicate: provenance, newBundleFormat });
      if (!newBundleFormat) {
        const m = (await reg.getManifest({ ...repo(), tag: signatureTag(digest).replace(/\.sig$/, '.att') })).manifest as ImageManifest;
        expect(m.layers[0]).toMatchObject({ mediaType: 'application/vnd.dsse.envelope.v1+json', annotations: { [Annotations.signature]: '', predicateType: 'https://slsa.dev/provenance/v1' } });
      }
      const v = await verifyImage(reg, repo('v1'), { kind: 'key', key: key.publicKey }, { signatures: false, attestations: true });
      expect(v.attestations).toHaveLength(1);
      expect(v.attestations[0]).toMatchObject({ predicateType: 'https://slsa.dev/provenance/v1', statement: { predicate: provenance, subject: [{ name: '127.0.0.1:5000/team/app', digest: { sha256: digest.slice(7) } }] } });
      expect(v.signatures).toEqual([]);
      const wrong = await verifyImage(reg, repo('v1'), { kind: 'key', key: keyOf().publicKey }, { signatures: false, attestations: true });
      expect(wrong.attestations).toEqual([]);
      expect(wrong.reasons).toHaveLength(1);
    });
  }
});

describe('keyless signatures in the registry', () => {
  let fake: FakeSigstore;
  let root: TrustedRoot;
  beforeAll(async () => {
    fake = await FakeSigstore.create();
    root = await parseTrustedRoot(fake.trustedRoot(), 'trusted_root.json');
  });
  const who = { subject: 'release@skiff.test', issuer: 'https://accounts.skiff.test' };

  it('a cosign keyless .sig layer (certificate, chain, Rekor bundle annotations) verifies against the trusted root', async () => {
    const reg = new MemoryRegistry();
    const digest = await reg.pushImage(repo('v1'), 'module');
    const payload = buildSimpleSigning('127.0.0.1:5000/team/app', digest);
    const l = await fake.cosignLayer(payload, who);
    const blob = await reg.putBlob(repo(), payload, MediaTypes.simpleSigning);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: await reg.putBlob(repo(), Buffer.from('{}'), MediaTypes.ociConfig),
      layers: [{ ...blob, annotations: { [Annotations.signature]: l.signature, [Annotations.certificate]: l.certificate, [Annotations.chain]: l.chain, [Annotations.rekorBundle]: l.bundle } }],
    };
    await reg.putManifest({ ...repo(), tag: signatureTag(digest) }, Buffer.from(JSON.stringify(manifest)), MediaTypes.ociManifest);
    const check = { kind: 'keyless' as const, trustedRoot: root, identities: [compileIdentity(who)] };
    const v = await verifyImage(reg, repo('v1'), check);
    expect(v.reasons).toEqual([]);
    expect(v.signatures[0]!.signer).toMatchObject({ kind: 'keyless', subject: who.subject, issuer: who.issuer });
    expect(v.signatures[0]!.payload.optional).toMatchObject({ Subject: who.subject, Issuer: who.issuer });
    const other = await verifyImage(reg, repo('v1'), { ...check, identities: [compileIdentity({ ...who, subject: 'someone@else' })] });
    expect(other.signatures).toEqual([]);
    expect(other.reasons[0]).toMatch(/subject "release@skiff.test" is not "someone@else"/);
  });

  it('a keyless DSSE bundle referrer verifies, and a key-signed one is refused keyless', async () => {
    const reg = new MemoryRegistry();
    const digest = await reg.pushImage(repo('v1'), 'module');
    const { buildStatement, IN_TOTO_PAYLOAD_TYPE, SIGN_PREDICATE_TYPE } = await import('../../src/signing/index.js');
    const statement = buildStatement('127.0.0.1:5000/team/app', digest, SIGN_PREDICATE_TYPE, {});
    const bundle = await fake.signDsse(IN_TOTO_PAYLOAD_TYPE, statement, who);
    await attachBundle(reg, repo('v1'), await reg.resolve(repo('v1')), bundle, SIGN_PREDICATE_TYPE);
    await signImage(reg, repo('v1'), { key: keyOf(), newBundleFormat: true });
    const v = await verifyImage(reg, repo('v1'), { kind: 'keyless', trustedRoot: root, identities: [compileIdentity(who)] });
    expect(v.signatures).toHaveLength(1);
    expect(v.signatures[0]!.signer.subject).toBe(who.subject);
    expect(v.reasons).toEqual([expect.stringMatching(/signed with a key .* verify it with --key/)]);
  });
});
