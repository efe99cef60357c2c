import { describe, expect,it } from 'vitest';

import { GatekeeperClient, type K8sObject,reviewFromObject, TemplateError } from '../../src/admission/index.js';

// The same policy in the two syntaxes: a label every Pod must carry.
const V0 = `package k8sneedsowner

violation[{"msg": msg}] {
  not input.review.object.metadata.labels.owner
  msg := "an owner label is required"
}
`;
const V1 = `package k8sneedsowner

violation contains {"msg": msg} if {
  not input.review.object.metadata.labels.owner
  msg := "an owner label is required"
}
`;

/** legacy: the `rego` field of the target (always Rego v0 in Gatekeeper). */
function legacy(rego: string): K8sObject {
  return {
    apiVersion: 'templates.gatekeeper.sh/v1',
    kind: 'ConstraintTemplate',
    metadata: { name: 'k8sneedsowner' },
    spec: { crd: { spec: { names: { kind: 'K8sNeedsOwner' } } }, targets: [{ target: 'admission.k8s.gatekeeper.sh', rego }] },
  };
}

/** coded: the `code[]` form, with an optional `source.version`. */
function coded(rego: string, version?: string): K8sObject {
  const source: Record<string, unknown> = { rego };
  if (version !== undefined) source.version = version;
  return {
    apiVersion: 'templates.gatekeeper.sh/v1',
    kind: 'ConstraintTemplate',
    metadata: { name: 'k8sneedsowner' },
    spec: { crd: { spec: { names: { kind: 'K8sNeedsOwner' } } }, targets: [{ target: 'admission.k8s.gatekeeper.sh', code: [{ engine: 'Rego', source }] }] },
  };
}

const pod = (labels: Record<string, string>): K8sObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'apps', labels }, spec: { containers: [{ name: 'c', image: 'nginx' }] } });

function messages(gk: GatekeeperClient, obj: K8sObject): string[] {
  gk.addConstraint({ apiVersion: 'constraints.gatekeeper.sh/v1beta1', kind: 'K8sNeedsOwner', metadata: { name: 'must-have-owner' }, spec: {} });
  return gk.review(reviewFromObject(obj)).violations.map((r) => r.msg);
}

function refusal(obj: K8sObject): TemplateError {
  try {
    new GatekeeperClient().addTemplate(obj);
  } catch (e) {
    if (e instanceof TemplateError) return e;
    throw e;
  }
  throw new Error('the template was accepted');
}

describe('Gatekeeper templates pick their Rego version as Gatekeeper does', () => {
  it('reads a template without a version as Rego v0, in both the legacy and the code[] form', () => {
    for (const t of [legacy(V0), coded(V0), coded(V0, 'v0')]) {
      const gk = new GatekeeperClient();
      expect(gk.addTemplate(t).regoVersion).toBe(0);
      expect(messages(gk, pod({}))).toEqual(['an owner label is required']);
      expect(messages(gk, pod({ owner: 'me' }))).toEqual([]);
    }
  });

  it('reads a template declaring source.version v1 as Rego v1', () => {
    const gk = new GatekeeperClient();
    expect(gk.addTemplate(coded(V1, 'v1')).regoVersion).toBe(1);
    expect(messages(gk, pod({}))).toEqual(['an owner label is required']);
  });

  it('refuses v0 syntax in a template declared v1, naming the template, the field, the line and what to do', () => {
    const e = refusal(coded(V0, 'v1'));
    expect(e.code).toBe('template_rego');
    expect(e.message).toContain('ConstraintTemplate "k8sneedsowner": Rego (v1) does not compile:');
    expect(e.message).toContain('k8sneedsowner/spec.targets[0].code[0].source.rego:3: rego_parse_error: `if` keyword is required before rule body');
    expect(e.message).toContain('k8sneedsowner/spec.targets[0].code[0].source.rego:3: rego_parse_error: `contains` keyword is required for partial set rules');
    expect(e.message).toContain('spec.targets[0].code[0].source.version is "v1": write Rego v1');
  });

  it('refuses v1 keywords in a v0 template that does not import them, with OPA hint', () => {
    const e = refusal(legacy(V1));
    expect(e.message).toContain('k8sneedsowner/spec.targets[0].rego:3: rego_parse_error: var cannot be used for rule name (hint: `import future.keywords.contains` for `p contains x` rules)');
  });

  it('accepts a v0 template that imports rego.v1 and checks it as v1', () => {
    const gk = new GatekeeperClient();
    gk.addTemplate(legacy(V1.replace('\n\n', '\n\nimport rego.v1\n\n')));
    expect(messages(gk, pod({}))).toEqual(['an owner label is required']);
    const e = refusal(legacy(V0.replace('\n\n', '\n\nimport rego.v1\n\n')));
    expect(e.message).toContain('`if` keyword is required before rule body');
  });

  it('refuses deprecated built-ins in a v1 template, as OPA 1.x does, and keeps them working in v0', () => {
    const v0 = `package k8sneedsowner\nviolation[{"msg": "bad owner"}] { re_match("^x", input.review.object.metadata.labels.owner) }\n`;
    const gk = new GatekeeperClient();
    gk.addTemplate(legacy(v0));
    expect(messages(gk, pod({ owner: 'xy' }))).toEqual(['bad owner']);
    const v1 = `package k8sneedsowner\nviolation contains {"msg": "bad owner"} if re_match("^x", input.review.object.metadata.labels.owner)\n`;
    expect(refusal(coded(v1, 'v1')).message).toContain('spec.targets[0].code[0].source.rego:2: rego_type_error: deprecated built-in function calls in expression: re_match');
  });

  it('refuses an unknown source.version', () => {
    expect(refusal(coded(V1, 'v2')).message).toContain('spec.targets[0].code[0].source.version must be "v0" or "v1"');
  });
});
