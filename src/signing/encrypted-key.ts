import { randomBytes, scryptSync } from 'node:crypto';

import { KeyError } from './errors.js';
import { secretboxOpen, secretboxSeal } from './secretbox.js';

/** The PEM labels cosign has written encrypted keys under (the older one before Sigstore's rename). */
const ENCRYPTED_LABELS = ['ENCRYPTED SIGSTORE PRIVATE KEY', 'ENCRYPTED COSIGN PRIVATE KEY'];

/** cosign's defaults for new keys: scrypt N=2^15, r=8, p=1, a 32-byte salt, a 24-byte nonce. */
const SCRYPT = { N: 32768, r: 8, p: 1 };

interface Envelope {
  kdf: { name: string; params: { N: number; r: number; p: number }; salt: string };
  cipher: { name: string; nonce: string };
  ciphertext: string;
}

/** isEncryptedKeyPem tells whether a PEM label is one of cosign's encrypted private key labels. */
export function isEncryptedKeyPem(label: string): boolean {
  return ENCRYPTED_LABELS.includes(label);
}

function pemBody(pem: string, label: string): Buffer {
  const start = pem.indexOf(`-----BEGIN ${label}-----`);
  const end = pem.indexOf(`-----END ${label}-----`);
  return Buffer.from(pem.slice(start + label.length + 16, end).replace(/\s+/g, ''), 'base64');
}

function deriveKey(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Buffer {
  // scrypt needs 128·N·r bytes; Node's default ceiling (32 MiB) is exactly cosign's default cost.
  return scryptSync(Buffer.from(password, 'utf8'), salt, 32, { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + (1 << 20) });
}

/**
 * decryptSigstoreKey opens cosign's encrypted private key (a JSON envelope: scrypt parameters and
 * salt, a secretbox nonce and the ciphertext) and returns the PKCS#8 DER inside.
 */
export function decryptSigstoreKey(pem: string, password: string, source: string): Buffer {
  const label = ENCRYPTED_LABELS.find((l) => pem.includes(`-----BEGIN ${l}-----`))!;
  let env: Envelope;
  try {
    env = JSON.parse(pemBody(pem, label).toString('utf8')) as Envelope;
  } catch (err) {
    throw new KeyError(`${source}: the ${label} does not hold cosign's JSON envelope: ${(err as Error).message}`, { cause: err });
  }
  if (env?.kdf?.name !== 'scrypt') throw new KeyError(`${source}: key derivation "${env?.kdf?.name}" is not supported; cosign keys use scrypt`);
  if (env.cipher?.name !== 'nacl/secretbox') throw new KeyError(`${source}: cipher "${env.cipher?.name}" is not supported; cosign keys use nacl/secretbox`);
  const { N, r, p } = env.kdf.params ?? {};
  if (![N, r, p].every((v) => Number.isInteger(v) && v > 0) || (N & (N - 1)) !== 0 || N > 1 << 20 || r > 32 || p > 16) {
    throw new KeyError(`${source}: unsupported scrypt parameters N=${N} r=${r} p=${p}`);
  }
  const nonce = Buffer.from(env.cipher.nonce ?? '', 'base64');
  if (nonce.length !== 24) throw new KeyError(`${source}: the secretbox nonce must be 24 bytes, not ${nonce.length}`);
  const key = deriveKey(password, Buffer.from(env.kdf.salt ?? '', 'base64'), { N, r, p });
  const opened = secretboxOpen(Buffer.from(env.ciphertext ?? '', 'base64'), nonce, key);
  if (!opened) throw new KeyError(`${source}: wrong password for the encrypted key (set COSIGN_PASSWORD to the key's password)`);
  return Buffer.from(opened);
}

/** encryptSigstoreKey wraps PKCS#8 DER in cosign's encrypted key format under `password`. */
export function encryptSigstoreKey(pkcs8: Buffer, password: string): string {
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const key = deriveKey(password, salt, SCRYPT);
  const env: Envelope = {
    kdf: { name: 'scrypt', params: SCRYPT, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(secretboxSeal(pkcs8, nonce, key)).toString('base64'),
  };
  const b64 = Buffer.from(JSON.stringify(env)).toString('base64');
  return `-----BEGIN ${ENCRYPTED_LABELS[0]}-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${ENCRYPTED_LABELS[0]}-----\n`;
}
