import { beforeAll, describe, expect, it } from 'vitest';

import {
  buildStatement,
  type BundleCheck,
  compileIdentity,
  generateKeyPair,
  IN_TOTO_PAYLOAD_TYPE,
  keyDsseBundle,
  keyHint,
  loadPrivateKey,
  pae,
  parseBundle,
  parseTrustedRoot,
  type SerializedBundle,
  signBlob,
  signBytes,
  type TrustedRoot,
  verifyBundle,
} from '../../src/signing/index.js';

import { FakeSigstore } from './fake-sigstore.js';

const ARTIFACT = Buffer.from('the module bytes\n');
const WHO = { subject: 'builder@skiff.test', issuer: 'https://accounts.skiff.test' };
const MINUTE = 60_000;

let fake: FakeSigstore;
let root: TrustedRoot;

beforeAll(async () => {
  fake = await FakeSigstore.create();
  root = await parseTrustedRoot(fake.trustedRoot(), 'trusted_root.json');
});

const keyless = (identity: Parameters<typeof compileIdentity>[0] = WHO, extra: Partial<BundleCheck> = {}): BundleCheck =>
  ({ kind: 'keyless', trustedRoot: root, identities: [compileIdentity(identity)], ...extra }) as BundleCheck;

/** check round-trips the bundle through JSON text, as a file or a registry blob would carry it. */
async function check(bundle: SerializedBundle, c: BundleCheck, artifact: Uint8Array | undefined = ARTIFACT) {
  return verifyBundle(await parseBundle(JSON.parse(JSON.stringify(bundle)), 'bundle.json'), c, artifact);
}

describe('keyless bundles verify against a trusted root with @sigstore/verify', () => {
  for (const version of ['0.1', '0.2', '0.3'] as const) {
    it(`v${version}: a message signature with SET, inclusion proof and SCT`, async () => {
      const r = await check(await fake.signBlob(ARTIFACT, { version }), keyless());
      expect(r.signer).toMatchObject({ kind: 'keyless', subject: WHO.subject, issuer: WHO.issuer });
      expect(r.signer.certificate).toMatch(/^-----BEGIN CERTIFICATE-----/);
      expect(r.times).toHaveLength(1);
    });
  }

  it('a DSSE in-toto statement, with its payload handed back', async () => {
    const statement = buildStatement('file', 'sha256:' + '0'.repeat(64), 'https://slsa.dev/provenance/v1', { buildType: 'x' });
    const r = await check(await fake.signDsse(IN_TOTO_PAYLOAD_TYPE, statement), keyless(), undefined);
    expect(r.dsse?.payload.toString()).toBe(statement.toString());
  });

  it('an inclusion proof alone (no SET) when an RFC 3161 timestamp gives the time', async () => {
    const r = await check(await fake.signBlob(ARTIFACT, { tlog: 'proof', tsa: true }), keyless());
    expect(r.times).toHaveLength(1);
  });

  it('an expired certificate whose log entry time is inside its validity (the usual case)', async () => {
    // Fulcio certificates live ten minutes: by verification time they have long expired.
    const r = await check(await fake.signBlob(ARTIFACT, { signedAt: new Date(Date.now() - 5 * 60 * MINUTE) }), keyless());
    expect(r.signer.subject).toBe(WHO.subject);
  });

  it('a URI identity matched by regexp, issuer by regexp', async () => {
    const subject = 'https://github.com/skiff/app/.github/workflows/release.yml@refs/tags/v1.2.0';
    const bundle = await fake.signBlob(ARTIFACT, { subject, issuer: 'https://token.actions.githubusercontent.com' });
    const r = await check(bundle, keyless({ subjectRegExp: '^https://github\\.com/skiff/app/\\.github/workflows/release\\.yml@refs/tags/v', issuerRegExp: 'githubusercontent\\.com$' }));
    expect(r.signer.subject).toBe(subject);
  });
});

