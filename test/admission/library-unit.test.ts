import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { runCli } from '../helpers/run-cli.js';

// Folders shaped like the gatekeeper-library's src/<group>/<policy>/ unit tests (see the README
// beside them), run as the library's CI runs them: opa test with Rego v0.
const root = resolve(dirname(fileURLToPath(import.meta.url)), 'fixtures/library/unit');

describe('library-shaped Rego v0 unit tests (skiff policy test --v0)', () => {
  it('runs every test of a library-style folder, repeated names each on their own', async () => {
    const r = await runCli('policy', 'test', '--v0', '-v', resolve(root, 'image-pinning'));
    expect(r.err).toBe('');
    expect(r.out).toContain('14 passed, 0 failed');
    // the init-container copies of the container tests are separate tests, as in opa test
    expect(r.out).toContain('data.fixtureimagepinning.test_latest_is_unpinned#01: PASS');
    expect(r.code).toBe(0);
  });

  it('reports a failing body written under a name that an earlier passing test already uses', async () => {
    const r = await runCli('policy', 'test', '--v0', resolve(root, 'repeated-name-fails'));
    expect(r.code).toBe(1);
    expect(r.out).toContain('data.fixturerepeated.test_ok#01: FAIL');
    expect(r.out).not.toMatch(/test_ok: FAIL/);
    expect(r.out).toContain('2 passed, 1 failed');
  });

  it('fails `not violation` on an empty partial set, as OPA does', async () => {
    const r = await runCli('policy', 'test', '--v0', resolve(root, 'empty-set-negation'));
    expect(r.code).toBe(1);
    expect(r.out).toContain('data.fixtureemptyset.test_negated_empty_set: FAIL');
    expect(r.out).toContain('3 passed, 1 failed');
  });

  it('refuses the same v0 files in the default (v1) mode with OPA 1.x parse errors', async () => {
    const r = await runCli('policy', 'test', resolve(root, 'image-pinning'));
    expect(r.code).not.toBe(0);
    expect(r.err + r.out).toContain('rego_parse_error');
  });
});
