import { createHash } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { caBundleHash, FailureLimiter, formatNodeToken, hashJoinSecret, JoinError, joinSecretOf, newJoinSecret, parseNodeToken, sameHash, verifyJoinSecret } from '../../src/cluster/index.js';

const BUNDLE = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('node token', () => {
  it("has K3s's secure form and pins the SHA-256 of the bundle PEM", () => {
    const secret = newJoinSecret();
    const token = formatNodeToken(BUNDLE, secret);
    expect(token).toMatch(/^K10[0-9a-f]{64}::node:[A-Za-z0-9_-]{43}$/);
    expect(token.slice(3, 67)).toBe(createHash('sha256').update(BUNDLE).digest('hex'));
    expect(parseNodeToken(token)).toEqual({ caHash: caBundleHash(BUNDLE), user: 'node', secret });
    // One changed byte of the bundle changes the pin.
    expect(caBundleHash(BUNDLE.replace('MIIB', 'MIIC'))).not.toBe(caBundleHash(BUNDLE));
  });

  it('refuses malformed tokens without echoing the secret', () => {
    for (const bad of ['', 'secret', `K10${'a'.repeat(63)}::node:${'s'.repeat(20)}`, `K10${'A'.repeat(64)}::node:${'s'.repeat(20)}`, `K10${'a'.repeat(64)}::node:short`, `K10${'a'.repeat(64)}:node:${'s'.repeat(20)}`]) {
      let err: unknown;
      try {
        parseNodeToken(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(JoinError);
      expect((err as JoinError).code).toBe('join_token');
      if (bad.length > 10) expect((err as Error).message).not.toContain(bad.slice(-16));
    }
  });

  it('takes a --cluster-init secret bare or from a full token', () => {
    const secret = 'abcdefghijklmnop-1';
    expect(joinSecretOf(secret)).toBe(secret);
    expect(joinSecretOf(formatNodeToken(BUNDLE, secret))).toBe(secret);
    expect(() => joinSecretOf('short')).toThrow(JoinError);
    expect(() => joinSecretOf('has:colon-and-long-enough')).toThrow(JoinError);
  });

  it('compares hashes whatever their lengths', () => {
    const h = caBundleHash(BUNDLE);
    expect(sameHash(h, h)).toBe(true);
    expect(sameHash(h, h.slice(0, 63) + (h.endsWith('0') ? '1' : '0'))).toBe(false);
    expect(sameHash(h, h.slice(0, 10))).toBe(false);
    expect(sameHash('', h)).toBe(false);
  });
});

describe('join secret hash', () => {
  it('keeps only a salted scrypt hash that verifies the secret and nothing else', async () => {
    const secret = newJoinSecret();
    const stored = await hashJoinSecret(secret);
    expect(stored).toMatch(/^scrypt\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(stored).not.toContain(secret);
    expect(await hashJoinSecret(secret)).not.toBe(stored);
    expect(await verifyJoinSecret(secret, stored)).toBe(true);
    expect(await verifyJoinSecret(secret.slice(0, -1) + (secret.endsWith('A') ? 'B' : 'A'), stored)).toBe(false);
    expect(await verifyJoinSecret('', stored)).toBe(false);
    expect(await verifyJoinSecret(secret, 'plain$x$y')).toBe(false);
    expect(await verifyJoinSecret(secret, secret)).toBe(false);
  });

  it('takes as long for a near miss as for a wild guess (one derivation each)', async () => {
    const secret = newJoinSecret();
    const stored = await hashJoinSecret(secret);
    const time = async (guess: string) => {
      const t = process.hrtime.bigint();
      for (let i = 0; i < 5; i++) await verifyJoinSecret(guess, stored);
      return Number(process.hrtime.bigint() - t) / 1e6;
    };
    await time('warm-up');
    const near = await time(secret.slice(0, -1) + '0');
    const far = await time('x');
    // Each is a full scrypt run: the times are of one order, far from an early exit's microseconds.
    expect(near).toBeGreaterThan(5 * 5);
    expect(far).toBeGreaterThan(5 * 5);
    expect(Math.max(near, far) / Math.min(near, far)).toBeLessThan(10);
  });
});

describe('FailureLimiter', () => {
  it('doubles the wait per failure from one source, up to a ceiling, and clears on success', () => {
    let now = 0;
    const l = new FailureLimiter({ baseMs: 100, maxMs: 1000, now: () => now });
    expect(l.retryAfterMs('a')).toBe(0);
    expect(l.failed('a')).toBe(100);
    expect(l.failed('a')).toBe(200);
    expect(l.failed('a')).toBe(400);
    expect(l.failed('a')).toBe(800);
    expect(l.failed('a')).toBe(1000);
    expect(l.failed('a')).toBe(1000);
    expect(l.retryAfterMs('a')).toBe(1000);
    expect(l.retryAfterMs('b')).toBe(0);
    now = 600;
    expect(l.retryAfterMs('a')).toBe(400);
    now = 1000;
    expect(l.retryAfterMs('a')).toBe(0);
    l.succeeded('a');
    expect(l.failed('a')).toBe(100);
  });

  it('remembers a bounded number of sources', () => {
    let now = 0;
    const l = new FailureLimiter({ baseMs: 10, maxMs: 10, maxSources: 3, now: () => now });
    for (const s of ['a', 'b', 'c', 'd', 'e']) l.failed(s);
    expect(l.retryAfterMs('a')).toBe(0);
    expect(l.retryAfterMs('b')).toBe(0);
    expect(l.retryAfterMs('e')).toBe(10);
    now = 100;
    l.failed('f');
    expect(l.retryAfterMs('c')).toBe(0);
  });
});
