/**
 * FakeSigstore is an offline Sigstore for tests: a Fulcio-like CA (root + intermediate) issuing
 * short-lived leaf certificates with Fulcio's OIDC issuer extensions and an embedded SCT from a CT
 * log, a Rekor-like log (hashedrekord and dsse entries with a signed entry timestamp, an RFC 6962
 * inclusion proof and a signed checkpoint), an RFC 3161 timestamp authority, the `trusted_root.json`
 * trusting all of them, and bundles in the v0.1, v0.2 and v0.3 shapes. `@sigstore/verify` then
 * verifies what it makes for real; nothing here is trusted by the code under test except through
 * the trusted root it writes.
 */
import { createHash, type KeyObject, randomBytes, sign as nodeSign, webcrypto } from 'node:crypto';

import { json as sigjson, X509Certificate as SigX509 } from '@sigstore/core';

import type { SerializedBundle, SerializedTlogEntry } from '../../src/signing/sigstore.js';

import { explicit, generalizedTime, int, octets, oid, seq, set, tlv, utf8 } from './der.js';
import * as x509 from './x509.js';


const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const OID_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1';
const OID_ISSUER_V2 = '1.3.6.1.4.1.57264.1.8';
const OID_SCT_LIST = '1.3.6.1.4.1.11129.2.4.2';
const CODE_SIGNING = '1.3.6.1.5.5.7.3.3';
const TIME_STAMPING = '1.3.6.1.5.5.7.3.8';
const MINUTE = 60_000;

interface KeyPair {
  crypto: webcrypto.CryptoKeyPair;
  privateKey: KeyObject;
  spki: Buffer;
}

async function keyPair(): Promise<KeyPair> {
  const crypto = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const { KeyObject: KO } = await import('node:crypto');
  return { crypto, privateKey: KO.from(crypto.privateKey), spki: Buffer.from(await webcrypto.subtle.exportKey('spki', crypto.publicKey)) };
}

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const serial = (): string => `01${randomBytes(15).toString('hex')}`;

/** A certificate issued by the fake Fulcio, with the key it certifies. */
export interface IssuedCertificate {
  der: Buffer;
  pem: string;
  privateKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
}

/** How the fake Fulcio issues a signing certificate. */
export interface CertificateOptions {
  /** the SAN: an email (`a@b`) or a URI (`https://...`) */
  subject: string;
  issuer: string;
  notBefore?: Date;
  notAfter?: Date;
  /** embed an SCT from the fake CT log (default true) */
  sct?: boolean;
}

/** How a bundle is made: who signs, when the log and the TSA say it happened, what goes in. */
export interface SignOptions extends Partial<CertificateOptions> {
  version?: '0.1' | '0.2' | '0.3';
  /** the time the log integrates the entry (and the TSA stamps); default: 1 h ago, with the certificate valid around it */
  signedAt?: Date;
  /** which log proofs to include (default both) */
  tlog?: 'both' | 'promise' | 'proof' | 'none';
  /** add an RFC 3161 timestamp over the signature */
  tsa?: boolean;
  /** sign with this certificate rather than a fresh one */
  certificate?: IssuedCertificate;
}

interface Ca {
  keys: KeyPair;
  cert: x509.X509Certificate;
  der: Buffer;
}

export class FakeSigstore {
  readonly rekorUrl = 'https://rekor.skiff.test';
  private readonly leaves: Buffer[] = [];

  private constructor(
    private readonly root: Ca,
    private readonly intermediate: Ca,
    private readonly rekor: KeyPair,
    private readonly ctlog: KeyPair,
    private readonly tsaRoot: Ca,
    private readonly tsaLeaf: Ca,
    readonly start: Date,
  ) {
    // A log that already holds a few entries, so inclusion proofs have some depth.
    for (let i = 0; i < 5; i++) this.leaves.push(randomBytes(40));
  }

