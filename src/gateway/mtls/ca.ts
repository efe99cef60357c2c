import { createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate as NodeCertificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

import type { Extension, X509Certificate } from '@peculiar/x509';

import { SkiffError } from '../../util/errors.js';

import { createCsr } from './csr.js';
import { ALGORITHM, generateKeys, loadX509, pem, privateKeyPem, type X509 } from './library.js';
import { inTrustDomain } from './spiffe.js';

/** IssuedCertificate is a certificate with its private key, both PEM, and when it expires. */
export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
  spiffeId?: string;
}

/** SignedCertificate is what the CA returns for a certificate request: the key stayed with the requester. */
export type SignedCertificate = Omit<IssuedCertificate, 'keyPem'> & { spiffeId: string };

/** CertificateRequestError: a PKCS#10 request the CA will not sign, and why. */
export class CertificateRequestError extends SkiffError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_csr', message, options);
  }
}

const SUBJECT_ALT_NAME = '2.5.29.17';

/** Backdating of notBefore, so that a peer whose clock is slightly behind accepts a fresh certificate. */
const CLOCK_SKEW_MS = 60_000;

// DNS names a request may add beside its SPIFFE ID (letters, digits, hyphens, dots; no wildcards).
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * distinguishedName is an O and a CN, in that order, as UTF8Strings: the shape of every name this CA
 * has written, so that certificates issued now chain to a root created by an earlier version.
 */
function distinguishedName(org: string, cn: string): Array<Record<string, Array<{ utf8String: string }>>> {
  return [{ '2.5.4.10': [{ utf8String: org }] }, { '2.5.4.3': [{ utf8String: cn }] }];
}

/**
 * serialNumber is 16 random bytes with the top bit clear: positive, unpredictable, exactly 16 octets.
 * The first octet is never zero either: DER drops a leading zero octet, so a serial starting 00 8x
 * would be written as its shorter, minimal form or, left as given, as an encoding that is not minimal.
 */
function serialNumber(): string {
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f || 0x01;
  return serial.toString('hex');
}

/**
 * InternalCA is Skiff's own certificate authority: an ECDSA P-256 root created on first use (kept in
 * `dir` when given, so identities survive restarts) that signs short-lived workload certificates
 * carrying SPIFFE IDs as URI subject alternative names. Building and signing certificates is
 * asynchronous (WebCrypto); the certificate library is loaded by the first CA that is created or loaded.
 *
 * @example
 * const ca = await InternalCA.loadOrCreate({ trustDomain: 'skiff.local', dir: '.skiff/ca' });
 * const cert = await ca.issue(spiffeId('skiff.local', 'default', 'hello'), { ttlMs: 3_600_000 });
 */
export class InternalCA {
  private constructor(
    private readonly x509: X509,
    readonly trustDomain: string,
    readonly certPem: string,
    private readonly cert: X509Certificate,
    private readonly key: webcrypto.CryptoKey,
    /** The root's subject key identifier, which every leaf names as its authority key identifier. */
    private readonly keyId: string,
  ) {}

  /** create makes a new root, valid for `ttlMs` (ten years by default). */
  static async create(trustDomain: string, ttlMs = 10 * 365 * 24 * 3600 * 1000, now = new Date()): Promise<InternalCA> {
    return (await InternalCA.createWithKey(trustDomain, { ttlMs, now })).ca;
  }

