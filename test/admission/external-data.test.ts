import { describe, expect, it } from 'vitest';

import { GatekeeperClient, type K8sObject, reviewFromObject } from '../../src/admission/index.js';
import { type ExternalDataLookup, PolicyEngine, toJSON } from '../../src/policy/index.js';

// A Gatekeeper-style template that refuses Functions whose module is not verified, asking the
// image verification provider through external_data as Gatekeeper's provider templates do.
const VERIFIED_ONLY = `package k8sverifiedmodules

violation[{"msg": msg}] {
  module := input.review.object.spec.module
  startswith(module, "oci://")
  resp := external_data({"provider": "skiff-image-verification", "keys": [module]})
  not verified(resp, module)
  msg := sprintf("module %v is not verified: %v", [module, reason(resp, module)])
}

verified(resp, key) {
  some i
  resp.responses[i][0] == key
  resp.responses[i][1].verified == true
}

reason(resp, key) = r {
  resp.system_error != ""
  r := resp.system_error
} else = r {
  some i
  resp.errors[i][0] == key
  r := resp.errors[i][1]
} else = "no valid signature"
`;

const template: K8sObject = {
  apiVersion: 'templates.gatekeeper.sh/v1',
  kind: 'ConstraintTemplate',
  metadata: { name: 'k8sverifiedmodules' },
  spec: { crd: { spec: { names: { kind: 'K8sVerifiedModules' } } }, targets: [{ target: 'admission.k8s.gatekeeper.sh', rego: VERIFIED_ONLY }] },
};
const constraint: K8sObject = { apiVersion: 'constraints.gatekeeper.sh/v1beta1', kind: 'K8sVerifiedModules', metadata: { name: 'verified' }, spec: {} };
const fn = (module: string): K8sObject => ({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'f', namespace: 'default' }, spec: { module } });

const provider = (verdicts: Record<string, boolean>): ExternalDataLookup => (name, keys) => {
  if (name !== 'skiff-image-verification') return undefined;
  return {
    responses: keys.filter((k) => typeof k === 'string' && k in verdicts).map((k) => [k, { verified: verdicts[k as string] }]),
    errors: keys.filter((k) => !(typeof k === 'string' && k in verdicts)).map((k) => [k, 'unknown artifact']),
    system_error: '',
  };
};

describe('external_data', () => {
  it('answers from the provider given to the evaluation, in Gatekeeper\'s response shape', () => {
    const engine = new PolicyEngine();
    engine.addModule('x.rego', 'package x\nr := external_data({"provider": "p", "keys": ["a", "b"]})');
    const q = engine.prepare('data.x.r');
    const lookup: ExternalDataLookup = (p, keys) => (p === 'p' ? { responses: [[keys[0], 1]], errors: [[keys[1], 'nope']], system_error: '' } : undefined);
    expect(toJSON(q.eval({ externalData: lookup })[0]!.expressions[0]!.value)).toEqual({ responses: [['a', 1]], errors: [['b', 'nope']], status_code: 200, system_error: '' });
  });

  it('reports an unknown provider as a system error rather than failing the policy', () => {
    const engine = new PolicyEngine();
    engine.addModule('x.rego', 'package x\nr := external_data({"provider": "missing", "keys": ["a"]}).system_error');
    expect(toJSON(engine.prepare('data.x.r').eval()[0]!.expressions[0]!.value)).toBe('external data provider "missing" is not available here');
  });

  it('lets a ConstraintTemplate refuse an unverified module and admit a verified one', () => {
    const gk = new GatekeeperClient();
    gk.addTemplate(template);
    gk.addConstraint(constraint);
    expect(gk.needsExternalData()).toBe(true);
    const good = 'oci://127.0.0.1:5000/app@sha256:' + 'a'.repeat(64);
    const bad = 'oci://127.0.0.1:5000/app@sha256:' + 'b'.repeat(64);
    const verdicts = { [good]: true, [bad]: false };
    expect(gk.review(reviewFromObject(fn(good)), { externalData: provider(verdicts) }).violations).toEqual([]);
    const refused = gk.review(reviewFromObject(fn(bad)), { externalData: provider(verdicts) }).violations;
    expect(refused.map((v) => v.msg)).toEqual([`module ${bad} is not verified: no valid signature`]);
    const unknown = gk.review(reviewFromObject(fn('oci://127.0.0.1:5000/other:v1')), { externalData: provider(verdicts) }).violations;
    expect(unknown[0]!.msg).toContain('unknown artifact');
    // without a provider the template still decides: the system error says why
    expect(gk.review(reviewFromObject(fn(good))).violations[0]!.msg).toContain('is not available here');
  });
});
