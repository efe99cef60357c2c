import { webcrypto } from 'node:crypto';

/** X509 is the certificate library's module (`@peculiar/x509`). */
export type X509 = typeof import('@peculiar/x509');

/**
 * loadX509 loads `@peculiar/x509` when a certificate or a request is first built or read. It is only
 * ever imported here, dynamically: loading it (and the dependency-injection container it is built on)
 * is a noticeable share of a command's start-up, and most commands, and servers without mTLS, never
 * issue a certificate. Its container needs a Reflect metadata polyfill installed before it loads.
 * Node caches both modules, so every later call resolves at once.
 */
export async function loadX509(): Promise<X509> {
  await import('reflect-metadata');
  return import('@peculiar/x509');
}

/** ALGORITHM is the key and signature algorithm of every mesh key: ECDSA on P-256 with SHA-256. */
export const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** generateKeys makes an extractable P-256 key pair (the private key is written out as PKCS#8). */
export function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
}

/** pem wraps DER bytes in a PEM block with 64-character lines. */
export function pem(label: string, der: ArrayBuffer | Uint8Array): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** privateKeyPem exports a private key as PKCS#8 PEM, the format `ca.key` and `keyPem` have always used. */
export async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', key));
}
