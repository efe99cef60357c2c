import { describe, expect, it } from 'vitest';

import { ApiError } from '../../src/api/errors.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { policyKindValidators } from '../../src/policy/index.js';
import { MemoryStore } from '../../src/store/index.js';

const policy = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'skiff.dev/v1', kind: 'Policy', metadata: { name, namespace: 'default' }, spec });
const V0_BODY = 'package http.authz\n\ndefault allow = false\n\nallow {\n  input.method == "GET"\n}\n';

async function refusal(resources: ResourceService, obj: unknown): Promise<ApiError> {
  const err = await resources.create(resources.kind('Policy'), 'default', obj).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  return err as ApiError;
}

describe('Policy resources choose their Rego version as OPA 1.x does', () => {
  const resources = new ResourceService(new MemoryStore(), builtinKinds(policyKindValidators));

  it('refuses a v0-only body without regoVersion with 422, naming spec.rego with OPA\'s message', async () => {
    const err = await refusal(resources, policy('v0-body', { rego: V0_BODY }));
    expect(err.httpStatus).toBe(422);
    expect(err.message).toContain('Policy "v0-body" is invalid: spec.rego: default/v0-body.rego:5: rego_parse_error: `if` keyword is required before rule body');
    expect(err.message).toContain('set spec.regoVersion: v0');
    const causes = (err.details as { causes: Array<{ field: string }> }).causes;
    expect(causes.map((c) => c.field)).toEqual(['spec.rego']);
  });

  it('accepts the same body with regoVersion v0, and v1 syntax by default', async () => {
    await expect(resources.create(resources.kind('Policy'), 'default', policy('v0-ok', { rego: V0_BODY, regoVersion: 'v0' }))).resolves.toBeDefined();
    await expect(resources.create(resources.kind('Policy'), 'default', policy('v1-ok', { rego: 'package http.authz2\n\ndefault allow := false\n\nallow if input.method == "GET"\n' }))).resolves.toBeDefined();
  });

  it('refuses v1 keywords in a v0 Policy unless imported, and v1 checks in one that imports rego.v1', async () => {
    const e1 = await refusal(resources, policy('v0-kw', { rego: 'package p\n\nallow if true\n', regoVersion: 'v0' }));
    expect(e1.message).toContain('spec.rego: default/v0-kw.rego:3: rego_parse_error: var cannot be used for rule name (hint: `import future.keywords.if` for `p if { ... }` rules)');
    const e2 = await refusal(resources, policy('v0-dup', { rego: 'package p\nimport rego.v1\nimport data.a\nimport data.b as a\n\nallow if a\n', regoVersion: 'v0' }));
    expect(e2.message).toContain('default/v0-dup.rego:4: rego_compile_error: import must not shadow import data.a');
  });

  it('leaves errors that depend on other policies to the controller', async () => {
    // an unknown function may be defined by another Policy: not an admission error
    await expect(resources.create(resources.kind('Policy'), 'default', policy('uses-other', { rego: 'package q\n\nallow if data.lib.check(input)\n' }))).resolves.toBeDefined();
  });
});
