import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';

import { decryptSigstoreKey, encryptSigstoreKey, isEncryptedKeyPem } from './encrypted-key.js';
import { KeyError } from './errors.js';

/** KeyAlgorithm is a signing scheme Skiff signs and verifies with, as cosign does for these key types. */
export type KeyAlgorithm = 'ecdsa-p256' | 'ed25519';

/** PublicKey is a verification key with its algorithm and SPKI DER (whose hash is the key's hint). */
export interface PublicKey {
  algorithm: KeyAlgorithm;
  key: KeyObject;
  /** spki is the DER SubjectPublicKeyInfo. */
  spki: Buffer;
}

/** PrivateKey is a signing key and the public key that verifies what it signs. */
export interface PrivateKey {
  algorithm: KeyAlgorithm;
  key: KeyObject;
  publicKey: PublicKey;
}

function algorithmOf(key: KeyObject, source: string): KeyAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ecdsa-p256';
    throw new KeyError(`${source}: an ECDSA key on curve ${curve ?? 'unknown'}; Skiff signs with P-256 (prime256v1) or Ed25519 keys`);
  }
  throw new KeyError(`${source}: a ${key.asymmetricKeyType ?? 'unknown'} key; Skiff signs with ECDSA P-256 or Ed25519 keys`);
}

function toPublic(key: KeyObject, source: string): PublicKey {
  const algorithm = algorithmOf(key, source);
  return { algorithm, key, spki: key.export({ type: 'spki', format: 'der' }) };
}

const PEM_LABEL = /-----BEGIN ([A-Z0-9 ]+)-----/;

/**
 * loadPublicKey reads a verification key from PEM: an SPKI `PUBLIC KEY`, or a `CERTIFICATE` whose
 * key is used. `source` (a file name or a field path) goes into every error message.
 */
export function loadPublicKey(pem: string, source: string): PublicKey {
  const label = PEM_LABEL.exec(pem)?.[1];
  if (!label) throw new KeyError(`${source}: not a PEM file (no "-----BEGIN ...-----" line); pass a PEM public key such as cosign.pub`);
  if (label.includes('PRIVATE KEY')) throw new KeyError(`${source}: holds a private key; verification takes the public key (cosign.pub)`);
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new KeyError(`${source}: cannot read the ${label}: ${(err as Error).message}`, { cause: err });
  }
  return toPublic(key, source);
}

/**
 * loadPrivateKey reads a signing key from PEM: PKCS#8 `PRIVATE KEY`, SEC1 `EC PRIVATE KEY`, or
 * cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` (scrypt + secretbox), which needs `password`
 * (the CLI takes it from `COSIGN_PASSWORD`, as cosign does).
 */
export function loadPrivateKey(pem: string, source: string, password?: string): PrivateKey {
  const label = PEM_LABEL.exec(pem)?.[1];
  if (!label) throw new KeyError(`${source}: not a PEM file (no "-----BEGIN ...-----" line); pass a PEM private key`);
  let key: KeyObject;
  if (isEncryptedKeyPem(label)) {
    const der = decryptSigstoreKey(pem, password ?? '', source);
    try {
      key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    } catch (err) {
      throw new KeyError(`${source}: the decrypted key is not PKCS#8: ${(err as Error).message}`, { cause: err });
    }
  } else {
    if (!label.includes('PRIVATE KEY')) throw new KeyError(`${source}: holds a ${label}, not a private key; signing takes the private key (cosign.key)`);
    try {
      key = createPrivateKey(pem);
    } catch (err) {
      throw new KeyError(`${source}: cannot read the ${label}: ${(err as Error).message}`, { cause: err });
    }
  }
  const publicKey = toPublic(createPublicKey(key), source);
  return { algorithm: publicKey.algorithm, key, publicKey };
}

/**
 * signBytes signs `data` as cosign does for the key type: ECDSA P-256 over SHA-256 with an ASN.1 DER
 * signature, Ed25519 over the message itself.
 */
export function signBytes(key: PrivateKey, data: Uint8Array): Buffer {
  return sign(key.algorithm === 'ed25519' ? null : 'sha256', data, key.key);
}

/** verifyBytes checks a signature made by `signBytes` (or cosign) over `data`. */
export function verifyBytes(key: PublicKey, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(key.algorithm === 'ed25519' ? null : 'sha256', data, key.key, signature);
  } catch {
    return false;
  }
}

/** keyHint is the base64 SHA-256 of the key's SPKI DER: the unauthenticated hint a key-signed bundle carries. */
export function keyHint(key: PublicKey): string {
  return createHash('sha256').update(key.spki).digest('base64');
}

/** publicKeyPem writes a public key as SPKI PEM (cosign.pub's format). */
export function publicKeyPem(key: PublicKey): string {
  return key.key.export({ type: 'spki', format: 'pem' }).toString();
}

/**
 * generateKeyPair makes a key pair as `cosign generate-key-pair` does: the private key in cosign's
 * encrypted format when `password` is given (an empty password too, as cosign allows), else PKCS#8.
 */
export function generateKeyPair(algorithm: KeyAlgorithm = 'ecdsa-p256', password?: string): { privatePem: string; publicPem: string } {
  const pair = algorithm === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pkcs8 = pair.privateKey.export({ type: 'pkcs8', format: 'der' });
  const privatePem = password === undefined ? pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() : encryptSigstoreKey(pkcs8, password);
  return { privatePem, publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}