  /**
   * createWithKey makes a new root and returns its private key as PKCS#8 PEM too, for a caller that
   * keeps the CA somewhere other than a directory (a cluster keeps it in its store). `label` is added
   * to the common name, so that roots replacing one another are told apart by name as well as by key.
   */
  static async createWithKey(trustDomain: string, opts: { ttlMs?: number; now?: Date; label?: string } = {}): Promise<{ ca: InternalCA; keyPem: string }> {
    const ttlMs = opts.ttlMs ?? 10 * 365 * 24 * 3600 * 1000;
    const now = opts.now ?? new Date();
    const x = await loadX509();
    const keys = await generateKeys();
    const name = distinguishedName('Skiff', `Skiff CA ${trustDomain}${opts.label ? ` ${opts.label}` : ''}`);
    const ski = await x.SubjectKeyIdentifierExtension.create(keys.publicKey);
    const cert = await x.X509CertificateGenerator.create({
      serialNumber: serialNumber(),
      subject: new x.Name(name),
      issuer: new x.Name(name),
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      notAfter: new Date(now.getTime() + ttlMs),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        // A root that signs leaves only: no intermediate CA below it (pathLenConstraint 0).
        new x.BasicConstraintsExtension(true, 0, true),
        new x.KeyUsagesExtension(x.KeyUsageFlags.keyCertSign | x.KeyUsageFlags.cRLSign, true),
        ski,
      ],
    });
    const ca = new InternalCA(x, trustDomain, pem('CERTIFICATE', cert.rawData), cert, keys.privateKey, ski.keyId);
    return { ca, keyPem: await privateKeyPem(keys.privateKey) };
  }

  /**
   * load reads a root from its PEM certificate and PKCS#8 private key, checking that they belong
   * together, that the certificate is a CA and that it has not expired. `where` names the files in errors.
   */
  static async load(trustDomain: string, certPem: string, keyPem: string, where = 'the CA files'): Promise<InternalCA> {
    const fail = (why: string, cause?: unknown): never => {
      throw new SkiffError('invalid_ca', `${where}: ${why}; move them away to have a new internal CA created`, { cause });
    };
    let nodeCert: NodeCertificate;
    let pkcs8: Buffer;
    try {
      nodeCert = new NodeCertificate(certPem);
      const privateKey = createPrivateKey(keyPem);
      if (!createPublicKey(privateKey).equals(nodeCert.publicKey)) fail('the private key does not belong to the certificate');
      pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
    } catch (err) {
      if (err instanceof SkiffError) throw err;
      return fail(`cannot be read as a PEM certificate and private key (${(err as Error).message})`, err);
    }
    if (!nodeCert.ca) fail('the certificate is not a CA certificate');
    if (Date.parse(nodeCert.validTo) <= Date.now()) fail(`the CA certificate expired on ${new Date(nodeCert.validTo).toISOString()}`);
    const x = await loadX509();
    let key: webcrypto.CryptoKey;
    try {
      key = await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: ALGORITHM.name, namedCurve: ALGORITHM.namedCurve }, false, ['sign']);
    } catch (err) {
      return fail('the private key is not an ECDSA P-256 key', err);
    }
    const cert = new x.X509Certificate(certPem);
    // Leaves name the root's own key identifier, whichever way it was computed when the root was made.
    const ski = cert.getExtension(x.SubjectKeyIdentifierExtension);
    const keyId = ski?.keyId ?? Buffer.from(await cert.publicKey.getKeyIdentifier()).toString('hex');
    return new InternalCA(x, trustDomain, certPem, cert, key, keyId);
  }

  /** loadOrCreate reads `dir/ca.crt` and `dir/ca.key`, creating them (key mode 0600) the first time. */
  static async loadOrCreate(opts: { trustDomain: string; dir?: string }): Promise<InternalCA> {
    if (!opts.dir) return InternalCA.create(opts.trustDomain);
    const certFile = join(opts.dir, 'ca.crt');
    const keyFile = join(opts.dir, 'ca.key');
    if (existsSync(certFile) && existsSync(keyFile)) {
      return InternalCA.load(opts.trustDomain, readFileSync(certFile, 'utf8'), readFileSync(keyFile, 'utf8'), `${certFile} and ${keyFile}`);
    }
    const { ca, keyPem } = await InternalCA.createWithKey(opts.trustDomain);
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    writeFileSync(keyFile, keyPem, { mode: 0o600 });
    writeFileSync(certFile, ca.certPem);
    return ca;
  }

  /**
   * issue makes a key pair and a certificate request for a SPIFFE ID (plus optional DNS names), as a
   * workload does, and signs it: the certificate and its private key.
   */
  async issue(id: string, opts: { ttlMs?: number; dnsNames?: string[]; now?: Date } = {}): Promise<IssuedCertificate> {
    if (!inTrustDomain(id, this.trustDomain)) throw new SkiffError('invalid_identity', `cannot issue for "${id}": it must be a SPIFFE ID in trust domain ${this.trustDomain}`);
    const request = await createCsr(id, { dnsNames: opts.dnsNames });
    const signed = await this.sign(request.csrPem, opts);
    return { ...signed, keyPem: request.keyPem };
  }

  /**
   * sign checks a PEM PKCS#10 request (its signature proves the requester holds the key; it names
   * exactly one SPIFFE ID of this trust domain as a URI, and optionally DNS names) and returns a leaf
   * certificate for it. The profile is the CA's own: whatever else the request asks for is not copied.
   */
  async sign(csrPem: string, opts: { ttlMs?: number; now?: Date } = {}): Promise<SignedCertificate> {
    const x = this.x509;
    let csr: InstanceType<X509['Pkcs10CertificateRequest']>;
    try {
      csr = new x.Pkcs10CertificateRequest(csrPem);
    } catch (err) {
      throw new CertificateRequestError(`the certificate request is not a PEM PKCS#10 request (${(err as Error).message})`, { cause: err });
    }
    const alg = csr.publicKey.algorithm as webcrypto.EcKeyAlgorithm;
    if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') throw new CertificateRequestError(`the certificate request's key is ${[alg.name, alg.namedCurve].filter(Boolean).join(' ')}; the mesh uses ECDSA P-256 keys`);
    if (!(await csr.verify())) throw new CertificateRequestError("the certificate request's signature does not verify with its own key");
    const { id, dnsNames } = this.requestedNames(csr.getExtension(SUBJECT_ALT_NAME));

    const now = opts.now ?? new Date();
    const notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
    const notAfter = new Date(now.getTime() + (opts.ttlMs ?? 3_600_000));
    const publicKey = await csr.publicKey.export();
    const cert = await x.X509CertificateGenerator.create({
      serialNumber: serialNumber(),
      subject: new x.Name(distinguishedName('Skiff workload', id.slice(id.lastIndexOf('/') + 1))),
      issuer: this.cert.subjectName,
      notBefore,
      notAfter,
      publicKey,
      signingKey: this.key,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x.BasicConstraintsExtension(false, undefined, true),
        new x.KeyUsagesExtension(x.KeyUsageFlags.digitalSignature | x.KeyUsageFlags.keyAgreement, true),
        new x.ExtendedKeyUsageExtension([x.ExtendedKeyUsage.serverAuth, x.ExtendedKeyUsage.clientAuth], false),
        await x.SubjectKeyIdentifierExtension.create(publicKey),
        new x.AuthorityKeyIdentifierExtension(this.keyId, false),
        // The SPIFFE ID is what identifies the holder, so a verifier that cannot read the SAN must refuse it.
        new x.SubjectAlternativeNameExtension([{ type: 'url', value: id }, ...dnsNames.map((value) => ({ type: 'dns' as const, value }))], true),
      ],
    });
    return { certPem: pem('CERTIFICATE', cert.rawData), notBefore, notAfter, spiffeId: id };
  }

  /**
   * issueServing makes a TLS server certificate and its key for a listener that clients reach by
   * host name or IP address (the API server, for kubectl and client libraries). It carries no SPIFFE
   * ID: it names where the server is, not a workload, and is good for server authentication only.
   */
  async issueServing(opts: { dnsNames?: string[]; ipAddresses?: string[]; ttlMs?: number; now?: Date }): Promise<IssuedCertificate> {
    const x = this.x509;
    const dnsNames = opts.dnsNames ?? [];
    const ips = opts.ipAddresses ?? [];
    for (const d of dnsNames) if (!DNS_NAME.test(d)) throw new SkiffError('invalid_identity', `cannot issue a serving certificate for "${d}": not a DNS host name`);
    for (const ip of ips) if (isIP(ip) === 0) throw new SkiffError('invalid_identity', `cannot issue a serving certificate for "${ip}": not an IP address`);
    if (dnsNames.length + ips.length === 0) throw new SkiffError('invalid_identity', 'a serving certificate needs at least one DNS name or IP address');
    const keys = await generateKeys();
    const now = opts.now ?? new Date();
    const notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
    const notAfter = new Date(now.getTime() + (opts.ttlMs ?? 365 * 24 * 3600 * 1000));
    const cert = await x.X509CertificateGenerator.create({
      serialNumber: serialNumber(),
      subject: new x.Name(distinguishedName('Skiff', dnsNames[0] ?? ips[0]!)),
      issuer: this.cert.subjectName,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: this.key,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x.BasicConstraintsExtension(false, undefined, true),
        new x.KeyUsagesExtension(x.KeyUsageFlags.digitalSignature | x.KeyUsageFlags.keyAgreement, true),
        new x.ExtendedKeyUsageExtension([x.ExtendedKeyUsage.serverAuth], false),
        await x.SubjectKeyIdentifierExtension.create(keys.publicKey),
        new x.AuthorityKeyIdentifierExtension(this.keyId, false),
        new x.SubjectAlternativeNameExtension([...dnsNames.map((value) => ({ type: 'dns' as const, value })), ...ips.map((value) => ({ type: 'ip' as const, value }))], false),
      ],
    });
    return { certPem: pem('CERTIFICATE', cert.rawData), keyPem: await privateKeyPem(keys.privateKey), notBefore, notAfter };
  }

  /** requestedNames reads the request's subject alternative names: one SPIFFE ID, then DNS names. */
  private requestedNames(ext: Extension | null): { id: string; dnsNames: string[] } {
    const x = this.x509;
    if (!ext) throw new CertificateRequestError('the certificate request has no subjectAltName extension: it must name a SPIFFE ID as a URI');
    let san: InstanceType<X509['SubjectAlternativeNameExtension']>;
    try {
      san = new x.SubjectAlternativeNameExtension(ext.rawData);
    } catch (err) {
      throw new CertificateRequestError(`the certificate request's subjectAltName cannot be read (${(err as Error).message})`, { cause: err });
    }
    const uris: string[] = [];
    const dnsNames: string[] = [];
    for (const n of san.names.items) {
      if (n.type === 'url') uris.push(n.value);
      else if (n.type === 'dns' && DNS_NAME.test(n.value)) dnsNames.push(n.value);
      else throw new CertificateRequestError(`the certificate request asks for the name ${n.type}:${n.value}; only one SPIFFE ID and DNS host names are issued`);
    }
    if (uris.length !== 1) throw new CertificateRequestError(`the certificate request names ${uris.length} URIs; it must name exactly one SPIFFE ID`);
    const id = uris[0]!;
    if (!inTrustDomain(id, this.trustDomain)) throw new CertificateRequestError(`cannot issue for "${id}": it must be a SPIFFE ID in trust domain ${this.trustDomain}`);
    return { id, dnsNames };
  }
}
