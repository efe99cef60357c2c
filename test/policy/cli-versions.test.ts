import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { runCli as run } from '../helpers/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'skiff-rego-versions-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A v0 policy and its v0 tests, as the gatekeeper-library writes them (run there with pre-1.0 opa).
const v0 = join(dir, 'v0');
mkdirSync(v0);
writeFileSync(join(v0, 'labels.rego'), 'package labels\n\nviolation[{"msg": msg}] {\n\tnot input.metadata.labels.owner\n\tmsg := "owner label missing"\n}\n');
writeFileSync(join(v0, 'labels_test.rego'), 'package labels\n\ntest_missing {\n\tcount(violation) == 1 with input as {"metadata": {"labels": {}}}\n}\n\ntest_present {\n\tcount(violation) == 0 with input as {"metadata": {"labels": {"owner": "me"}}}\n}\n');

// A v0-mode module that opts in to v1 with import rego.v1.
const optIn = join(dir, 'opt-in');
mkdirSync(optIn);
writeFileSync(join(optIn, 'p.rego'), 'package optin\n\nimport rego.v1\n\np contains x if {\n\tsome x in [1, 2]\n}\n');

describe('skiff policy picks the Rego version as opa 1.x does', () => {
  it('check refuses v0 syntax by default with OPA messages, locations and carets', async () => {
    const r = await run('policy', 'check', v0);
    expect(r.code).toBe(1);
    const err = r.err + r.out;
    expect(err).toContain(`${join(v0, 'labels.rego')}:3:1: rego_parse_error: \`if\` keyword is required before rule body`);
    expect(err).toContain(`${join(v0, 'labels.rego')}:3:1: rego_parse_error: \`contains\` keyword is required for partial set rules`);
    expect(err).toContain(`${join(v0, 'labels_test.rego')}:3:1: rego_parse_error: \`if\` keyword is required before rule body`);
    expect(err).toContain('  violation[{"msg": msg}] {\n  ^');
    const v1 = await run('policy', 'check', '--v1-compatible', v0);
    expect(v1.code).toBe(1);
  });

  it('check, eval and test accept v0 with --v0 and --v0-compatible', async () => {
    for (const flag of ['--v0', '--v0-compatible']) {
      const c = await run('policy', 'check', flag, v0);
      expect(c.code).toBe(0);
      expect(c.out).toContain('2 module(s) OK');
    }
    const e = await run('policy', 'eval', '--v0', '-d', join(v0, 'labels.rego'), 'count(data.labels.violation)');
    expect(JSON.parse(e.out).result[0].expressions[0].value).toBe(1);
    const t = await run('policy', 'test', '--v0', v0);
    expect(t.code).toBe(0);
    expect(t.out).toContain('PASS: 2/2');
  });

  it('v0 wins when both --v0-compatible and --v1-compatible are given, as in opa', async () => {
    const c = await run('policy', 'check', '--v0-compatible', '--v1-compatible', v0);
    expect(c.code).toBe(0);
  });

  it('honours import rego.v1 in v0 mode, and checks that module as v1', async () => {
    const e = await run('policy', 'eval', '--v0', '-d', optIn, 'data.optin.p');
    expect(JSON.parse(e.out).result[0].expressions[0].value).toEqual([1, 2]);
    writeFileSync(join(optIn, 'q.rego'), 'package optin\n\nimport rego.v1\n\nq[x] {\n\tx := 1\n}\n');
    const c = await run('policy', 'check', '--v0', optIn);
    rmSync(join(optIn, 'q.rego'));
    expect(c.code).toBe(1);
    expect(c.err + c.out).toContain(`${join(optIn, 'q.rego')}:5:1: rego_parse_error: \`contains\` keyword is required for partial set rules`);
  });

  it('fmt --v0 keeps v0 syntax; fmt --v0-v1 prints v1 with import rego.v1, which both versions accept', async () => {
    // labels.rego is already in canonical v0 style: nothing to change, so --fail passes
    const same = await run('policy', 'fmt', '--v0', '--fail', join(v0, 'labels.rego'));
    expect(same.code).toBe(0);
    expect(same.out).toBe('');
    writeFileSync(join(dir, 'messy-v0.rego'), 'package labels\nviolation[{"msg": msg}] { not input.ok; msg := "x" }\n');
    const v0Out = await run('policy', 'fmt', '--v0', join(dir, 'messy-v0.rego'));
    expect(v0Out.out).toBe('package labels\n\nviolation[{"msg": msg}] {\n\tnot input.ok\n\tmsg := "x"\n}\n');
    const f = await run('policy', 'fmt', '--v0-v1', join(v0, 'labels.rego'));
    expect(f.code).toBe(0);
    expect(f.out).toContain('import rego.v1\n');
    expect(f.out).toContain('violation contains {"msg": msg} if {');
    writeFileSync(join(dir, 'formatted.rego'), f.out);
    expect((await run('policy', 'check', join(dir, 'formatted.rego'))).code).toBe(0);
    expect((await run('policy', 'check', '--v0', join(dir, 'formatted.rego'))).code).toBe(0);
    const plain = await run('policy', 'fmt', join(v0, 'labels.rego'));
    expect(plain.code).toBe(1);
    expect(plain.err + plain.out).toContain('`if` keyword is required before rule body');
  });
});
