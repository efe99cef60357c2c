import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { loadSuite, runCase } from '../../src/policy/conformance.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const suiteDir = resolve(repoRoot, '../shared/conformance/opa-v1');
const passingFile = resolve(dirname(fileURLToPath(import.meta.url)), 'conformance-passing.txt');

// The suite lives beside the repository (shared/ next to main/ in CI); without it there is nothing to guard.
describe.skipIf(!existsSync(suiteDir))('OPA conformance suite', () => {
  it('keeps every case listed in conformance-passing.txt passing', () => {
    const cases = loadSuite(suiteDir);
    const byId = new Map(cases.map((c) => [c.id, c]));
    const expected = readFileSync(passingFile, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(expected.length).toBeGreaterThan(1900);
    const regressions: string[] = [];
    for (const id of expected) {
      const c = byId.get(id);
      if (!c) {
        regressions.push(`${id}: case no longer exists in the suite`);
        continue;
      }
      const r = runCase(c);
      if (r.status !== 'pass') regressions.push(`${id} ${JSON.stringify(c.note)}: ${r.reason ?? r.status}`);
    }
    expect(regressions).toEqual([]);
  }, 120_000);

  it('passes at least 97% of the suite', () => {
    const cases = loadSuite(suiteDir);
    const results = cases.map(runCase);
    const passed = results.filter((r) => r.status === 'pass').length;
    expect(passed / cases.length).toBeGreaterThanOrEqual(0.97);
  }, 120_000);
});
