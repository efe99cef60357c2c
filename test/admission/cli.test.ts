import { join } from 'node:path';

import { afterEach,describe, expect, it } from 'vitest';

import { runCli } from '../helpers/run-cli.js';

const FIX = join(import.meta.dirname, 'fixtures');

const run = runCli;

afterEach(() => {
  process.exitCode = undefined;
});

describe('skiff policy verify', () => {
  it('runs gator suites; YAML booleans, counts and message regexes; last line N passed, M failed', async () => {
    const r = await run('policy', 'verify', join(FIX, 'suites/required-labels.yaml'), join(FIX, 'suites/referential.yaml'));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n').at(-1)).toBe('18 passed, 0 failed');
    expect(r.out).toMatch(/^ok\t.*required-labels.yaml/m);
  });

  it('reports failing cases like gator, exits 1, and counts an unusable template as failures', async () => {
    const r = await run('policy', 'verify', join(FIX, 'suites-failing/wrong-expectations.yaml'));
    expect(r.code).toBe(1);
    expect(r.out).toContain('--- FAIL: expectations-that-do-not-hold / says-no-but-violates');
    expect(r.out).toContain('got 1 violations but want none: got messages ["you must provide labels: {\\"owner\\"}"]');
    expect(r.out).toContain('got 1 violations but want exactly 2');
    expect(r.out).toContain('the constraint is valid but the test expects it to be invalid');
    expect(r.out).toMatch(/cel-only-template \/ any .*\n.*only engine is CEL/);
    expect(r.out).toMatch(/broken-template-without-cases \/ \(setup\) .*\n.*no "violation" rule/);
    expect(r.out).toContain('assertion.violations, if set, must be a nonnegative integer, "yes", or "no" (got "1")');
    expect(r.out.trim().split('\n').at(-1)).toBe('1 passed, 6 failed');
  });

  it('counts a missing suite file as a failure', async () => {
    const r = await run('policy', 'verify', join(FIX, 'suites/nope.yaml'));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/cannot read: ENOENT/);
    expect(r.out.trim().split('\n').at(-1)).toBe('0 passed, 1 failed');
  });
});

describe('skiff admission check', () => {
  it('prints the contract JSON and exits 1 when an object is denied', async () => {
    const r = await run('admission', 'check', '-f', join(FIX, 'objects/pod-no-labels.yaml'), '-f', join(FIX, 'objects/pod-owner-ok.yaml'), '--policies', join(FIX, 'templates/k8srequiredlabels.yaml'), '--policies', join(FIX, 'constraints/must-have-owner.yaml'), '-o', 'json');
    expect(r.code).toBe(1);
    const out = JSON.parse(r.out) as unknown[];
    expect(out).toEqual([
      { file: join(FIX, 'objects/pod-no-labels.yaml'), kind: 'Pod', name: 'bare', allowed: false, violations: [{ policy: 'K8sRequiredLabels/must-have-owner', message: '[must-have-owner] you must provide labels: {"owner"}' }] },
      { file: join(FIX, 'objects/pod-owner-ok.yaml'), kind: 'Pod', name: 'ok', allowed: true, violations: [] },
    ]);
  });

  it('applies --pss LEVEL[:VERSION] to pods and exits 0 when all are allowed', async () => {
    const denied = await run('admission', 'check', '--pss', 'restricted', '-f', join(FIX, 'objects/pod-owner-ok.yaml'), '-o', 'json');
    expect(denied.code).toBe(1);
    expect((JSON.parse(denied.out) as Array<{ violations: Array<{ policy: string; message: string }> }>)[0]!.violations[0]).toMatchObject({ policy: 'pod-security/restricted', message: expect.stringMatching(/^violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false/) });
    const ok = await run('admission', 'check', '--pss', 'baseline:v1.30', '-f', join(FIX, 'objects/pod-owner-ok.yaml'));
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('1 allowed, 0 denied');
  });

  it('rejects a bad --pss value as a usage error (exit 2)', async () => {
    const r = await run('admission', 'check', '--pss', 'strict', '-f', join(FIX, 'objects/pod-owner-ok.yaml'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/level "strict" must be privileged, baseline or restricted/);
  });
});

describe('skiff policy verify with directories', () => {
  it('finds suites (kind Suite) under a directory, as gator does', async () => {
    const r = await run('policy', 'verify', join(FIX, 'suites'));
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n').at(-1)).toBe('26 passed, 0 failed');
    const none = await run('policy', 'verify', join(FIX, 'templates'));
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/no suites \(kind: Suite\)/);
  });
});
