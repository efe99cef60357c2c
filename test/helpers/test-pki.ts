import { randomBytes } from 'node:crypto';

import { ALGORITHM, generateKeys, loadX509, pem, privateKeyPem } from '../../src/gateway/mtls/library.js';

/** A test CA: its certificate and what it needs to sign. */
export interface TestCa {
  certPem: string;
  issue(opts: { commonName: string; ips?: string[]; dnsNames?: string[]; usage: 'server' | 'client' }): Promise<{ certPem: string; keyPem: string }>;
}

/**
 * makeTestCa makes a throwaway root (ECDSA P-256) that issues server and client certificates, for tests
 * of TLS between Skiff and programs it talks to (etcd).
 */
export async function makeTestCa(name: string): Promise<TestCa> {
  const x = await loadX509();
  const keys = await generateKeys();
  const subject = `CN=${name}`;
  const now = Date.now();
  const serial = () => randomBytes(8).toString('hex').replace(/^[89a-f]/, '1');
  const ca = await x.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 24 * 3600_000),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: ALGORITHM,
    extensions: [new x.BasicConstraintsExtension(true, 0, true), new x.KeyUsagesExtension(x.KeyUsageFlags.keyCertSign | x.KeyUsageFlags.cRLSign, true), await x.SubjectKeyIdentifierExtension.create(keys.publicKey)],
  });
  return {
    certPem: pem('CERTIFICATE', ca.rawData),
    async issue(opts) {
      const leaf = await generateKeys();
      const cert = await x.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: `CN=${opts.commonName}`,
        issuer: ca.subject,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 24 * 3600_000),
        publicKey: leaf.publicKey,
        signingKey: keys.privateKey,
        signingAlgorithm: ALGORITHM,
        extensions: [
          new x.BasicConstraintsExtension(false, undefined, true),
          new x.KeyUsagesExtension(x.KeyUsageFlags.digitalSignature, true),
          // etcd's JSON gateway dials the member's own gRPC port with the serving certificate, which
          // --client-cert-auth then checks as a client certificate: a server certificate carries both uses.
          new x.ExtendedKeyUsageExtension(opts.usage === 'server' ? [x.ExtendedKeyUsage.serverAuth, x.ExtendedKeyUsage.clientAuth] : [x.ExtendedKeyUsage.clientAuth], false),
          ...((opts.ips?.length ?? 0) + (opts.dnsNames?.length ?? 0) > 0
            ? [new x.SubjectAlternativeNameExtension([...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })), ...(opts.ips ?? []).map((value) => ({ type: 'ip' as const, value }))], false)]
            : []),
        ],
      });
      return { certPem: pem('CERTIFICATE', cert.rawData), keyPem: await privateKeyPem(leaf.privateKey) };
    },
  };
}