  /** create builds a new PKI, valid from `start` (default: a day ago) for ten years. */
  static async create(start = new Date(Date.now() - 24 * 60 * MINUTE)): Promise<FakeSigstore> {
    const end = new Date(start.getTime() + 10 * 365 * 24 * 60 * MINUTE);
    const root = await ca('skiff-test fulcio root', undefined, start, end, 1);
    const intermediate = await ca('skiff-test fulcio intermediate', root, start, end, 0);
    const tsaRoot = await ca('skiff-test tsa root', undefined, start, end, 0);
    const tsaKeys = await keyPair();
    const tsaCert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: 'CN=skiff-test tsa, O=skiff.test',
      issuer: tsaRoot.cert.subject,
      notBefore: start,
      notAfter: end,
      publicKey: tsaKeys.crypto.publicKey,
      signingKey: tsaRoot.keys.crypto.privateKey,
      signingAlgorithm: EC,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([TIME_STAMPING], true),
        await x509.SubjectKeyIdentifierExtension.create(tsaKeys.crypto.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(tsaRoot.keys.crypto.publicKey),
      ],
    });
    const tsaLeaf = { keys: tsaKeys, cert: tsaCert, der: Buffer.from(tsaCert.rawData) };
    return new FakeSigstore(root, intermediate, await keyPair(), await keyPair(), tsaRoot, tsaLeaf, start);
  }

  /** rootCertificatePem is the fake Fulcio root, PEM. */
  get rootCertificatePem(): string {
    return this.root.cert.toString('pem');
  }

  /**
   * trustedRoot writes Sigstore's TrustedRoot JSON trusting this PKI. `only` leaves parts out (a
   * root without the TSA, say) to test what happens without them.
   */
  trustedRoot(only: { tsa?: boolean; ctlog?: boolean; tlog?: boolean } = {}): Record<string, unknown> {
    const validFor = { start: this.start.toISOString() };
    const logKey = (k: KeyPair, url: string) => ({
      baseUrl: url,
      hashAlgorithm: 'SHA2_256',
      publicKey: { rawBytes: b64(k.spki), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor },
      logId: { keyId: b64(sha256(k.spki)) },
    });
    return {
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: only.tlog === false ? [] : [logKey(this.rekor, this.rekorUrl)],
      certificateAuthorities: [{
        subject: { organization: 'skiff.test', commonName: 'skiff-test fulcio' },
        uri: 'https://fulcio.skiff.test',
        certChain: { certificates: [{ rawBytes: b64(this.intermediate.der) }, { rawBytes: b64(this.root.der) }] },
        validFor,
      }],
      ctlogs: only.ctlog === false ? [] : [logKey(this.ctlog, 'https://ctfe.skiff.test')],
      timestampAuthorities: only.tsa === false ? [] : [{
        subject: { organization: 'skiff.test', commonName: 'skiff-test tsa' },
        uri: 'https://tsa.skiff.test',
        certChain: { certificates: [{ rawBytes: b64(this.tsaLeaf.der) }, { rawBytes: b64(this.tsaRoot.der) }] },
        validFor,
      }],
    };
  }

  /** issue makes a Fulcio-style leaf: code signing, the SAN, both issuer extensions, an embedded SCT. */
  async issue(opts: CertificateOptions): Promise<IssuedCertificate> {
    const keys = await keyPair();
    const notBefore = opts.notBefore ?? new Date(Date.now() - 61 * MINUTE);
    const notAfter = opts.notAfter ?? new Date(notBefore.getTime() + 10 * MINUTE);
    const san = /^[a-z][a-z0-9+.-]*:\/\//i.test(opts.subject) ? { type: 'url' as const, value: opts.subject } : { type: 'email' as const, value: opts.subject };
    const base = {
      serialNumber: serial(),
      subject: '',
      issuer: this.intermediate.cert.subject,
      notBefore,
      notAfter,
      publicKey: keys.crypto.publicKey,
      signingKey: this.intermediate.keys.crypto.privateKey,
      signingAlgorithm: EC,
    };
    const extensions: x509.Extension[] = [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([CODE_SIGNING], false),
      await x509.SubjectKeyIdentifierExtension.create(keys.crypto.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(this.intermediate.keys.crypto.publicKey),
      new x509.SubjectAlternativeNameExtension([san], true),
      new x509.Extension(OID_ISSUER_V1, false, Buffer.from(opts.issuer, 'ascii')),
      new x509.Extension(OID_ISSUER_V2, false, utf8(opts.issuer)),
    ];
    let cert = await x509.X509CertificateGenerator.create({ ...base, extensions });
    if (opts.sct !== false) {
      // An SCT signs the precertificate: this very TBS without the SCT extension, which goes last.
      const tbs = SigX509.parse(Buffer.from(cert.rawData)).tbsCertificate.toDER();
      const sctList = this.sctList(tbs, notBefore);
      cert = await x509.X509CertificateGenerator.create({ ...base, extensions: [...extensions, new x509.Extension(OID_SCT_LIST, false, octets(sctList))] });
    }
    const der = Buffer.from(cert.rawData);
    return { der, pem: cert.toString('pem'), privateKey: keys.privateKey, notBefore, notAfter };
  }

  private sctList(tbs: Buffer, when: Date): Buffer {
    const logId = sha256(this.ctlog.spki);
    const ts = Buffer.alloc(8);
    ts.writeBigUInt64BE(BigInt(when.getTime()));
    const u24 = Buffer.from([(tbs.length >> 16) & 0xff, (tbs.length >> 8) & 0xff, tbs.length & 0xff]);
    const signed = Buffer.concat([Buffer.from([0, 0]), ts, Buffer.from([0, 1]), sha256(this.intermediate.keys.spki), u24, tbs, Buffer.from([0, 0])]);
    const sig = nodeSign('sha256', signed, this.ctlog.privateKey);
    const sigLen = Buffer.alloc(2);
    sigLen.writeUInt16BE(sig.length);
    const sct = Buffer.concat([Buffer.from([0]), logId, ts, Buffer.from([0, 0]), Buffer.from([4, 3]), sigLen, sig]);
    const one = Buffer.concat([Buffer.from([sct.length >> 8, sct.length & 0xff]), sct]);
    return Buffer.concat([Buffer.from([one.length >> 8, one.length & 0xff]), one]);
  }

  /**
   * logEntry appends a body to the fake Rekor and returns its bundle entry: a signed entry timestamp
   * (SET) and/or an inclusion proof against a signed checkpoint of the tree as it now is.
   */
  logEntry(kind: 'hashedrekord' | 'dsse', body: Record<string, unknown>, integratedTime: Date, which: 'both' | 'promise' | 'proof' = 'both'): SerializedTlogEntry {
    const canonical = Buffer.from(sigjson.canonicalize(body), 'utf8');
    const index = this.leaves.length;
    this.leaves.push(canonical);
    const logId = sha256(this.rekor.spki);
    const time = Math.floor(integratedTime.getTime() / 1000);
    const entry: SerializedTlogEntry = {
      logIndex: String(index),
      logId: { keyId: b64(logId) },
      kindVersion: { kind, version: '0.0.1' },
      integratedTime: String(time),
      canonicalizedBody: b64(canonical),
    };
    if (which !== 'proof') {
      const payload = sigjson.canonicalize({ body: b64(canonical), integratedTime: time, logIndex: index, logID: logId.toString('hex') });
      entry.inclusionPromise = { signedEntryTimestamp: b64(nodeSign('sha256', Buffer.from(payload), this.rekor.privateKey)) };
    }
    if (which !== 'promise') {
      const hashes = this.leaves.map((l) => sha256(Buffer.from([0]), l));
      const root = treeHash(hashes);
      const note = `rekor.skiff.test - 1\n${hashes.length}\n${b64(root)}\n`;
      const sig = Buffer.concat([logId.subarray(0, 4), nodeSign('sha256', Buffer.from(note), this.rekor.privateKey)]);
      entry.inclusionProof = {
        logIndex: String(index),
        rootHash: b64(root),
        treeSize: String(hashes.length),
        hashes: auditPath(index, hashes).map(b64),
        checkpoint: { envelope: `${note}\n\u2014 rekor.skiff.test ${b64(sig)}\n` },
      };
    }
    return entry;
  }

  /** timestamp asks the fake TSA for an RFC 3161 timestamp response over `data` (a signature). */
  timestamp(data: Uint8Array, at: Date): Buffer {
    const sha256Alg = seq(oid('2.16.840.1.101.3.4.2.1'));
    const tstInfo = seq(int(1), oid('1.3.6.1.4.1.57264.2'), seq(sha256Alg, octets(sha256(data))), int(randomBytes(8)), generalizedTime(at));
    const leaf = SigX509.parse(Buffer.from(this.tsaLeaf.der));
    const attrs = [
      seq(oid('1.2.840.113549.1.9.3'), set(oid('1.2.840.113549.1.9.16.1.4'))),
      seq(oid('1.2.840.113549.1.9.4'), set(octets(sha256(tstInfo)))),
    ];
    const signedAttrs = set(...attrs);
    const signature = nodeSign('sha256', signedAttrs, this.tsaLeaf.keys.privateKey);
    const signerInfo = seq(
      int(1),
      seq(leaf.tbsCertificate.subs[3]!.toDER(), leaf.tbsCertificate.subs[1]!.toDER()),
      sha256Alg,
      tlv(0xa0, Buffer.concat(attrs)),
      seq(oid('1.2.840.10045.4.3.2')),
      octets(signature),
    );
    const signedData = seq(int(3), set(sha256Alg), seq(oid('1.2.840.113549.1.9.16.1.4'), explicit(0, octets(tstInfo))), tlv(0xa0, this.tsaLeaf.der), set(signerInfo));
    return seq(seq(int(0)), seq(oid('1.2.840.113549.1.7.2'), explicit(0, signedData)));
  }

  /** signBlob signs an artifact keyless and returns its bundle (a message signature with a hashedrekord entry). */
  async signBlob(artifact: Uint8Array, opts: SignOptions = {}): Promise<SerializedBundle> {
    const { cert, at } = await this.certificateFor(opts);
    const signature = nodeSign('sha256', artifact, cert.privateKey);
    const digest = sha256(artifact);
    const body = {
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: { data: { hash: { algorithm: 'sha256', value: digest.toString('hex') } }, signature: { content: b64(signature), publicKey: { content: b64(Buffer.from(cert.pem)) } } },
    };
    return this.bundle(opts, cert, at, signature, body, 'hashedrekord', { messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: b64(digest) }, signature: b64(signature) } });
  }

  /** signDsse signs a DSSE envelope keyless (an in-toto statement, say) and returns its bundle with a dsse entry. */
  async signDsse(payloadType: string, payload: Uint8Array, opts: SignOptions = {}): Promise<SerializedBundle> {
    const { cert, at } = await this.certificateFor(opts);
    const type = Buffer.from(payloadType);
    const pae = Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
    const signature = nodeSign('sha256', pae, cert.privateKey);
    const envelope = { payloadType, payload: b64(payload), signatures: [{ keyid: '', sig: b64(signature) }] };
    const body = {
      apiVersion: '0.0.1',
      kind: 'dsse',
      spec: {
        envelopeHash: { algorithm: 'sha256', value: sha256(Buffer.from(JSON.stringify(envelope))).toString('hex') },
        payloadHash: { algorithm: 'sha256', value: sha256(payload).toString('hex') },
        signatures: [{ signature: b64(signature), verifier: b64(Buffer.from(cert.pem)) }],
      },
    };
    return this.bundle(opts, cert, at, signature, body, 'dsse', { dsseEnvelope: envelope });
  }

  /**
   * cosignLayer signs a payload as cosign's keyless `.sig` layers carry it: the signature, the
   * certificate and chain PEM, and the Rekor bundle (SET) annotation.
   */
  async cosignLayer(payload: Uint8Array, opts: SignOptions = {}): Promise<{ signature: string; certificate: string; chain: string; bundle: string }> {
    const b = await this.signBlob(payload, { ...opts, tlog: 'promise', version: '0.1' });
    const entry = b.verificationMaterial.tlogEntries[0]!;
    const rekorBundle = {
      SignedEntryTimestamp: entry.inclusionPromise!.signedEntryTimestamp,
      Payload: { body: entry.canonicalizedBody, integratedTime: Number(entry.integratedTime), logIndex: Number(entry.logIndex), logID: Buffer.from(entry.logId.keyId, 'base64').toString('hex') },
    };
    const certs = b.verificationMaterial.x509CertificateChain!.certificates.map((c) => new x509.X509Certificate(Buffer.from(c.rawBytes, 'base64')).toString('pem'));
    return { signature: b.messageSignature!.signature, certificate: certs[0]!, chain: certs.slice(1).join('\n'), bundle: JSON.stringify(rekorBundle) };
  }

  private async certificateFor(opts: SignOptions): Promise<{ cert: IssuedCertificate; at: Date }> {
    const at = opts.signedAt ?? new Date(Date.now() - 60 * MINUTE);
    const cert = opts.certificate ?? (await this.issue({
      subject: opts.subject ?? 'builder@skiff.test',
      issuer: opts.issuer ?? 'https://accounts.skiff.test',
      notBefore: opts.notBefore ?? new Date(at.getTime() - MINUTE),
      notAfter: opts.notAfter ?? new Date(at.getTime() + 9 * MINUTE),
      sct: opts.sct,
    }));
    return { cert, at };
  }

  private bundle(opts: SignOptions, cert: IssuedCertificate, at: Date, signature: Buffer, body: Record<string, unknown>, kind: 'hashedrekord' | 'dsse', content: Partial<SerializedBundle>): SerializedBundle {
    const version = opts.version ?? '0.3';
    const which = opts.tlog ?? 'both';
    const material: SerializedBundle['verificationMaterial'] =
      version === '0.3'
        ? { certificate: { rawBytes: b64(cert.der) }, tlogEntries: [] }
        : { x509CertificateChain: { certificates: [{ rawBytes: b64(cert.der) }, { rawBytes: b64(this.intermediate.der) }] }, tlogEntries: [] };
    if (which !== 'none') material.tlogEntries.push(this.logEntry(kind, body, at, which));
    material.timestampVerificationData = { rfc3161Timestamps: opts.tsa ? [{ signedTimestamp: b64(this.timestamp(signature, at)) }] : [] };
    const mediaType = version === '0.3' ? 'application/vnd.dev.sigstore.bundle.v0.3+json' : `application/vnd.dev.sigstore.bundle+json;version=${version}`;
    return { mediaType, verificationMaterial: material, ...content } as SerializedBundle;
  }
}

