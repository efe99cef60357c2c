import { createHash, createPublicKey, type KeyObject, verify as cryptoVerify } from 'node:crypto';

import * as openpgp from 'openpgp';

import { VerificationError } from './errors.js';

/** TrustedKeys are the public keys a commit may be signed with, read from the verify Secret. */
export interface TrustedKeys {
  /** SSH public keys as their wire-format blobs (what an SSHSIG names), with a label for messages. */
  ssh: Array<{ blob: Buffer; label: string }>;
  openpgp: openpgp.PublicKey[];
}

/** VerifiedSignature says who signed: the key's type and fingerprint. */
export interface VerifiedSignature {
  format: 'ssh' | 'openpgp';
  /** SHA256:... for SSH keys, the hex fingerprint for OpenPGP keys. */
  fingerprint: string;
}

const SSH_KEY = /(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521)\s+([A-Za-z0-9+/]+={0,2})/;

/**
 * readTrustedKeys reads a verify Secret's data (decoded): `*.asc` entries are armored OpenPGP public
 * keys, `*.pub` and `allowed_signers` entries hold one SSH public key per line (allowed_signers'
 * principals and options are accepted and ignored: every listed key is trusted for this repository).
 */
export async function readTrustedKeys(data: Record<string, string>): Promise<TrustedKeys> {
  const keys: TrustedKeys = { ssh: [], openpgp: [] };
  for (const [name, text] of Object.entries(data)) {
    if (name.endsWith('.asc')) {
      try {
        keys.openpgp.push(...(await openpgp.readKeys({ armoredKeys: text })));
      } catch (err) {
        throw new VerificationError('NoKeys', `Secret key ${name} is not an armored OpenPGP public key: ${(err as Error).message}`);
      }
    } else if (name.endsWith('.pub') || name === 'allowed_signers') {
      for (const line of text.split('\n')) {
        if (!line.trim() || line.trim().startsWith('#')) continue;
        const m = SSH_KEY.exec(line);
        if (m) keys.ssh.push({ blob: Buffer.from(m[2]!, 'base64'), label: `${name}: ${m[1]}` });
      }
    }
  }
  if (keys.ssh.length === 0 && keys.openpgp.length === 0) throw new VerificationError('NoKeys', 'the verify Secret holds no public keys: add *.asc (OpenPGP) or *.pub / allowed_signers (SSH) entries');
  return keys;
}

/**
 * splitSignature separates a raw commit object into the signed payload (the commit without its
 * `gpgsig` header) and the armored signature. A commit without one gives `signature: undefined`.
 */
export function splitSignature(raw: Buffer): { payload: Buffer; signature?: string } {
  const text = raw.toString('latin1');
  const headerEnd = text.indexOf('\n\n');
  const headers = headerEnd < 0 ? text : text.slice(0, headerEnd + 1);
  const lines = headers.split('\n');
  const kept: string[] = [];
  let sig: string[] | undefined;
  let inSig = false;
  for (const line of lines) {
    if (inSig && line.startsWith(' ')) {
      sig!.push(line.slice(1));
      continue;
    }
    inSig = false;
    if (sig === undefined && (line.startsWith('gpgsig ') || line.startsWith('gpgsig-sha256 '))) {
      sig = [line.slice(line.indexOf(' ') + 1)];
      inSig = true;
      continue;
    }
    kept.push(line);
  }
  const payload = Buffer.from(kept.join('\n') + (headerEnd < 0 ? '' : text.slice(headerEnd + 1)), 'latin1');
  return { payload, signature: sig?.join('\n') };
}

/** verifyCommit checks a raw commit's signature against the trusted keys; it throws VerificationError. */
export async function verifyCommit(raw: Buffer, keys: TrustedKeys, commit: string): Promise<VerifiedSignature> {
  const { payload, signature } = splitSignature(raw);
  if (!signature) throw new VerificationError('Unsigned', `commit ${commit} is not signed`);
  if (signature.includes('-----BEGIN SSH SIGNATURE-----')) return verifySshSignature(payload, signature, keys, commit);
  if (signature.includes('-----BEGIN PGP SIGNATURE-----')) return verifyOpenPgp(payload, signature, keys, commit);
  throw new VerificationError('UnsupportedSignature', `commit ${commit} carries a signature that is neither SSH nor OpenPGP (X.509 signatures are not supported)`);
}

