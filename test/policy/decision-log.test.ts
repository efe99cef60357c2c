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
});
