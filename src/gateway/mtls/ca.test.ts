import { spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { CertificateRequestError, InternalCA } from './ca.js';
import { createCsr } from './csr.js';
import { generateKeys, loadX509, pem, privateKeyPem } from './library.js';
import { peerSpiffeId, spiffeId } from './spiffe.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
const work = mkdtempSync(join(tmpdir(), 'skiff-ca-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** openssl runs the openssl CLI on PEM inputs written to files and returns its exit status and output. */
function openssl(args: string[], files: Record<string, string> = {}): { status: number | null; out: string } {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(work, name), text);
  const r = spawnSync('openssl', args, { cwd: work, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** keyIdOf reads a key identifier extension's hex value from `openssl x509 -text` output. */
function keyIdOf(text: string, label: 'Subject' | 'Authority'): string | undefined {
  return new RegExp(`X509v3 ${label} Key Identifier:\\s*\\n\\s*(?:keyid:)?([0-9A-F:]+)`).exec(text)?.[1];
}

describe('internal CA certificates', () => {
  it('issues leaf certificates with SPIFFE IDs that verify against the root (Node)', async () => {
    const ca = await InternalCA.create('skiff.local');
    const root = new X509Certificate(ca.certPem);
    expect(root.ca).toBe(true);
    expect(root.verify(root.publicKey)).toBe(true);
    expect(root.subject).toBe('O=Skiff\nCN=Skiff CA skiff.local');
    const id = spiffeId('skiff.local', 'default', 'hello');
    expect(id).toBe('spiffe://skiff.local/ns/default/fn/hello');
    const leaf = await ca.issue(id, { ttlMs: 60_000, dnsNames: ['localhost'] });
    const x = new X509Certificate(leaf.certPem);
    expect(x.ca).toBe(false);
    expect(x.verify(root.publicKey)).toBe(true);
    expect(x.checkIssued(root)).toBe(true);
    expect(x.issuer).toBe(root.subject);
    expect(x.subject).toBe('O=Skiff workload\nCN=hello');
    expect(x.subjectAltName).toBe(`URI:${id}, DNS:localhost`);
    expect(peerSpiffeId(x.subjectAltName)).toBe(id);
    expect(x.checkHost('localhost')).toBe('localhost');
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    // The key in the certificate is the one handed out with it.
    expect(x.checkPrivateKey(createPrivateKey(leaf.keyPem))).toBe(true);
    expect(leaf.spiffeId).toBe(id);
    expect(new Date(x.validTo).getTime()).toBe(Math.floor(leaf.notAfter.getTime() / 1000) * 1000);
    expect(new Date(x.validTo).getTime() - Date.now()).toBeLessThanOrEqual(61_000);
    // Backdated a minute for peers whose clocks are slightly behind.
    expect(Date.now() - new Date(x.validFrom).getTime()).toBeGreaterThanOrEqual(59_000);
  });

  it('gives every certificate a random positive serial number of 16 octets', async () => {
    const ca = await InternalCA.create('skiff.local');
    const serials = new Set<string>([new X509Certificate(ca.certPem).serialNumber]);
    for (let i = 0; i < 8; i++) serials.add(new X509Certificate((await ca.issue(spiffeId('skiff.local', 'default', `s${i}`))).certPem).serialNumber);
    expect(serials.size).toBe(9);
    for (const s of serials) {
      expect(s).toMatch(/^[0-9A-F]+$/);
      // DER INTEGER content: positive means the top bit of the first octet is clear.
      expect(s.length).toBe(32);
      expect(Number.parseInt(s.slice(0, 2), 16) & 0x80).toBe(0);
    }
  });

  it('writes validity after 2049 as GeneralizedTime', async () => {
    const ca = await InternalCA.create('skiff.local', 365 * 24 * 3600 * 1000, new Date('2060-06-01T00:00:00Z'));
    expect(new Date(new X509Certificate(ca.certPem).validFrom).toISOString()).toBe('2060-05-31T23:59:00.000Z');
    if (hasOpenssl) expect(openssl(['asn1parse', '-in', 'late.pem'], { 'late.pem': ca.certPem }).out).toMatch(/GENERALIZEDTIME\s+:20600531235900Z/);
  });

  it.skipIf(!hasOpenssl)('has the profile the mesh relies on, as openssl reads it', async () => {
    const ca = await InternalCA.create('skiff.local');
    const leaf = await ca.issue(spiffeId('skiff.local', 'default', 'hello'), { dnsNames: ['localhost'] });
    const root = openssl(['x509', '-in', 'root.pem', '-text', '-noout'], { 'root.pem': ca.certPem });
    expect(root.status).toBe(0);
    expect(root.out).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(root.out).toContain('NIST CURVE: P-256');
    expect(root.out).toMatch(/X509v3 Basic Constraints: critical\s*\n\s*CA:TRUE, pathlen:0/);
    expect(root.out).toMatch(/X509v3 Key Usage: critical\s*\n\s*Certificate Sign, CRL Sign\n/);
    const text = openssl(['x509', '-in', 'leaf.pem', '-text', '-noout'], { 'leaf.pem': leaf.certPem }).out;
    expect(text).toContain('Version: 3 (0x2)');
    expect(text).toContain('Issuer: O = Skiff, CN = Skiff CA skiff.local');
    expect(text).toContain('Subject: O = Skiff workload, CN = hello');
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s*\n\s*CA:FALSE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s*\n\s*Digital Signature, Key Agreement\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s*\n\s*TLS Web Server Authentication, TLS Web Client Authentication\n/);
    expect(text).toMatch(/X509v3 Subject Alternative Name: critical\s*\n\s*URI:spiffe:\/\/skiff\.local\/ns\/default\/fn\/hello, DNS:localhost\n/);
    // Key identifiers: the leaf's own, and its issuer's equal to the root's subject key identifier.
    const rootKeyId = keyIdOf(root.out, 'Subject');
    expect(rootKeyId).toMatch(/^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
    expect(keyIdOf(text, 'Authority')).toBe(rootKeyId);
    expect(keyIdOf(text, 'Subject')).toMatch(/^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
    expect(keyIdOf(text, 'Subject')).not.toBe(rootKeyId);

    for (const purpose of ['sslserver', 'sslclient']) {
      const v = openssl(['verify', '-purpose', purpose, '-CAfile', 'root.pem', 'leaf.pem']);
      expect(v).toEqual({ status: 0, out: 'leaf.pem: OK\n' });
    }
  });

  it.skipIf(!hasOpenssl)('is refused by openssl for the right reason: another root, expiry', async () => {
    const ca = await InternalCA.create('skiff.local');
    const other = await InternalCA.create('skiff.local');
    const leaf = await ca.issue(spiffeId('skiff.local', 'default', 'hello'));
    const expired = await ca.issue(spiffeId('skiff.local', 'default', 'hello'), { now: new Date(Date.now() - 2 * 3_600_000), ttlMs: 3_600_000 });
    const files = { 'root.pem': ca.certPem, 'other.pem': other.certPem, 'leaf.pem': leaf.certPem, 'expired.pem': expired.certPem };
    const foreign = openssl(['verify', '-CAfile', 'other.pem', 'leaf.pem'], files);
    expect(foreign.status).not.toBe(0);
    // Same issuer name, but the authority key identifier names another key: no issuer is found.
    expect(foreign.out).toContain('unable to get local issuer certificate');
    const old = openssl(['verify', '-CAfile', 'root.pem', 'expired.pem']);
    expect(old.status).not.toBe(0);
    expect(old.out).toContain('certificate has expired');
  });

  it('refuses identities outside its trust domain', async () => {
    const ca = await InternalCA.create('skiff.local');
    await expect(ca.issue('spiffe://other.domain/ns/a/fn/b')).rejects.toThrow(/trust domain skiff\.local/);
    expect(() => spiffeId('Bad Domain', 'a', 'b')).toThrow(/SPIFFE/);
  });
});

describe('internal CA on disk', () => {
  it('is created once in its directory and reloaded afterwards', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-ca-'));
    try {
      const a = await InternalCA.loadOrCreate({ trustDomain: 'skiff.local', dir: join(dir, 'ca') });
      const b = await InternalCA.loadOrCreate({ trustDomain: 'skiff.local', dir: join(dir, 'ca') });
      expect(b.certPem).toBe(a.certPem);
      expect(statSync(join(dir, 'ca', 'ca.key')).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'ca')).mode & 0o777).toBe(0o700);
      expect(readFileSync(join(dir, 'ca', 'ca.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      const leaf = await b.issue(spiffeId('skiff.local', 'ns1', 'f'));
      expect(new X509Certificate(leaf.certPem).verify(new X509Certificate(a.certPem).publicKey)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps signing with a root written by an earlier version (its own key identifier method)', async () => {
    const certPem = readFileSync(new URL('./testdata/earlier-root.crt', import.meta.url), 'utf8');
    const keyPem = readFileSync(new URL('./testdata/earlier-root.key', import.meta.url), 'utf8');
    const ca = await InternalCA.load('skiff.local', certPem, keyPem);
    const root = new X509Certificate(certPem);
    const leaf = new X509Certificate((await ca.issue(spiffeId('skiff.local', 'default', 'hello'))).certPem);
    expect(leaf.checkIssued(root)).toBe(true);
    expect(leaf.verify(root.publicKey)).toBe(true);
    // That root's key identifier is the SHA-1 of its whole SubjectPublicKeyInfo, not of the key bits alone.
    const spkiHash = createHash('sha1').update(root.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
    const x = await loadX509();
    expect(new x.X509Certificate(leaf.raw).getExtension(x.AuthorityKeyIdentifierExtension)?.keyId).toBe(spkiHash);
    if (hasOpenssl) expect(openssl(['verify', '-CAfile', 'earlier.pem', 'leaf.pem'], { 'earlier.pem': certPem, 'leaf.pem': leaf.toString() })).toEqual({ status: 0, out: 'leaf.pem: OK\n' });
  });

  it('refuses CA files that do not make a usable root, saying which and why', async () => {
    const ca = await InternalCA.create('skiff.local');
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await expect(InternalCA.load('skiff.local', ca.certPem, other, 'dir/ca.crt and dir/ca.key')).rejects.toThrow(/^dir\/ca\.crt and dir\/ca\.key: the private key does not belong to the certificate; move them away/);
    await expect(InternalCA.load('skiff.local', 'not a certificate', other)).rejects.toMatchObject({ code: 'invalid_ca', message: expect.stringContaining('cannot be read as a PEM certificate and private key') });
    const leaf = await ca.issue(spiffeId('skiff.local', 'default', 'leaf'));
    await expect(InternalCA.load('skiff.local', leaf.certPem, leaf.keyPem)).rejects.toThrow(/the certificate is not a CA certificate/);
    // An expired root on disk is named, with its date, rather than used to issue certificates no peer accepts.
    const x = await loadX509();
    const keys = await generateKeys();
    const expired = await x.X509CertificateGenerator.createSelfSigned({
      name: 'CN=expired root',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      notBefore: new Date('2020-01-01T00:00:00Z'),
      notAfter: new Date('2021-01-01T00:00:00Z'),
      extensions: [new x.BasicConstraintsExtension(true, 0, true)],
    });
    const dir = mkdtempSync(join(tmpdir(), 'skiff-ca-'));
    try {
      writeFileSync(join(dir, 'ca.crt'), pem('CERTIFICATE', expired.rawData));
      writeFileSync(join(dir, 'ca.key'), await privateKeyPem(keys.privateKey));
      await expect(InternalCA.loadOrCreate({ trustDomain: 'skiff.local', dir })).rejects.toThrow(`${join(dir, 'ca.crt')} and ${join(dir, 'ca.key')}: the CA certificate expired on 2021-01-01T00:00:00.000Z; move them away to have a new internal CA created`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('certificate requests', () => {
  it('are made with the SPIFFE ID as a critical URI name and signed by the requester key', async () => {
    const req = await createCsr(spiffeId('skiff.local', 'default', 'hello'), { dnsNames: ['localhost'] });
    expect(req.csrPem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n/);
    expect(req.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const x = await loadX509();
    const csr = new x.Pkcs10CertificateRequest(req.csrPem);
    expect(await csr.verify()).toBe(true);
    const san = new x.SubjectAlternativeNameExtension(csr.getExtension('2.5.29.17')!.rawData);
    expect(san.critical).toBe(true);
    expect(san.names.items.map((n) => `${n.type}:${n.value}`)).toEqual(['url:spiffe://skiff.local/ns/default/fn/hello', 'dns:localhost']);
    if (hasOpenssl) {
      const r = openssl(['req', '-in', 'req.pem', '-verify', '-noout', '-text'], { 'req.pem': req.csrPem });
      expect(r.status).toBe(0);
      expect(r.out).toMatch(/verify OK|Certificate request self-signature verify OK/);
      expect(r.out).toContain('URI:spiffe://skiff.local/ns/default/fn/hello, DNS:localhost');
    }
    await expect(createCsr('https://example.com/x')).rejects.toThrow(/not a valid SPIFFE ID/);
  });

  it('are signed for the key they carry, with the CA profile, not what else they ask for', async () => {
    const ca = await InternalCA.create('skiff.local');
    const req = await createCsr(spiffeId('skiff.local', 'default', 'hello'));
    const signed = await ca.sign(req.csrPem, { ttlMs: 120_000 });
    const cert = new X509Certificate(signed.certPem);
    expect(cert.checkPrivateKey(createPrivateKey(req.keyPem))).toBe(true);
    expect(signed.spiffeId).toBe('spiffe://skiff.local/ns/default/fn/hello');
    expect(cert.subjectAltName).toBe('URI:spiffe://skiff.local/ns/default/fn/hello');
    expect(cert.ca).toBe(false);
    expect(signed.notAfter.getTime() - signed.notBefore.getTime()).toBe(180_000);
  });

  it.skipIf(!hasOpenssl)('made by openssl are signed when they fit the profile', async () => {
    const ca = await InternalCA.create('skiff.local');
    const made = openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ossl.key', '-out', 'ossl.csr', '-subj', '/CN=whatever/O=Asked For', '-addext', 'subjectAltName=critical,URI:spiffe://skiff.local/ns/default/fn/ossl', '-addext', 'basicConstraints=critical,CA:TRUE']);
    expect(made.status).toBe(0);
    const signed = await ca.sign(readFileSync(join(work, 'ossl.csr'), 'utf8'));
    const text = openssl(['x509', '-in', 'ossl.pem', '-text', '-noout'], { 'ossl.pem': signed.certPem }).out;
    // The CA decides the subject and the extensions: a request asking to be a CA gets a leaf.
    expect(text).toContain('Subject: O = Skiff workload, CN = ossl');
    expect(text).toMatch(/CA:FALSE/);
    expect(openssl(['verify', '-CAfile', 'root.pem', 'ossl.pem'], { 'root.pem': ca.certPem })).toEqual({ status: 0, out: 'ossl.pem: OK\n' });
    expect(openssl(['x509', '-in', 'ossl.pem', '-noout', '-pubkey']).out).toBe(openssl(['pkey', '-in', 'ossl.key', '-pubout']).out);

    const rsa = openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rsa.key', '-out', 'rsa.csr', '-subj', '/CN=rsa', '-addext', 'subjectAltName=URI:spiffe://skiff.local/ns/default/fn/rsa']);
    expect(rsa.status).toBe(0);
    await expect(ca.sign(readFileSync(join(work, 'rsa.csr'), 'utf8'))).rejects.toThrow(/the certificate request's key is RSASSA-PKCS1-v1_5; the mesh uses ECDSA P-256 keys/);
  });

  it('are refused, each for its own reason, when they do not prove the key or name the wrong identity', async () => {
    const ca = await InternalCA.create('skiff.local');
    const x = await loadX509();
    /** request builds a CSR with the given names (and optionally no SAN at all). */
    const request = async (names: Array<{ type: 'url' | 'dns' | 'email'; value: string }> | null): Promise<string> => {
      const keys = await generateKeys();
      const csr = await x.Pkcs10CertificateRequestGenerator.create({
        name: 'CN=test',
        keys,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        extensions: names ? [new x.SubjectAlternativeNameExtension(names, true)] : [],
      });
      return pem('CERTIFICATE REQUEST', csr.rawData);
    };
    const refusal = async (csrPem: string): Promise<string> => {
      const err = await ca.sign(csrPem).then(
        () => new Error('signed'),
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(CertificateRequestError);
      expect((err as CertificateRequestError).code).toBe('invalid_csr');
      return err.message;
    };

    // The signature must verify with the request's own key: a request altered after signing is refused.
    const good = await createCsr(spiffeId('skiff.local', 'default', 'hello'));
    const der = Buffer.from(good.csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const tampered = Buffer.from(der);
    const at = tampered.indexOf(Buffer.from('hello'));
    tampered.write('jello', at);
    expect(await refusal(pem('CERTIFICATE REQUEST', tampered))).toBe("the certificate request's signature does not verify with its own key");
    expect(await refusal('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n')).toMatch(/^the certificate request is not a PEM PKCS#10 request/);
    expect(await refusal(await request(null))).toBe('the certificate request has no subjectAltName extension: it must name a SPIFFE ID as a URI');
    expect(await refusal(await request([{ type: 'dns', value: 'localhost' }]))).toBe('the certificate request names 0 URIs; it must name exactly one SPIFFE ID');
    expect(await refusal(await request([{ type: 'url', value: 'spiffe://skiff.local/ns/a/fn/b' }, { type: 'url', value: 'spiffe://skiff.local/ns/a/fn/c' }]))).toBe('the certificate request names 2 URIs; it must name exactly one SPIFFE ID');
    expect(await refusal(await request([{ type: 'url', value: 'spiffe://other.test/ns/a/fn/b' }]))).toBe('cannot issue for "spiffe://other.test/ns/a/fn/b": it must be a SPIFFE ID in trust domain skiff.local');
    expect(await refusal(await request([{ type: 'url', value: 'spiffe://skiff.local/ns/a/fn/b' }, { type: 'email', value: 'a@example.com' }]))).toBe('the certificate request asks for the name email:a@example.com; only one SPIFFE ID and DNS host names are issued');
    expect(await refusal(await request([{ type: 'url', value: 'spiffe://skiff.local/ns/a/fn/b' }, { type: 'dns', value: '*.example.com' }]))).toBe('the certificate request asks for the name dns:*.example.com; only one SPIFFE ID and DNS host names are issued');
    // And a well-formed one is signed, so the refusals above are about what each request got wrong.
    expect((await ca.sign(await request([{ type: 'url', value: 'spiffe://skiff.local/ns/a/fn/b' }, { type: 'dns', value: 'b.example.com' }]))).spiffeId).toBe('spiffe://skiff.local/ns/a/fn/b');
  });
});