describe('keyless bundles that must not verify', () => {
  it('a certificate expired before the log entry was made', async () => {
    const at = new Date(Date.now() - 60 * MINUTE);
    const bundle = await fake.signBlob(ARTIFACT, { signedAt: at, notBefore: new Date(at.getTime() - 30 * MINUTE), notAfter: new Date(at.getTime() - 20 * MINUTE) });
    await expect(check(bundle, keyless())).rejects.toThrow(/bundle\.json: .*certificate is not valid or expired at the specified date/);
  });

  it('a certificate not yet valid at the log entry time', async () => {
    const at = new Date(Date.now() - 60 * MINUTE);
    const bundle = await fake.signBlob(ARTIFACT, { signedAt: at, notBefore: new Date(at.getTime() + 5 * MINUTE), notAfter: new Date(at.getTime() + 15 * MINUTE) });
    await expect(check(bundle, keyless())).rejects.toThrow(/certificate is not valid or expired/);
  });

  it('a tampered artifact', async () => {
    await expect(check(await fake.signBlob(ARTIFACT), keyless(), Buffer.from('the module bytes, changed\n'))).rejects.toThrow(/message digest is not the sha256 of the artifact/);
  });

  it('a tampered signature in the bundle file', async () => {
    const b = await fake.signBlob(ARTIFACT);
    const sig = Buffer.from(b.messageSignature!.signature, 'base64');
    sig[sig.length - 3]! ^= 0x01;
    b.messageSignature!.signature = sig.toString('base64');
    await expect(check(b, keyless())).rejects.toThrow(/bundle\.json: /);
  });

  it('a tampered DSSE payload', async () => {
    const b = await fake.signDsse(IN_TOTO_PAYLOAD_TYPE, buildStatement('f', 'sha256:' + '1'.repeat(64), 'https://slsa.dev/provenance/v1', {}));
    b.dsseEnvelope!.payload = Buffer.from(buildStatement('f', 'sha256:' + '2'.repeat(64), 'https://slsa.dev/provenance/v1', {})).toString('base64');
    await expect(check(b, keyless(), undefined)).rejects.toThrow(/DSSE payload hash mismatch|signature verification failed/);
  });

  it('a wrong subject, a wrong issuer, a regexp that does not match', async () => {
    const b = await fake.signBlob(ARTIFACT);
    await expect(check(b, keyless({ ...WHO, subject: 'mallory@skiff.test' }))).rejects.toThrow(/subject "builder@skiff.test" is not "mallory@skiff.test"/);
    await expect(check(b, keyless({ ...WHO, issuer: 'https://other.example' }))).rejects.toThrow(/issuer "https:\/\/accounts.skiff.test" is not "https:\/\/other.example"/);
    await expect(check(b, keyless({ subjectRegExp: '^release@', issuer: WHO.issuer }))).rejects.toThrow(/does not match \/\^release@\//);
  });

  it('a log entry for a different signature (the tlog entry does not match)', async () => {
    const a = await fake.signBlob(ARTIFACT);
    const other = await fake.signBlob(Buffer.from('something else'));
    a.verificationMaterial.tlogEntries = other.verificationMaterial.tlogEntries;
    await expect(check(a, keyless())).rejects.toThrow(/signature mismatch|digest mismatch/);
  });

  it('a log entry whose body was edited (SET and inclusion proof break)', async () => {
    const b = await fake.signBlob(ARTIFACT);
    const entry = b.verificationMaterial.tlogEntries[0]!;
    const body = JSON.parse(Buffer.from(entry.canonicalizedBody, 'base64').toString()) as { spec: { data: { hash: { value: string } } } };
    body.spec.data.hash.value = 'f'.repeat(64);
    entry.canonicalizedBody = Buffer.from(JSON.stringify(body)).toString('base64');
    await expect(check(b, keyless())).rejects.toThrow(/inclusion promise could not be verified|TLOG/);
  });

  it('a certificate from a CA the trusted root does not list', async () => {
    const stranger = await FakeSigstore.create();
    await expect(check(await stranger.signBlob(ARTIFACT), keyless())).rejects.toThrow(/Failed to verify certificate chain|inclusion promise could not be verified/);
  });

  it('no SCT in the certificate, unless --insecure-ignore-sct', async () => {
    const b = await fake.signBlob(ARTIFACT, { sct: false });
    await expect(check(b, keyless())).rejects.toThrow(/expected 1 SCTs, got 0/);
    await expect(check(b, keyless(WHO, { ignoreSct: true } as Partial<BundleCheck>))).resolves.toBeDefined();
  });

  it('no log entry and no timestamp', async () => {
    await expect(check(await fake.signBlob(ARTIFACT, { version: '0.3', tlog: 'none' }), keyless())).rejects.toThrow(/expected 1 timestamps, got 0/);
  });

  it('a bundle signed with a key, checked keyless', async () => {
    const key = loadPrivateKey(generateKeyPair().privatePem, 'k');
    await expect(check(signBlob(key, ARTIFACT), keyless())).rejects.toThrow(/signed with a key .*verify it with --key/);
  });

  it('a bundle missing what its version requires', async () => {
    const b = await fake.signBlob(ARTIFACT, { version: '0.1', tlog: 'proof' });
    await expect(parseBundle(b, 'old.json')).rejects.toThrow(/old\.json: not a valid v0\.1 bundle: missing or empty .*inclusionPromise/);
    await expect(parseBundle({ ...b, mediaType: 'application/json' }, 'x.json')).rejects.toThrow(/x\.json: mediaType "application\/json" is not a Sigstore bundle/);
  });
});

describe('key-signed bundles', () => {
  for (const algorithm of ['ecdsa-p256', 'ed25519'] as const) {
    it(`${algorithm}: a message signature verifies with the public key and fails with another`, async () => {
      const pair = generateKeyPair(algorithm);
      const key = loadPrivateKey(pair.privatePem, 'k');
      const bundle = signBlob(key, ARTIFACT);
      expect(bundle.verificationMaterial.tlogEntries).toEqual([]);
      const r = await check(bundle, { kind: 'key', key: key.publicKey });
      expect(r.signer.kind).toBe('key');
      const other = loadPrivateKey(generateKeyPair(algorithm).privatePem, 'k2');
      await expect(check(bundle, { kind: 'key', key: other.publicKey })).rejects.toThrow(/signature verification failed/);
      await expect(check(bundle, { kind: 'key', key: key.publicKey }, Buffer.from('other'))).rejects.toThrow(/message digest/);
    });

    it(`${algorithm}: a DSSE bundle verifies with the key`, async () => {
      const key = loadPrivateKey(generateKeyPair(algorithm).privatePem, 'k');
      const statement = buildStatement('f', 'sha256:' + 'a'.repeat(64), 'https://slsa.dev/provenance/v1', {});
      const bundle = keyDsseBundle(keyHint(key.publicKey), IN_TOTO_PAYLOAD_TYPE, statement, signBytes(key, pae(IN_TOTO_PAYLOAD_TYPE, statement)));
      await expect(check(bundle, { kind: 'key', key: key.publicKey }, undefined)).resolves.toMatchObject({ signer: { kind: 'key' } });
    });
  }

  it('a keyless bundle checked with a key verifies only with the certificate\'s own key', async () => {
    const b = await fake.signBlob(ARTIFACT);
    const key = loadPrivateKey(generateKeyPair().privatePem, 'k');
    await expect(check(b, { kind: 'key', key: key.publicKey })).rejects.toThrow(/signature verification failed/);
  });
});

describe('trusted roots', () => {
  it('refuses a file that is not a trusted root, naming it', async () => {
    await expect(parseTrustedRoot({ mediaType: 'nope' }, 'root.json')).rejects.toThrow(/root\.json: mediaType "nope" is not a Sigstore trusted root/);
    await expect(parseTrustedRoot([], 'root.json')).rejects.toThrow(/a trusted root is a JSON object/);
    const broken = fake.trustedRoot() as { tlogs: Array<{ publicKey: { rawBytes: string } }> };
    broken.tlogs[0]!.publicKey.rawBytes = 'AAAA';
    await expect(parseTrustedRoot(broken, 'root.json')).rejects.toThrow(/root\.json: cannot read the trusted root/);
  });

  it('without the TSA, a proof-only bundle has no verified time', async () => {
    const noTsa = await parseTrustedRoot(fake.trustedRoot({ tsa: false }), 'r.json');
    const b = await fake.signBlob(ARTIFACT, { tlog: 'proof', tsa: true });
    await expect(check(b, { kind: 'keyless', trustedRoot: noTsa, identities: [compileIdentity(WHO)] })).rejects.toThrow(/timestamp could not be verified/);
  });
});
