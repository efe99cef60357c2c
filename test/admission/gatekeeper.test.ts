import { join } from 'node:path';

import { describe, expect,it } from 'vitest';

import { ConstraintError, ConstraintSchemaError, decide, GatekeeperClient, type K8sObject,readObjects, reviewFromObject, reviewFromRequest, type TemplateError } from '../../src/admission/index.js';

const FIX = join(import.meta.dirname, 'fixtures');
const load = (p: string) => readObjects(join(FIX, p))[0]!;

function template(kind: string, rego: string, extra: Record<string, unknown> = {}): K8sObject {
  return {
    apiVersion: 'templates.gatekeeper.sh/v1',
    kind: 'ConstraintTemplate',
    metadata: { name: kind.toLowerCase() },
    spec: { crd: { spec: { names: { kind } } }, targets: [{ target: 'admission.k8s.gatekeeper.sh', rego, ...extra }] },
  };
}
const constraint = (kind: string, name: string, spec: Record<string, unknown> = {}): K8sObject => ({ apiVersion: 'constraints.gatekeeper.sh/v1beta1', kind, metadata: { name }, spec });
const pod = (name: string, labels: Record<string, string> = {}, ns = 'apps'): K8sObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels }, spec: { containers: [{ name: 'c', image: 'nginx' }] } });

const ECHO = `package echo
violation[{"msg": "seen", "details": {"review": input.review, "parameters": input.parameters}}] { true }`;

describe('ConstraintTemplate compilation', () => {
  it('loads Rego v0 templates unchanged, with libs and deprecated v0 built-ins', () => {
    const gk = new GatekeeperClient();
    const t = gk.addTemplate(load('templates/k8srequiredlabels.yaml'));
    expect(t.kind).toBe('K8sRequiredLabels');
    expect(t.regoVersion).toBe(0);
    expect(t.pkg).toEqual(['k8srequiredlabels']);
  });

  it('uses the Rego of a template that has both CEL and Rego, honouring version: v1', () => {
    const t = new GatekeeperClient().addTemplate(load('templates/k8sruntimeclass.yaml'));
    expect(t.regoVersion).toBe(1);
  });

  it('refuses a CEL-only template with a clear message', () => {
    expect(() => new GatekeeperClient().addTemplate(load('templates/k8scelonly.yaml'))).toThrow(/only engine is CEL \(K8sNativeValidation\), which Skiff does not support yet/);
    try {
      new GatekeeperClient().addTemplate(load('templates/k8scelonly.yaml'));
    } catch (e) {
      expect((e as TemplateError).code).toBe('template_cel_unsupported');
    }
  });

  it('refuses a template without a violation rule, a misnamed template, a bad lib package and Rego errors (with the line)', () => {
    const gk = new GatekeeperClient();
    expect(() => gk.addTemplate(load('templates/k8snoviolation.yaml'))).toThrow(/no "violation" rule/);
    const misnamed = template('K8sThing', 'package x\nviolation[{"msg": "m"}] { true }');
    misnamed.metadata!.name = 'other';
    expect(() => gk.addTemplate(misnamed)).toThrow(/metadata.name must be the lower-cased kind "k8sthing"/);
    expect(() => gk.addTemplate(template('K8sLib', 'package x\nviolation[{"msg": "m"}] { true }', { libs: ['package helpers\nf = 1'] }))).toThrow(/libraries must use a package under "lib"/);
    expect(() => gk.addTemplate(template('K8sBroken', 'package x\n\nviolation[{"msg": m}] {\n  m := \n}'))).toThrow(/Rego \(v0\) does not compile:\n.*k8sbroken\/spec\.targets\[0\]\.rego:5: rego_parse_error/);
  });
});

