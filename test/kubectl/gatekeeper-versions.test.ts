import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasKubectl, type Kubectl, kubectlFor } from '../helpers/kubectl.js';
import { apiFetch, REPO, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';

/**
 * Gatekeeper's older API versions through the real kubectl: templates written as v1beta1 and
 * v1alpha1 (the gatekeeper-library's releases before v1) and constraints as v1beta1 and v1alpha1
 * apply unchanged, read back in whichever version kubectl names, and enforce.
 */

const run = hasKubectl();
const FIXTURES = join(REPO, 'test', 'kubectl', 'fixtures', 'gatekeeper-v1beta1');
let s: RunningSkiff;
let kubectl: Kubectl;
let moduleRef: string;

const ok = async (args: string[], opts: Parameters<Kubectl>[1] = {}) => {
  const r = await kubectl(args, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
};
const fn = (name: string, labels: Record<string, string>, annotations: Record<string, string> = {}) =>
  `apiVersion: skiff.dev/v1\nkind: Function\nmetadata:\n  name: ${name}\n  namespace: v1b1\n  labels: ${JSON.stringify(labels)}\n  annotations: ${JSON.stringify(annotations)}\nspec:\n  module: ${moduleRef}\n`;

beforeAll(async () => {
  if (!run) return;
  s = await startSkiff();
  kubectl = kubectlFor(s);
  const wasm = readFileSync(join(REPO, 'examples', 'hello', 'hello.wasm'));
  const hex = createHash('sha256').update(wasm).digest('hex');
  expect((await apiFetch(s, `/blobs/sha256/${hex}`, { method: 'PUT', headers: { 'content-type': 'application/wasm' }, body: wasm })).status).toBeLessThan(300);
  moduleRef = `blob:sha256:${hex}`;
  await ok(['create', 'namespace', 'v1b1']);
});
afterAll(async () => {
  await s?.stop();
});

describe.runIf(run)('Gatekeeper v1beta1 and v1alpha1 objects through kubectl', () => {
  it('applies a v1beta1 template, lists it as v1beta1, and stores it as v1 with the v1beta1 defaults', async () => {
    const file = join(FIXTURES, 'templates', 'requiredlabels.yaml');
    expect(await ok(['apply', '-f', file])).toBe('constrainttemplate.templates.gatekeeper.sh/k8sv1b1requiredlabels created\n');
    const listed = await ok(['get', 'constrainttemplates.v1beta1.templates.gatekeeper.sh']);
    expect(listed).toMatch(/^NAME\s+KIND\s+AGE\nk8sv1b1requiredlabels\s+K8sV1b1RequiredLabels\s+\d+s\n$/);
    expect(await ok(['get', 'constrainttemplates.v1beta1.templates.gatekeeper.sh', 'k8sv1b1requiredlabels', '-o', 'jsonpath={.apiVersion}'])).toBe('templates.gatekeeper.sh/v1beta1');
    expect(await ok(['get', 'constrainttemplates.v1alpha1.templates.gatekeeper.sh', '-o', 'jsonpath={.items[0].apiVersion}'])).toBe('templates.gatekeeper.sh/v1alpha1');
    // The preferred version (v1) is what a plain `get` returns; the v1beta1 default for legacySchema was stored.
    expect(await ok(['get', 'constrainttemplate', 'k8sv1b1requiredlabels', '-o', 'jsonpath={.apiVersion} {.spec.crd.spec.validation.legacySchema}'])).toBe('templates.gatekeeper.sh/v1 true');
    expect(await ok(['apply', '-f', file])).toBe('constrainttemplate.templates.gatekeeper.sh/k8sv1b1requiredlabels unchanged\n');
    expect(await ok(['api-versions'])).toMatch(/^templates\.gatekeeper\.sh\/v1\ntemplates\.gatekeeper\.sh\/v1alpha1\ntemplates\.gatekeeper\.sh\/v1beta1$/m);
  });

  it('applies a directory of templates and constraints of several kinds, as against a cluster: the constraints once their kinds exist', async () => {
    // One pass over templates and constraints fails for the constraints whose kinds do not exist yet,
    // exactly as with CRDs on a cluster: kubectl maps every object before it applies the first.
    const first = await kubectl(['apply', '-R', '-f', FIXTURES]);
    expect(first.code).toBe(1);
    expect(first.stdout.split('\n').filter(Boolean).sort()).toEqual([
      'constrainttemplate.templates.gatekeeper.sh/k8sv1a1blockednames created',
      'constrainttemplate.templates.gatekeeper.sh/k8sv1b1requiredannotations created',
      'constrainttemplate.templates.gatekeeper.sh/k8sv1b1requiredlabels unchanged',
      // Its kind existed before this run (the template of the previous test).
      'k8sv1b1requiredlabels.constraints.gatekeeper.sh/fn-needs-team created',
    ]);
    // kubectl validates before it maps: for a kind its OpenAPI documents lack it asks the cluster's
    // CRDs, which Skiff does not serve, so the reason differs from a cluster's "ensure CRDs are installed first".
    for (const f of ['fn-needs-contact.yaml', 'no-tmp-functions.yaml']) expect(first.stderr).toContain(`constraints/${f}`);
    expect(first.stderr).not.toContain('fn-needs-team.yaml');
    for (const plural of ['k8sv1b1requiredlabels', 'k8sv1b1requiredannotations', 'k8sv1a1blockednames']) {
      await waitFor(async () => (await apiFetch(s, `/apis/constraints.gatekeeper.sh/v1beta1/${plural}`)).status === 200, `the ${plural} kind`);
    }
    // The constraints' directory: three kinds, in v1beta1 and v1alpha1, with kubectl's strict validation.
    expect((await ok(['apply', '-f', join(FIXTURES, 'constraints')])).split('\n').filter(Boolean).sort()).toEqual([
      'k8sv1a1blockednames.constraints.gatekeeper.sh/no-tmp-functions created',
      'k8sv1b1requiredannotations.constraints.gatekeeper.sh/fn-needs-contact created',
      'k8sv1b1requiredlabels.constraints.gatekeeper.sh/fn-needs-team unchanged',
    ]);
    expect(await ok(['apply', '-R', '-f', FIXTURES])).toMatch(/^(\S+ unchanged\n){6}$/);
    expect((await ok(['get', 'constraints', '-o', 'name'])).split('\n').filter(Boolean).sort()).toEqual([
      'k8sv1a1blockednames.constraints.gatekeeper.sh/no-tmp-functions',
      'k8sv1b1requiredannotations.constraints.gatekeeper.sh/fn-needs-contact',
      'k8sv1b1requiredlabels.constraints.gatekeeper.sh/fn-needs-team',
    ]);
    // Constraints come back in the group's preferred version (v1beta1) unless kubectl names another.
    expect(await ok(['get', 'k8sv1a1blockednames', 'no-tmp-functions', '-o', 'jsonpath={.apiVersion}'])).toBe('constraints.gatekeeper.sh/v1beta1');
    expect(await ok(['get', 'k8sv1a1blockednames.v1alpha1.constraints.gatekeeper.sh', 'no-tmp-functions', '-o', 'jsonpath={.apiVersion}'])).toBe('constraints.gatekeeper.sh/v1alpha1');
  });

  it('keeps unknown parameters of a legacy-schema template and refuses them where legacySchema is false', async () => {
    // v1alpha1 with no validation section: legacySchema defaults to true, so the unlisted "note" stays.
    expect(JSON.parse(await ok(['get', 'k8sv1a1blockednames', 'no-tmp-functions', '-o', 'jsonpath={.spec.parameters}']))).toEqual({ prefixes: ['tmp-'], note: 'scratch Functions go to a namespace of their own' });
    const extra = readFileSync(join(FIXTURES, 'constraints', 'fn-needs-contact.yaml'), 'utf8').replace('name: fn-needs-contact', 'name: fn-extra').replace('annotations: ["contact"]', 'annotations: ["contact"]\n    owner: nobody');
    const refused = await kubectl(['apply', '-f', '-'], { stdin: extra });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('unknown field "spec.parameters.owner"');
  });

  it('enforces each constraint on the objects it matches', async () => {
    const denied = await waitFor(async () => {
      const r = await kubectl(['apply', '-f', '-'], { stdin: fn('bare', {}) });
      return r.code === 1 && /fn-needs-contact/.test(r.stderr) && /fn-needs-team/.test(r.stderr) ? r : undefined;
    }, 'the constraints to be enforced', 15_000);
    expect(denied!.stderr).toContain('[fn-needs-team] every Function here needs a team label of lower-case letters');
    expect(denied!.stderr).toContain('[fn-needs-contact] the object lacks the annotations {"contact"}');
    const badTeam = await kubectl(['apply', '-f', '-'], { stdin: fn('bad-team', { team: 'Team1' }, { contact: 'a@b' }) });
    expect(badTeam.stderr).toContain('[fn-needs-team] label <team: Team1> does not match the pattern ^[a-z]+$');
    const tmp = await kubectl(['apply', '-f', '-'], { stdin: fn('tmp-scratch', { team: 'web' }, { contact: 'a@b' }) });
    expect(tmp.stderr).toContain('[no-tmp-functions] the name tmp-scratch starts with the blocked prefix tmp-');
    expect(await ok(['apply', '-f', '-'], { stdin: fn('good', { team: 'web' }, { contact: 'a@b' }) })).toBe('function.skiff.dev/good created\n');
  });
});
