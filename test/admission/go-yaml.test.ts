import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { readObjects } from '../../src/admission/index.js';
import { readManifests } from '../../src/manifests/index.js';
import { runCli } from '../helpers/run-cli.js';

const FIX = join(import.meta.dirname, 'fixtures/go-yaml');

afterEach(() => {
  process.exitCode = undefined;
});

describe('Gatekeeper files load as go-yaml reads them', () => {
  it('reads quoted scalars whose continuation lines are not indented under their key', () => {
    const [tpl] = readObjects(join(FIX, 'template.yaml')) as Array<Record<string, any>>;
    expect(tpl!.metadata.annotations.description).toBe('Objects must name the team that owns them in the `team` label, unless the constraint lists them as exempt.');
    expect(tpl!.spec.crd.spec.validation.openAPIV3Schema.properties.exempt.description).toBe("Names that need no team label; they are matched exactly, it's not a pattern.");
    expect(tpl!.spec.targets[0].rego).toContain('package k8sneedsteam');
  });

  it('runs a gator suite whose template and object use them', async () => {
    const r = await runCli('policy', 'verify', join(FIX, 'suite.yaml'));
    expect(r.err).toBe('');
    expect(r.out.trim().split('\n').at(-1)).toBe('2 passed, 0 failed');
    expect(r.code).toBe(0);
  });

  it('applies them with `skiff apply -f` too', () => {
    const [m] = readManifests([join(FIX, 'with-team.yaml')]);
    expect(m!.object.metadata.labels.team).toBe('payments and billing');
    expect(m!.line).toBe(1);
  });

  it('reads YAML 1.1 booleans and octal integers as kubectl does, in admission files and manifests alike', () => {
    for (const obj of [readObjects(join(FIX, 'yaml11-pod.yaml'))[0], readManifests([join(FIX, 'yaml11-pod.yaml')])[0]!.object] as Array<Record<string, any>>) {
      expect(obj.spec.hostNetwork).toBe(true);
      expect(obj.spec.enableServiceLinks).toBe(false);
      expect(obj.spec.containers[0].stdin).toBe(true);
      expect(obj.spec.volumes[0].configMap.defaultMode).toBe(0o644);
      expect(obj.metadata.annotations.reviewed).toBe('yes');
    }
  });

  it('keeps naming file and line for YAML go-yaml rejects as well', () => {
    expect(() => readObjects(join(FIX, 'broken/unterminated.yaml'))).toThrow(/broken\/unterminated\.yaml: YAML error: Missing closing "quote at line 8/);
    expect(() => readObjects(join(FIX, 'broken/marker.yaml'))).toThrow(/broken\/marker\.yaml: YAML error: Missing closing "quote at line 6/);
    expect(() => readManifests([join(FIX, 'broken/marker.yaml')])).toThrow(/broken\/marker\.yaml:6:\d+: Missing closing "quote/);
  });
});
