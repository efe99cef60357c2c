import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { loadSuite, runCase } from '../../src/policy/conformance.js';

const dir = resolve(dirname(fileURLToPath(import.meta.url)), 'semantics-cases');

describe('Rego semantics regression cases (OPA case format)', () => {
  const cases = loadSuite(dir);

  it('finds the cases', () => {
    expect(cases.length).toBeGreaterThan(15);
  });

  for (const c of cases) {
    it(`${c.id} ${c.note}`, () => {
      const r = runCase(c);
      expect(r.reason ?? r.status).toBe('pass');
    });
  }
});
