import { describe, expect, it } from 'vitest';

import { PolicyBackoff } from '../../src/controllers/policy-backoff.js';

describe('PolicyBackoff', () => {
  it('starts a back-off after 3 deadline failures within the window', () => {
    const b = new PolicyBackoff({ threshold: 3, windowMs: 10_000, baseMs: 5_000, maxMs: 20_000 });
    expect(b.failed('p', 0)).toBe(0);
    expect(b.failed('p', 11_000)).toBe(0); // the first one is out of the window by now
    expect(b.failed('p', 12_000)).toBe(0);
    expect(b.blockedFor('p', 12_000)).toBe(0);
    expect(b.failed('p', 13_000)).toBe(5_000);
    expect(b.blockedFor('p', 14_000)).toBe(4_000);
    expect(b.blockedFor('other', 14_000)).toBe(0);
    expect(b.blockedFor('p', 18_000)).toBe(0);
  });

  it('doubles the back-off when the policy fails again right after one, up to the maximum', () => {
    const b = new PolicyBackoff({ threshold: 2, baseMs: 5_000, maxMs: 12_000 });
    b.failed('p', 0);
    expect(b.failed('p', 1)).toBe(5_000);
    expect(b.failed('p', 6_000)).toBe(10_000);
    expect(b.failed('p', 17_000)).toBe(12_000);
    b.succeeded('p');
    expect(b.blockedFor('p', 17_001)).toBe(0);
    expect(b.failed('p', 30_000)).toBe(0);
  });

  it('forgets everything when the policies change', () => {
    const b = new PolicyBackoff({ threshold: 1 });
    expect(b.failed('p', 0)).toBe(5_000);
    b.clear();
    expect(b.blockedFor('p', 1)).toBe(0);
  });
});
