import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { runCli } from '../helpers/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'skiff-policy-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = runCli;

writeFileSync(join(dir, 'authz.rego'), 'package authz\n\ndefault allow := false\n\nallow if input.user == "admin"\n\nallow if {\n\tsome g in data.grants\n\tg == input.user\n}\n');
writeFileSync(join(dir, 'authz_test.rego'), 'package authz_test\n\nimport data.authz\n\ntest_admin if authz.allow with input as {"user": "admin"}\n\ntest_grant if authz.allow with input as {"user": "bob"}\n');
writeFileSync(join(dir, 'data.json'), JSON.stringify({ grants: ['bob'] }));
writeFileSync(join(dir, 'input.json'), JSON.stringify({ user: 'bob' }));

describe('skiff policy', () => {
  it('eval prints OPA result shape with expressions and bindings', async () => {
    const r = await run('policy', 'eval', '-d', dir, '-i', join(dir, 'input.json'), 'data.authz.allow');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ result: [{ expressions: [{ value: true, text: 'data.authz.allow' }] }] });
    const b = await run('policy', 'eval', '-d', dir, 'x := data.grants[_]');
    expect(JSON.parse(b.out).result[0].bindings).toEqual({ x: 'bob' });
    const u = await run('policy', 'eval', '-d', dir, 'data.authz.nope');
    expect(JSON.parse(u.out)).toEqual({});
  });

  it('test runs test_ rules and fails with exit 1 when one fails', async () => {
    const ok = await run('policy', 'test', dir, '--coverage');
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('PASS: 2/2');
    expect(ok.out).toMatch(/authz\.rego: \d+\.\d% /);
    writeFileSync(join(dir, 'extra_test.rego'), 'package extra_test\n\ntest_fails if false\n');
    const bad = await run('policy', 'test', dir);
    rmSync(join(dir, 'extra_test.rego'));
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('data.extra_test.test_fails: FAIL');
    // a repeated name is a second test, as in opa test: its failing body is reported, not masked
    writeFileSync(join(dir, 'dup_test.rego'), 'package dup_test\n\ntest_twice if true\n\ntest_twice if false\n');
    const dup = await run('policy', 'test', dir);
    rmSync(join(dir, 'dup_test.rego'));
    expect(dup.code).toBe(1);
    expect(dup.out).toContain('data.dup_test.test_twice#01: FAIL');
    expect(dup.out).toContain('3 passed, 1 failed');
  });

  it('check reports errors with location and caret, exit 1', async () => {
    const f = join(dir, 'broken', 'bad.rego');
    await import('node:fs').then((fs) => fs.mkdirSync(dirname(f), { recursive: true }));
    writeFileSync(f, 'package bad\n\np if {\n\tx > 1\n}\n');
    const r = await run('policy', 'check', dirname(f));
    expect(r.code).toBe(1);
    expect(r.err).toContain('bad.rego:4:2: rego_unsafe_var_error: var x is unsafe');
    expect(r.err).toContain('\tx > 1\n   ^');
    expect((await run('policy', 'check', join(dir, 'authz.rego'))).code).toBe(0);
  });

  it('fmt --diff shows changes and --write fixes the file', async () => {
    const f = join(dir, 'ugly.rego');
    writeFileSync(f, 'package ugly\np   if {   input.x   }\n');
    const d = await run('policy', 'fmt', '--diff', f);
    expect(d.out).toContain('+p if {');
    await run('policy', 'fmt', '--write', f);
    expect(readFileSync(f, 'utf8')).toBe('package ugly\n\np if {\n\tinput.x\n}\n');
    rmSync(f);
  });

  it('decisions lists what eval recorded', async () => {
    const log = join(dir, 'd.ndjson');
    await run('policy', 'eval', '-d', join(dir, 'authz.rego'), '--decision-log', log, 'data.authz.allow');
    const r = await run('policy', 'decisions', '--log', log, '-o', 'json');
    const ds = JSON.parse(r.out);
    expect(ds).toHaveLength(1);
    expect(ds[0]).toMatchObject({ query: 'data.authz.allow', result: false });
  });
});

const suite = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/conformance/opa-v1');
describe.skipIf(!existsSync(suite))('skiff conformance rego', () => {
  it('prints a per-folder table and the summary as its last line', async () => {
    const r = await run('conformance', 'rego', '--suite', suite, '--filter', '^(helloworld|bitsand)/');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/helloworld\s+2\s+0\s+0/);
    expect(r.out.trimEnd().split('\n').pop()).toBe('5 passed, 0 failed, 0 skipped');
  });

  it('exits 2 on a bad filter', async () => {
    expect((await run('conformance', 'rego', '--suite', suite, '--filter', '(')).code).toBe(2);
  });
});
