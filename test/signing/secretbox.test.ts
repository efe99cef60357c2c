import { describe, expect, it } from 'vitest';

import { decryptSigstoreKey } from '../../src/signing/encrypted-key.js';
import { loadPrivateKey } from '../../src/signing/index.js';
import { poly1305, secretboxOpen, secretboxSeal } from '../../src/signing/secretbox.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// NaCl's published secretbox vector (tests/secretbox.c in the NaCl distribution).
const KEY = hex('1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389');
const NONCE = hex('69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37');
const MESSAGE = hex(`be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c61296c
  dc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705`);
const BOX = hex(`f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c972
  71d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74e355a5`);

function pemOf(label: string, body: Buffer): string {
  return `-----BEGIN ${label}-----\n${body.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

describe('secretbox (XSalsa20-Poly1305)', () => {
  it('seals NaCl\'s vector to the published box and opens it back', () => {
    expect(Buffer.from(secretboxSeal(MESSAGE, NONCE, KEY)).toString('hex')).toBe(BOX.toString('hex'));
    expect(Buffer.from(secretboxOpen(BOX, NONCE, KEY)!).toString('hex')).toBe(MESSAGE.toString('hex'));
  });

  it('computes poly1305-donna\'s published tag', () => {
    const tag = poly1305(hex('eea6a7251c1e72916d11c2cb214d3c252539121d8e234e652d651fa4c8cff880'), BOX.subarray(16));
    expect(Buffer.from(tag).toString('hex')).toBe('f3ffc7703f9400e52a7dfb4b3d3305d9');
  });

  it('refuses a box with one flipped bit', () => {
    const forged = Buffer.from(BOX);
    forged[40]! ^= 1;
    expect(secretboxOpen(forged, NONCE, KEY)).toBeUndefined();
  });
});

describe('cosign\'s encrypted key envelope', () => {
  // go-securesystemslib's vector: cosign's envelope with its default scrypt cost, password "supersecret".
  const envelope = '{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}';
  const pem = pemOf('ENCRYPTED SIGSTORE PRIVATE KEY', Buffer.from(envelope));

  it('decrypts a vector written by the Go implementation cosign uses', () => {
    expect(decryptSigstoreKey(pem, 'supersecret', 'k.key').toString()).toBe('reallyimportant');
  });

  it('names the file and COSIGN_PASSWORD on a wrong password', () => {
    expect(() => decryptSigstoreKey(pem, 'nope', 'k.key')).toThrow(/k\.key: wrong password .*COSIGN_PASSWORD/);
  });

  it('refuses absurd scrypt parameters before running them', () => {
    const bad = pemOf('ENCRYPTED SIGSTORE PRIVATE KEY', Buffer.from(envelope.replace('"N":32768', '"N":99')));
    expect(() => loadPrivateKey(bad, 'k.key', 'supersecret')).toThrow(/unsupported scrypt parameters N=99/);
  });
});
