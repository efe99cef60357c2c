import { describe, expect, it } from 'vitest';

import { DecisionRing } from '../../src/dashboard/index.js';

const secretReview = (op = 'CREATE') => ({
  kind: { group: '', version: 'v1', kind: 'Secret' },
  namespace: 'default',
  name: 'db',
  operation: op,
  object: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'default' }, stringData: { password: 'hunter2' } },
});

describe('DecisionRing', () => {
  it('keeps the newest decisions up to its capacity, newest first, and reads after an id', () => {
    const ring = new DecisionRing(3);
    for (let i = 0; i < 5; i++) ring.fromAuthorizer({ policy: `p${i}`, input: {}, allowed: i % 2 === 0, durationUs: i });
    expect(ring.recent().map((d) => d.policy)).toEqual(['p4', 'p3', 'p2']);
    expect(ring.recent(4).map((d) => d.policy)).toEqual(['p4']);
    expect(ring.recent(5)).toEqual([]);
    expect(() => new DecisionRing(0)).toThrow(/capacity/);
  });

  it('records admission violations only, with Secret values masked in the input and the messages', () => {
    const ring = new DecisionRing();
    ring.fromAdmission({ review: secretReview(), allowed: true, denials: [], warnings: [] });
    expect(ring.recent()).toEqual([]);
    ring.fromAdmission({ review: secretReview(), allowed: false, denials: [{ policy: 'K8sNoPasswords/no-pw', message: '[no-pw] password hunter2 is too weak' }], warnings: [] });
    const [d] = ring.recent();
    expect(d).toMatchObject({ source: 'admission', allowed: false, policy: 'Secret default/db (K8sNoPasswords/no-pw)' });
    expect(JSON.stringify(d)).not.toContain('hunter2');
    expect(d!.erased.length).toBeGreaterThan(0);
  });

  it('masks credential headers of gateway authorization inputs and keeps the rest', () => {
    const ring = new DecisionRing();
    const input = { attributes: { request: { http: { method: 'GET', headers: { cookie: 'sid=abc', 'x-api-key': 'k', host: 'h' } } } } };
    ring.fromAuthorizer({ policy: 'data.authz.allow', input, allowed: true, durationUs: 3 });
    const [d] = ring.recent();
    expect((d!.input as typeof input).attributes.request.http.headers).toEqual({ cookie: '**REDACTED**', 'x-api-key': '**REDACTED**', host: 'h' });
    // The caller's object is left as it was (the request still needs its headers).
    expect(input.attributes.request.http.headers.cookie).toBe('sid=abc');
  });
});