async function ca(cn: string, parent: Ca | undefined, notBefore: Date, notAfter: Date, pathLength: number): Promise<Ca> {
  const keys = await keyPair();
  const name = `CN=${cn}, O=skiff.test`;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: name,
    issuer: parent ? parent.cert.subject : name,
    notBefore,
    notAfter,
    publicKey: keys.crypto.publicKey,
    signingKey: (parent ?? { keys }).keys.crypto.privateKey,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, pathLength, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.crypto.publicKey),
      ...(parent ? [await x509.AuthorityKeyIdentifierExtension.create(parent.keys.crypto.publicKey)] : []),
    ],
  });
  return { keys, cert, der: Buffer.from(cert.rawData) };
}

const node = (l: Buffer, r: Buffer): Buffer => sha256(Buffer.from([1]), l, r);

function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** treeHash is RFC 6962's Merkle tree hash over leaf hashes. */
function treeHash(leaves: Buffer[]): Buffer {
  if (leaves.length === 1) return leaves[0]!;
  const k = split(leaves.length);
  return node(treeHash(leaves.slice(0, k)), treeHash(leaves.slice(k)));
}

/** auditPath is RFC 6962's inclusion proof for leaf m, from the leaf up. */
function auditPath(m: number, leaves: Buffer[]): Buffer[] {
  if (leaves.length <= 1) return [];
  const k = split(leaves.length);
  return m < k ? [...auditPath(m, leaves.slice(0, k)), treeHash(leaves.slice(k))] : [...auditPath(m - k, leaves.slice(k)), treeHash(leaves.slice(0, k))];
}
