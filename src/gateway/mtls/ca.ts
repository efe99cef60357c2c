import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SkiffError } from '../../util/errors.js';
import { bitString, bool, explicit, implicit, integer, octets, oid, seq, set, time, utf8 } from './der.js';

const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

/** IssuedCertificate is a certificate with its private key, both PEM, and when it expires. */
export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
  spiffeId?: string;
}

const SPIFFE = /^spiffe:\/\/[a-z0-9.-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/;

/** spiffeId builds the identity Skiff gives a workload: `spiffe://TRUST_DOMAIN/ns/NAMESPACE/fn/NAME`. */
export function spiffeId(trustDomain: string, namespace: string, name: string, kind: 'fn' | 'node' = 'fn'): string {
  const id = `spiffe://${trustDomain}/ns/${namespace}/${kind}/${name}`;
  if (!SPIFFE.test(id)) throw new SkiffError('invalid_identity', `"${id}" is not a valid SPIFFE ID: use a lower-case trust domain and names without spaces`);
  return id;
}

function name(cn: string, org: string): Buffer {
  return seq(set(seq(oid(OID.organization), utf8(org))), set(seq(oid(OID.commonName), utf8(cn))));
}

function ext(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

function keyId(spki: Buffer): Buffer {
  return createHash('sha1').update(spki).digest();
}

function pem(label: string, der: Buffer): string {
  return `-----BEGIN ${label}-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

interface CertInput {
  subject: Buffer;
  subjectKey: KeyObject;
  issuer: Buffer;
  issuerKey: KeyObject;
  issuerSpki?: Buffer;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  uri?: string;
  dns?: string[];
}

function buildCertificate(c: CertInput): Buffer {
  const spki = c.subjectKey.export({ type: 'spki', format: 'der' });
  const sigAlg = seq(oid(OID.ecdsaWithSHA256));
  const exts = [
    ext(OID.basicConstraints, true, c.isCa ? seq(bool(true), integer(0)) : seq()),
    // keyCertSign+cRLSign for the CA; digitalSignature+keyAgreement for leaves (bit order is MSB first).
    ext(OID.keyUsage, true, c.isCa ? bitString(Buffer.from([0x06]), 1) : bitString(Buffer.from([0x88]), 3)),
    ext(OID.subjectKeyId, false, octets(keyId(spki))),
  ];
  if (c.issuerSpki) exts.push(ext(OID.authorityKeyId, false, seq(implicit(0, keyId(c.issuerSpki)))));
  if (!c.isCa) {
    exts.push(ext(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth))));
    const names = [...(c.uri ? [implicit(6, Buffer.from(c.uri))] : []), ...(c.dns ?? []).map((d) => implicit(2, Buffer.from(d)))];
    if (names.length) exts.push(ext(OID.subjectAltName, c.uri !== undefined, seq(...names)));
  }
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const tbs = seq(explicit(0, integer(2)), integer(serial), sigAlg, c.issuer, seq(time(c.notBefore), time(c.notAfter)), c.subject, spki, explicit(3, seq(...exts)));
  const signature = sign('sha256', tbs, c.issuerKey);
  return seq(tbs, sigAlg, bitString(signature));
}

/**
 * InternalCA is Skiff's own certificate authority: an ECDSA P-256 root created on first start (kept
 * in `dir` when given, so identities survive restarts) that issues short-lived workload certificates
 * carrying SPIFFE IDs as URI subject alternative names.
 *
 * @example
 * const ca = InternalCA.loadOrCreate({ trustDomain: 'skiff.local', dir: '.skiff/ca' });
 * const cert = ca.issue(spiffeId('skiff.local', 'default', 'hello'), { ttlMs: 3_600_000 });
 */
export class InternalCA {
  readonly trustDomain: string;
  readonly certPem: string;
  private readonly key: KeyObject;
  private readonly spki: Buffer;
  private readonly subject: Buffer;

  private constructor(trustDomain: string, certPem: string, key: KeyObject) {
    this.trustDomain = trustDomain;
    this.certPem = certPem;
    this.key = key;
    const x = new X509Certificate(certPem);
    this.spki = x.publicKey.export({ type: 'spki', format: 'der' });
    this.subject = name(`Skiff CA ${trustDomain}`, 'Skiff');
  }

  /** create makes a new root, valid for `ttlMs` (ten years by default). */
  static create(trustDomain: string, ttlMs = 10 * 365 * 24 * 3600 * 1000, now = new Date()): InternalCA {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const subject = name(`Skiff CA ${trustDomain}`, 'Skiff');
    const der = buildCertificate({ subject, subjectKey: publicKey, issuer: subject, issuerKey: privateKey, notBefore: new Date(now.getTime() - 60_000), notAfter: new Date(now.getTime() + ttlMs), isCa: true });
    return new InternalCA(trustDomain, pem('CERTIFICATE', der), privateKey);
  }

  /** loadOrCreate reads `dir/ca.crt` and `dir/ca.key`, creating them (key mode 0600) on first start. */
  static loadOrCreate(opts: { trustDomain: string; dir?: string }): InternalCA {
    if (!opts.dir) return InternalCA.create(opts.trustDomain);
    const certFile = join(opts.dir, 'ca.crt');
    const keyFile = join(opts.dir, 'ca.key');
    if (existsSync(certFile) && existsSync(keyFile)) {
      return new InternalCA(opts.trustDomain, readFileSync(certFile, 'utf8'), createPrivateKey(readFileSync(keyFile, 'utf8')));
    }
    const ca = InternalCA.create(opts.trustDomain);
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    writeFileSync(keyFile, ca.key.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    writeFileSync(certFile, ca.certPem);
    return ca;
  }

  /** issue creates a key pair and a leaf certificate for a SPIFFE ID (plus optional DNS names). */
  issue(id: string, opts: { ttlMs?: number; dnsNames?: string[]; now?: Date } = {}): IssuedCertificate {
    if (!SPIFFE.test(id) || !id.startsWith(`spiffe://${this.trustDomain}/`)) throw new SkiffError('invalid_identity', `cannot issue for "${id}": it must be a SPIFFE ID in trust domain ${this.trustDomain}`);
    const now = opts.now ?? new Date();
    const ttl = opts.ttlMs ?? 3_600_000;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const notBefore = new Date(now.getTime() - 60_000);
    const notAfter = new Date(now.getTime() + ttl);
    const der = buildCertificate({ subject: name(id.slice(id.lastIndexOf('/') + 1), 'Skiff workload'), subjectKey: publicKey, issuer: this.subject, issuerKey: this.key, issuerSpki: this.spki, notBefore, notAfter, isCa: false, uri: id, dns: opts.dnsNames });
    return { certPem: pem('CERTIFICATE', der), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, notBefore, notAfter, spiffeId: id };
  }
}

/** peerSpiffeId reads the SPIFFE ID from a peer certificate's subjectaltname string (`URI:spiffe://...`). */
export function peerSpiffeId(subjectaltname: string | undefined): string | undefined {
  if (!subjectaltname) return undefined;
  for (const part of subjectaltname.split(', ')) if (part.startsWith('URI:spiffe://')) return part.slice(4);
  return undefined;
}