describe('constraints', () => {
  it('validates parameters against the openAPIV3Schema (Gatekeeper ErrSchema) and match selectors', () => {
    const gk = new GatekeeperClient();
    gk.addTemplate(load('templates/k8srequiredlabels.yaml'));
    expect(() => gk.addConstraint(load('constraints/bad-params.yaml'))).toThrow(ConstraintSchemaError);
    expect(() => gk.addConstraint(load('constraints/bad-params.yaml'))).toThrow(/spec.parameters.labels must be array/);
    expect(() => gk.addConstraint(constraint('K8sRequiredLabels', 'sel', { match: { labelSelector: { matchExpressions: [{ key: 'a', operator: 'Near' }] } } }))).toThrow(/operator "Near" is not one of/);
    expect(() => gk.addConstraint(constraint('K8sRequiredLabels', 'act', { enforcementAction: 'block' }))).toThrow(ConstraintError);
    expect(() => gk.addConstraint(constraint('K8sNothing', 'x'))).toThrow(/no ConstraintTemplate defines kind K8sNothing/);
  });

  it('passes input.review exactly as Gatekeeper builds it for a bare object, and parameters as given (null when absent)', () => {
    const gk = new GatekeeperClient();
    gk.addTemplate(template('Echo', ECHO));
    gk.addConstraint(constraint('Echo', 'e'));
    const obj = pod('p1');
    const [v] = gk.review(reviewFromObject(obj)).violations;
    expect(v!.details).toEqual({
      review: { uid: '', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: '', resource: '' }, name: 'p1', namespace: 'apps', operation: '', userInfo: {}, object: obj },
      parameters: null,
    });
  });

  it('passes an AdmissionRequest through as kube-apiserver sent it (UPDATE with oldObject and userInfo); DELETE reviews the old object', () => {
    const gk = new GatekeeperClient();
    gk.addTemplate(template('Echo', ECHO));
    gk.addConstraint(constraint('Echo', 'e', { parameters: { x: 1 } }));
    const req = (load('objects/review-update-team-alice.yaml') as { request: unknown }).request as Record<string, unknown>;
    const [v] = gk.review(reviewFromRequest(req)).violations;
    expect((v!.details as { review: unknown }).review).toEqual(req);
    expect((v!.details as { parameters: unknown }).parameters).toEqual({ x: 1 });
    const del = reviewFromRequest({ ...req, operation: 'DELETE', object: null });
    expect(del.object).toEqual(req.oldObject);
    expect(() => reviewFromRequest(undefined)).toThrow(/no "request"/);
    expect(() => reviewFromRequest({ uid: 'x', kind: { kind: 'Pod' } })).toThrow(/neither "object" nor "oldObject"/);
  });

  it('evaluates every enforcement action: deny refuses, warn warns, dryrun only records', () => {
    const gk = new GatekeeperClient();
    gk.addTemplate(load('templates/k8srequiredlabels.yaml'));
    for (const [name, action] of [['d', 'deny'], ['w', 'warn'], ['r', 'dryrun']])
      gk.addConstraint(constraint('K8sRequiredLabels', name, { enforcementAction: action, parameters: { labels: [{ key: 'owner' }] } }));
    const d = decide(gk, reviewFromObject(pod('p')));
    expect(d.allowed).toBe(false);
    expect(d.denials.map((x) => x.message)).toEqual(['[d] you must provide labels: {"owner"}']);
    expect(d.warnings).toEqual(['[w] you must provide labels: {"owner"}']);
    expect(d.audited.map((x) => x.policy)).toEqual(['K8sRequiredLabels/r']);
    expect(decide(gk, reviewFromObject(pod('ok', { owner: 'a' }))).allowed).toBe(true);
  });

  it('reads data.inventory in Gatekeeper layout and sees inventory changes without recompiling', () => {
    const gk = new GatekeeperClient();
    gk.addTemplate(load('templates/k8suniqueingresshost.yaml'));
    gk.addConstraint(load('constraints/unique-host.yaml'));
    const b = reviewFromObject(load('objects/ingress-b-same-host.yaml'));
    expect(gk.review(b).violations).toEqual([]);
    const a = load('objects/ingress-a.yaml');
    gk.addData(a);
    expect(gk.inventory.tree.namespace.web?.['networking.k8s.io/v1']?.Ingress?.['ingress-a']).toBe(a);
    expect(gk.review(b).violations.map((v) => v.msg)).toEqual(['ingress host conflicts with an existing ingress <web/ingress-a>: shop.example.com']);
    gk.removeData(a);
    expect(gk.review(b).violations).toEqual([]);
  });

  it('reports a Rego runtime error as a failure of that constraint, and decide fails closed for deny', () => {
    const gk = new GatekeeperClient();
    gk.addTemplate(template('Boom', 'package boom\nviolation[{"msg": msg}] { msg := 1 }'));
    gk.addConstraint(constraint('Boom', 'b'));
    const r = gk.review(reviewFromObject(pod('p')));
    expect(r.errors[0]!.message).toMatch(/string "msg"/);
    expect(decide(gk, reviewFromObject(pod('p'))).allowed).toBe(false);
  });

  it('drops constraints that no longer fit when their template changes', () => {
    const gk = new GatekeeperClient();
    gk.addTemplate(load('templates/k8srequiredlabels.yaml'));
    gk.addConstraint(constraint('K8sRequiredLabels', 'c', { parameters: { labels: [{ key: 'a' }] } }));
    const t = load('templates/k8srequiredlabels.yaml') as { spec: { crd: { spec: { validation: { openAPIV3Schema: { properties: Record<string, unknown> } } } } } };
    t.spec.crd.spec.validation.openAPIV3Schema.properties.labels = { type: 'string' };
    gk.addTemplate(t as unknown as K8sObject);
    expect(gk.constraints()).toEqual([]);
  });
});

describe('Gatekeeper template rules', () => {
  it('refuses references to data other than data.inventory and data.lib, ignoring strings and comments', () => {
    const gk = new GatekeeperClient();
    expect(() => gk.addTemplate(template('K8sPeek', 'package peek\n# data.secrets in a comment is fine\nviolation[{"msg": "data.x in a string"}] {\n  data.secrets.token\n}'))).toThrow(/invalid data references: data.secrets \(rego line 4\)/);
    expect(() => gk.addTemplate(template('K8sPeek2', 'package peek2\nviolation[{"msg": m}] { m := data["config"] }'))).toThrow(/data.config/);
    expect(() => gk.addTemplate(template('K8sInputData', 'package inputdata\nviolation[{"msg": m}] { m := input.review.object.data.key }'))).not.toThrow();
  });
});

describe('evaluation budget', () => {
  it('stops a constraint that runs past evalTimeoutMs and reports it as a failure', () => {
    const gk = new GatekeeperClient({ evalTimeoutMs: 20 });
    gk.addTemplate(template('Slow', '', { code: [{ engine: 'Rego', source: { version: 'v1', rego: 'package slow\nviolation contains {"msg": m} if {\n  n := count([x | some i in numbers.range(1, 4000); some j in numbers.range(1, 4000); x := i * j])\n  m := sprintf("%v", [n])\n}' } }] }));
    gk.addConstraint(constraint('Slow', 's'));
    const t0 = Date.now();
    const r = gk.review(reviewFromObject(pod('p')));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.errors[0]!.message).toMatch(/cancel|deadline|time/i);
  });
});