async function verifyOpenPgp(payload: Buffer, armored: string, keys: TrustedKeys, commit: string): Promise<VerifiedSignature> {
  if (keys.openpgp.length === 0) throw new VerificationError('UntrustedKey', `commit ${commit} has an OpenPGP signature but the verify Secret holds no *.asc keys`);
  let signature: openpgp.Signature;
  try {
    signature = await openpgp.readSignature({ armoredSignature: armored });
  } catch (err) {
    throw new VerificationError('InvalidSignature', `commit ${commit} has a malformed OpenPGP signature: ${(err as Error).message}`);
  }
  const message = await openpgp.createMessage({ binary: new Uint8Array(payload) });
  const result = await openpgp.verify({ message, signature, verificationKeys: keys.openpgp, expectSigned: false });
  for (const s of result.signatures) {
    try {
      await s.verified;
      const key = keys.openpgp.find((k) => k.getKeys(s.keyID).length > 0);
      return { format: 'openpgp', fingerprint: key ? key.getFingerprint().toUpperCase() : s.keyID.toHex().toUpperCase() };
    } catch (err) {
      const msg = (err as Error).message;
      if (/Could not find signing key/i.test(msg)) throw new VerificationError('UntrustedKey', `commit ${commit} is signed by OpenPGP key ${s.keyID.toHex().toUpperCase()}, which the verify Secret does not hold`);
      throw new VerificationError('InvalidSignature', `commit ${commit} has an OpenPGP signature that does not verify: ${msg}`);
    }
  }
  throw new VerificationError('InvalidSignature', `commit ${commit} has an OpenPGP signature without signatures`);
}

/** A reader of SSH wire-format strings (uint32 length, then bytes). */
class Wire {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  bytes(n: number): Buffer {
    if (this.at + n > this.buf.length) throw new Error('truncated');
    const b = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }
  u32(): number {
    return this.bytes(4).readUInt32BE(0);
  }
  string(): Buffer {
    return this.bytes(this.u32());
  }
  get done(): boolean {
    return this.at === this.buf.length;
  }
}

function sshString(b: Buffer | string): Buffer {
  const body = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length, 0);
  return Buffer.concat([len, body]);
}

/** An mpint without its sign-padding zero, base64url for a JWK. */
function b64u(b: Buffer): string {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i).toString('base64url');
}

const CURVES: Record<string, { crv: string; hash: string; size: number }> = {
  nistp256: { crv: 'P-256', hash: 'sha256', size: 32 },
  nistp384: { crv: 'P-384', hash: 'sha384', size: 48 },
  nistp521: { crv: 'P-521', hash: 'sha512', size: 66 },
};

/** sshPublicKey turns an SSH public key blob into a KeyObject (ed25519, RSA, ECDSA). */
function sshPublicKey(blob: Buffer): { key: KeyObject; type: string } {
  const w = new Wire(blob);
  const type = w.string().toString();
  if (type === 'ssh-ed25519') return { type, key: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: w.string().toString('base64url') }, format: 'jwk' }) };
  if (type === 'ssh-rsa') {
    const e = w.string();
    const n = w.string();
    return { type, key: createPublicKey({ key: { kty: 'RSA', e: b64u(e), n: b64u(n) }, format: 'jwk' }) };
  }
  const curve = /^ecdsa-sha2-(nistp\d+)$/.exec(type)?.[1];
  if (curve && CURVES[curve]) {
    w.string();
    const q = w.string();
    const size = CURVES[curve].size;
    if (q[0] !== 4 || q.length !== 1 + 2 * size) throw new Error('unsupported ECDSA point encoding');
    return { type, key: createPublicKey({ key: { kty: 'EC', crv: CURVES[curve].crv, x: q.subarray(1, 1 + size).toString('base64url'), y: q.subarray(1 + size).toString('base64url') }, format: 'jwk' }) };
  }
  throw new Error(`key type ${type} is not supported`);
}

