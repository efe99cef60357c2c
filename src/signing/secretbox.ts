/**
 * NaCl's secretbox (XSalsa20 stream cipher + Poly1305 authenticator), the cipher cosign's encrypted
 * private keys use. Node's crypto has neither XSalsa20 nor a standalone Poly1305, and pulling in a
 * package for the few hundred bytes of one key file is not worth a dependency, so it is written out
 * here from the NaCl description; `test/signing/secretbox.test.ts` checks it against NaCl's vectors.
 * Keys are tiny, so clarity wins over speed (Poly1305 runs on BigInt).
 */

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574];

function rotl(v: number, n: number): number {
  return (v << n) | (v >>> (32 - n));
}

/** rounds runs Salsa20's 20 rounds (10 double rounds) over the state x in place. */
function rounds(x: Uint32Array): void {
  const qr = (a: number, b: number, c: number, d: number): void => {
    x[b]! ^= rotl((x[a]! + x[d]!) | 0, 7);
    x[c]! ^= rotl((x[b]! + x[a]!) | 0, 9);
    x[d]! ^= rotl((x[c]! + x[b]!) | 0, 13);
    x[a]! ^= rotl((x[d]! + x[c]!) | 0, 18);
  };
  for (let i = 0; i < 10; i++) {
    qr(0, 4, 8, 12); qr(5, 9, 13, 1); qr(10, 14, 2, 6); qr(15, 3, 7, 11);
    qr(0, 1, 2, 3); qr(5, 6, 7, 4); qr(10, 11, 8, 9); qr(15, 12, 13, 14);
  }
}

function words(bytes: Uint8Array, offset: number, count: number): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, count * 4);
  return Array.from({ length: count }, (_, i) => view.getUint32(i * 4, true));
}

function initialState(key: Uint8Array, input16: Uint8Array): Uint32Array {
  const k = words(key, 0, 8);
  const n = words(input16, 0, 4);
  return Uint32Array.from([SIGMA[0]!, ...k.slice(0, 4), SIGMA[1]!, ...n, SIGMA[2]!, ...k.slice(4), SIGMA[3]!]);
}

/** hsalsa20 derives XSalsa20's subkey from the key and the first 16 bytes of the nonce. */
export function hsalsa20(key: Uint8Array, nonce16: Uint8Array): Uint8Array {
  const x = initialState(key, nonce16);
  rounds(x);
  const out = new Uint8Array(32);
  const view = new DataView(out.buffer);
  [0, 5, 10, 15, 6, 7, 8, 9].forEach((w, i) => view.setUint32(i * 4, x[w]!, true));
  return out;
}

/** xsalsa20 returns `length` bytes of XSalsa20 key stream for a 32-byte key and a 24-byte nonce. */
function xsalsa20Stream(key: Uint8Array, nonce: Uint8Array, length: number): Uint8Array {
  const subkey = hsalsa20(key, nonce.subarray(0, 16));
  const input = new Uint8Array(16);
  input.set(nonce.subarray(16, 24), 0);
  const out = new Uint8Array(length);
  const block = new Uint8Array(64);
  const blockView = new DataView(block.buffer);
  for (let counter = 0, pos = 0; pos < length; counter++, pos += 64) {
    new DataView(input.buffer).setUint32(8, counter, true);
    const start = initialState(subkey, input);
    const x = Uint32Array.from(start);
    rounds(x);
    for (let i = 0; i < 16; i++) blockView.setUint32(i * 4, (x[i]! + start[i]!) >>> 0, true);
    out.set(block.subarray(0, Math.min(64, length - pos)), pos);
  }
  return out;
}

const P1305 = (1n << 130n) - 5n;

function leNumber(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

/** poly1305 computes the one-time authenticator of `message` under a 32-byte one-time key. */
export function poly1305(key: Uint8Array, message: Uint8Array): Uint8Array {
  const r = leNumber(key.subarray(0, 16)) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  const s = leNumber(key.subarray(16, 32));
  let acc = 0n;
  for (let i = 0; i < message.length; i += 16) {
    const chunk = message.subarray(i, i + 16);
    acc = ((acc + leNumber(chunk) + (1n << BigInt(8 * chunk.length))) * r) % P1305;
  }
  let tag = (acc + s) & ((1n << 128n) - 1n);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++, tag >>= 8n) out[i] = Number(tag & 0xffn);
  return out;
}

function equalConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** secretboxSeal encrypts and authenticates: the 16-byte tag followed by the ciphertext (NaCl's layout). */
export function secretboxSeal(message: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array {
  const stream = xsalsa20Stream(key, nonce, 32 + message.length);
  const cipher = message.map((b, i) => b ^ stream[32 + i]!);
  const out = new Uint8Array(16 + cipher.length);
  out.set(poly1305(stream.subarray(0, 32), cipher), 0);
  out.set(cipher, 16);
  return out;
}

/** secretboxOpen checks the tag and decrypts; it returns undefined when the box does not authenticate. */
export function secretboxOpen(box: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array | undefined {
  if (box.length < 16) return undefined;
  const cipher = box.subarray(16);
  const stream = xsalsa20Stream(key, nonce, 32 + cipher.length);
  if (!equalConstantTime(poly1305(stream.subarray(0, 32), cipher), box.subarray(0, 16))) return undefined;
  return cipher.map((b, i) => b ^ stream[32 + i]!);
}
