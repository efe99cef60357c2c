import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { DecisionLogger, maskInput, PolicyEngine, readDecisions } from '../../src/policy/index.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'skiff-decisions-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('decision logs', () => {
  it('records each evaluation of a prepared query as one NDJSON line', () => {
    const path = join(tmp(), 'decisions.ndjson');
    const e = new PolicyEngine();
    e.addModule('a.rego', 'package authz\ndefault allow := false\nallow if input.user == "admin"');
    const log = new DecisionLogger({ path, mask: ['/password'], revision: 'rev-7' });
    const q = e.prepare('data.authz.allow', { decisionLog: log });
    q.eval({ input: { user: 'admin', password: 'hunter2' } });
    q.eval({ input: { user: 'eve', password: 'x' } });
    const lines = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ query: 'data.authz.allow', result: true, revision: 'rev-7', input: { user: 'admin', password: '**REDACTED**' }, erased: ['/input/password'] });
    expect(lines[1]).toMatchObject({ result: false });
    expect(typeof lines[0]!.decision_id).toBe('string');
    expect(lines[0]!.duration_us).toBeGreaterThanOrEqual(0);
  });

  it('masks nested fields without touching the caller input', () => {
    const input = { user: { name: 'a', token: 't' } };
    const { input: masked, erased } = maskInput(input, ['user.token', '/missing/field']);
    expect(masked).toEqual({ user: { name: 'a', token: '**REDACTED**' } });
    expect(erased).toEqual(['/input/user/token']);
    expect(input.user.token).toBe('t');
  });

  it('rotates by size and lists decisions across rotated files with filters', () => {
    const dir = tmp();
    const path = join(dir, 'd.ndjson');
    const log = new DecisionLogger({ path, maxBytes: 600, maxFiles: 2 });
    for (let i = 0; i < 30; i++) log.record({ query: i % 2 ? 'data.a.allow' : 'data.b.allow', input: { i }, result: i % 3 === 0, durationUs: 1 });
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['d.ndjson', 'd.ndjson.1', 'd.ndjson.2']);
    for (const f of files) expect(readFileSync(join(dir, f)).length).toBeLessThanOrEqual(600);
    const all = readDecisions(path);
    expect(all.length).toBeGreaterThan(3);
    expect(all.length).toBeLessThan(30);
    expect(readDecisions(path, { query: 'data.a' }).every((d) => d.query === 'data.a.allow')).toBe(true);
    expect(readDecisions(path, { result: 'true' }).every((d) => d.result === true)).toBe(true);
    expect(readDecisions(path, { limit: 2 })).toHaveLength(2);
    const one = all[0]!;
    expect(readDecisions(path, { id: one.decision_id })).toEqual([one]);
  });

  it('records evaluation errors', () => {
    const path = join(tmp(), 'e.ndjson');
    const e = new PolicyEngine();
    e.addModule('a.rego', 'package t\np := 1\np := 2');
    expect(() => e.prepare('data.t.p', { decisionLog: new DecisionLogger({ path }) }).eval({})).toThrow();
    expect(readDecisions(path, { errorsOnly: true })[0]!.error).toContain('eval_conflict_error');
  });

  it('never writes a Secret value from an admission review, whatever the policy quotes', () => {
    const path = join(tmp(), 's.ndjson');
    const b64 = (x: string) => Buffer.from(x).toString('base64');
    const secret = (pw: string) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ stringData: { pw: `applied-${pw}` } }) } }, data: { pw: b64(pw) }, stringData: { extra: `plain-${pw}` } });
    const review = { kind: { group: '', version: 'v1', kind: 'Secret' }, operation: 'UPDATE', object: secret('new-s3cret'), oldObject: secret('old-s3cret') };
    const input = { review, parameters: { n: 1 } };
    const log = new DecisionLogger({ path, mask: ['/parameters/n', '/review/object/data'] });
    const d = log.record({ query: 'data.x.violation', input, result: [{ msg: `saw ${JSON.stringify(input)}` }], error: 'failed on new-s3cret', durationUs: 1 });
    for (const o of ['object', 'oldObject'] as const) {
      expect(d.input).toMatchObject({ review: { [o]: { data: '**REDACTED**', stringData: '**REDACTED**', metadata: { name: 'db', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '**REDACTED**' } } } } });
    }
    expect(d.erased).toEqual([
      '/input/review/object/data',
      '/input/review/object/stringData',
      '/input/review/object/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration',
      '/input/review/oldObject/data',
      '/input/review/oldObject/stringData',
      '/input/review/oldObject/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration',
      '/input/parameters/n',
    ]);
    expect(d.error).toBe('failed on **REDACTED**');
    const text = readFileSync(path, 'utf8');
    for (const pw of ['new-s3cret', 'old-s3cret']) for (const v of [pw, b64(pw), `applied-${pw}`, `plain-${pw}`]) expect(text).not.toContain(v);
    expect(text).toContain('saw ');
    // the caller's input is left as it was
    expect(review.object.data.pw).toBe(b64('new-s3cret'));

    // other kinds, and a Secret of another group, are logged as they are
    const plain = new DecisionLogger({ path });
    const cm = plain.record({ query: 'q', input: { review: { kind: { group: '', version: 'v1', kind: 'ConfigMap' }, object: { apiVersion: 'v1', kind: 'ConfigMap', data: { a: 'visible' } } } }, durationUs: 1 });
    expect(cm).toMatchObject({ input: { review: { object: { data: { a: 'visible' } } } } });
    expect(cm.erased).toBeUndefined();
    const other = plain.record({ query: 'q', input: { review: { kind: { group: 'example.com', version: 'v1', kind: 'Secret' }, object: { apiVersion: 'example.com/v1', kind: 'Secret', data: { a: 'visible' } } } }, durationUs: 1 });
    expect(other).toMatchObject({ input: { review: { object: { data: { a: 'visible' } } } } });
    // a DELETE review has only the old object, and an AdmissionReview puts it under request
    const del = plain.record({ query: 'q', input: { request: { kind: { group: '', version: 'v1', kind: 'Secret' }, operation: 'DELETE', oldObject: { apiVersion: 'v1', kind: 'Secret', data: { k: b64('gone-s3cret') } } } }, durationUs: 1 });
    expect(del.erased).toEqual(['/input/request/oldObject/data']);
    expect(readFileSync(path, 'utf8')).not.toContain(b64('gone-s3cret'));
  });
});
