import { SkiffError } from '../../util/errors.js';

import { ALGORITHM, generateKeys, loadX509, pem, privateKeyPem } from './library.js';
import { isSpiffeId } from './spiffe.js';

/** CertificateRequest is a PEM PKCS#10 request and the PKCS#8 private key it was made for. */
export interface CertificateRequest {
  csrPem: string;
  keyPem: string;
}

/**
 * createCsr makes a fresh P-256 key pair and a PKCS#10 request, signed with it, that asks for a
 * SPIFFE ID (a critical URI subject alternative name) and optional DNS names. The private key never
 * leaves the requester; the CA sees only the request (`InternalCA.sign`).
 */
export async function createCsr(id: string, opts: { dnsNames?: string[] } = {}): Promise<CertificateRequest> {
  if (!isSpiffeId(id)) throw new SkiffError('invalid_identity', `"${id}" is not a valid SPIFFE ID: a certificate request needs spiffe://TRUST_DOMAIN/PATH`);
  const x = await loadX509();
  const keys = await generateKeys();
  const names = [{ type: 'url' as const, value: id }, ...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value }))];
  const csr = await x.Pkcs10CertificateRequestGenerator.create({
    name: [{ '2.5.4.3': [id.slice(id.lastIndexOf('/') + 1)] }],
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [new x.SubjectAlternativeNameExtension(names, true)],
  });
  return { csrPem: pem('CERTIFICATE REQUEST', csr.rawData), keyPem: await privateKeyPem(keys.privateKey) };
}