/** fingerprintOf is OpenSSH's SHA256 fingerprint of a key blob. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * verifySshSignature checks an SSHSIG signature (the format `ssh-keygen -Y sign` and git's
 * gpg.format=ssh write) over the payload in the `git` namespace. Hand-written over node:crypto: the
 * format is a few length-prefixed fields and no maintained package verifies it in-process.
 */
function verifySshSignature(payload: Buffer, armored: string, keys: TrustedKeys, commit: string): VerifiedSignature {
  const body = armored.replace(/-----(BEGIN|END) SSH SIGNATURE-----/g, '').replace(/\s+/g, '');
  let publicKey: Buffer, namespace: string, reserved: Buffer, hashAlg: string, sigBlob: Buffer;
  try {
    const w = new Wire(Buffer.from(body, 'base64'));
    if (w.bytes(6).toString() !== 'SSHSIG') throw new Error('no SSHSIG magic');
    const version = w.u32();
    if (version !== 1) throw new Error(`version ${version}`);
    publicKey = w.string();
    namespace = w.string().toString();
    reserved = w.string();
    hashAlg = w.string().toString();
    sigBlob = w.string();
  } catch (err) {
    throw new VerificationError('InvalidSignature', `commit ${commit} has a malformed SSH signature (${(err as Error).message})`);
  }
  if (namespace !== 'git') throw new VerificationError('InvalidSignature', `commit ${commit} has an SSH signature for namespace ${JSON.stringify(namespace)}, not "git"`);
  if (hashAlg !== 'sha256' && hashAlg !== 'sha512') throw new VerificationError('UnsupportedSignature', `commit ${commit} has an SSH signature over ${hashAlg}; only sha256 and sha512 are accepted`);
  const fingerprint = sshFingerprint(publicKey);
  if (!keys.ssh.some((k) => k.blob.equals(publicKey))) throw new VerificationError('UntrustedKey', `commit ${commit} is signed by SSH key ${fingerprint}, which the verify Secret does not list`);
  let key: { key: KeyObject; type: string };
  try {
    key = sshPublicKey(publicKey);
  } catch (err) {
    throw new VerificationError('UnsupportedSignature', `commit ${commit}: ${(err as Error).message}`);
  }
  const signed = Buffer.concat([Buffer.from('SSHSIG'), sshString(namespace), sshString(reserved), sshString(hashAlg), sshString(createHash(hashAlg).update(payload).digest())]);
  let ok = false;
  try {
    const s = new Wire(sigBlob);
    const alg = s.string().toString();
    const raw = s.string();
    if (key.type === 'ssh-ed25519' && alg === 'ssh-ed25519') ok = cryptoVerify(null, signed, key.key, raw);
    else if (key.type === 'ssh-rsa' && (alg === 'rsa-sha2-256' || alg === 'rsa-sha2-512')) ok = cryptoVerify(alg === 'rsa-sha2-256' ? 'sha256' : 'sha512', signed, key.key, raw);
    else if (key.type === alg && alg.startsWith('ecdsa-sha2-')) {
      const curve = CURVES[alg.slice('ecdsa-sha2-'.length)]!;
      const rs = new Wire(raw);
      const pad = (b: Buffer) => {
        const t = b64u(b);
        const v = Buffer.from(t, 'base64url');
        return Buffer.concat([Buffer.alloc(Math.max(0, curve.size - v.length)), v]);
      };
      const r = pad(rs.string());
      const sv = pad(rs.string());
      ok = cryptoVerify(curve.hash, signed, { key: key.key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, sv]));
    } else throw new Error(`signature algorithm ${alg} does not match key type ${key.type}`);
  } catch (err) {
    throw new VerificationError('InvalidSignature', `commit ${commit} has an SSH signature that cannot be checked: ${(err as Error).message}`);
  }
  if (!ok) throw new VerificationError('InvalidSignature', `commit ${commit}'s SSH signature by ${fingerprint} does not match its content`);
  return { format: 'ssh', fingerprint };
}
