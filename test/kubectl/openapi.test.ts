import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasKubectl, type Kubectl, kubectlFor } from '../helpers/kubectl.js';
import { apiFetch, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';

const run = hasKubectl();
let s: RunningSkiff;
let kubectl: Kubectl;

beforeAll(async () => {
  s = await startSkiff();
  kubectl = kubectlFor(s);
});
afterAll(async () => {
  await s?.stop();
});

const fn = (name: string, extra = '') => `apiVersion: skiff.dev/v1\nkind: Function\nmetadata: {name: ${name}}\nspec:\n  module: https://example.com/${name}.wasm\n${extra}`;

const TEMPLATE = `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8srequiredlabels
spec:
  crd:
    spec:
      names:
        kind: K8sRequiredLabels
      validation:
        openAPIV3Schema:
          type: object
          properties:
            labels:
              type: array
              description: Labels every matched object must carry.
              items:
                type: string
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8srequiredlabels
        violation[{"msg": msg}] {
          required := {l | l := input.parameters.labels[_]}
          provided := {l | input.review.object.metadata.labels[l]}
          missing := required - provided
          count(missing) > 0
          msg := sprintf("missing labels: %v", [missing])
        }
`;

describe.runIf(run)('kubectl explain', () => {
  it('describes every built-in kind', async () => {
    for (const [resource, kind] of [['functions', 'Function'], ['routes', 'Route'], ['services.skiff.dev', 'Service'], ['policies', 'Policy'], ['namespaces', 'Namespace'], ['events', 'Event'], ['constrainttemplates', 'ConstraintTemplate']]) {
      const r = await kubectl(['explain', resource!]);
      expect(r.stderr, resource).toBe('');
      expect(r.code, resource).toBe(0);
      expect(r.stdout).toContain(`KIND:       ${kind}\n`);
      expect(r.stdout).toMatch(/DESCRIPTION:\n {4}\S/);
      expect(r.stdout).not.toContain('<no description>');
    }
  });

  it('walks into a field: function.spec.limits', async () => {
    const r = await kubectl(['explain', 'function.spec.limits']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('FIELD: limits <Object>');
    expect(r.stdout).toMatch(/Resource limits per request/);
    expect(r.stdout).toMatch(/ {2}concurrency\t<integer>\n {4}Requests that may run at once/);
    expect(r.stdout).toMatch(/ {2}memory\t<Object>\n {4}Largest linear memory/);
    const clock = await kubectl(['explain', 'fn.spec.capabilities.clock']);
    expect(clock.stdout).toMatch(/ENUM:\n {4}real\n {4}frozen/);
  });

  it('lists nested fields with --recursive, metadata included', async () => {
    const r = await kubectl(['explain', 'function', '--recursive']);
    expect(r.code).toBe(0);
    for (const line of ['  spec\t<Object> -required-', '    capabilities\t<Object>', '      dirs\t<[]Object>', '        readOnly\t<boolean>', '    module\t<string>', '    runtimeClassName\t<string>', '    labels\t<map[string]string>', '    conditions\t<[]Condition>']) expect(r.stdout).toContain(line);
  });

  it('says which field does not exist', async () => {
    const r = await kubectl(['explain', 'function.spec.nosuch']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('field "nosuch" does not exist');
  });

  it('explains a constraint kind with the parameters its template declares', async () => {
    const t = await kubectl(['apply', '-f', '-'], { stdin: TEMPLATE });
    expect(t.stderr).toBe('');
    // The constraint kind appears once the template is compiled; a fresh discovery sees it.
    const r = (await waitFor(async () => {
      const out = await kubectl(['explain', 'k8srequiredlabels.spec.parameters']);
      return out.code === 0 ? out : undefined;
    }, 'the constraint kind in OpenAPI'))!;
    expect(r.stdout).toContain('GROUP:      constraints.gatekeeper.sh');
    expect(r.stdout).toMatch(/ {2}labels\t<\[\]string>\n {4}Labels every matched object must carry\./);
    const bad = await kubectl(['apply', '-f', '-'], { stdin: 'apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sRequiredLabels\nmetadata: {name: need-team}\nspec:\n  enforcementAction: dryrun\n  parameters: {labels: [team], colour: red}\n' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('strict decoding error: unknown field "spec.parameters.colour"');
  });
});

describe.runIf(run)('field validation through kubectl', () => {
  it('apply (strict by default) refuses an unknown field, naming it, and stores nothing', async () => {
    const r = await kubectl(['apply', '-f', '-'], { stdin: fn('strict1', '  foo: bar\n') });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('Error from server (BadRequest): error when creating "STDIN": Function in version "v1" cannot be handled as a Function: strict decoding error: unknown field "spec.foo"\n');
    const again = await kubectl(['apply', '--validate=strict', '-f', '-'], { stdin: fn('strict1', '  limits: {memroy: 1Mi}\n') });
    expect(again.stderr).toContain('unknown field "spec.limits.memroy"');
    expect((await kubectl(['get', 'function', 'strict1'])).code).toBe(1);
  });

  it('refuses an unknown field when configuring an existing object too', async () => {
    expect((await kubectl(['apply', '-f', '-'], { stdin: fn('strict2') })).code).toBe(0);
    const r = await kubectl(['apply', '-f', '-'], { stdin: fn('strict2', '  argz: [a]\n') });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('strict decoding error: unknown field "spec.argz"');
  });

  it('--validate=warn applies without the field and prints the warning', async () => {
    const r = await kubectl(['apply', '--validate=warn', '-f', '-'], { stdin: fn('warn1', '  foo: bar\n') });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('function.skiff.dev/warn1 created\n');
    expect(r.stderr).toBe('Warning: unknown field "spec.foo"\n');
    const got = JSON.parse((await kubectl(['get', 'function', 'warn1', '-o', 'json'])).stdout);
    expect(got.spec).toEqual({ module: 'https://example.com/warn1.wasm' });
  });

  it('--validate=false drops the field silently', async () => {
    const r = await kubectl(['apply', '--validate=false', '-f', '-'], { stdin: fn('ignore1', '  foo: bar\n') });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const got = JSON.parse((await kubectl(['get', 'function', 'ignore1', '-o', 'json'])).stdout);
    expect(got.spec.foo).toBeUndefined();
  });

  it('create --dry-run=server validates on the server and stores nothing', async () => {
    const ok = await kubectl(['create', '--dry-run=server', '-o', 'jsonpath={.metadata.name} {.spec.module}', '-f', '-'], { stdin: fn('dry1') });
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toBe('dry1 https://example.com/dry1.wasm');
    expect((await kubectl(['get', 'function', 'dry1'])).code).toBe(1);
    const bad = await kubectl(['create', '--dry-run=server', '-f', '-'], { stdin: fn('dry2', '  foo: 1\n') });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('strict decoding error: unknown field "spec.foo"');
    const invalid = await kubectl(['create', '--dry-run=server', '-f', '-'], { stdin: fn('dry3', '  limits: {concurrency: 0}\n') });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('Function "dry3" is invalid');
  });

  it('a body with a duplicate key is a strict error on the raw API', async () => {
    const body = '{"apiVersion":"skiff.dev/v1","kind":"Function","metadata":{"name":"dup1"},"spec":{"module":"/a.wasm","module":"/b.wasm"}}';
    const res = await apiFetch(s, '/apis/skiff.dev/v1/namespaces/default/functions?fieldValidation=Strict', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/strict decoding error: duplicate field "spec\.module"$/);
  });

  it('asks the OpenAPI v3 document, not v2, to learn that the server validates fields', async () => {
    const r = await kubectl(['apply', '-v=6', '--dry-run=server', '-f', '-'], { stdin: fn('probe1') });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/GET https:\/\/\S+\/openapi\/v3\/apis\/skiff\.dev\/v1\?hash=[0-9A-F]+&timeout=\d+s 200 OK/);
    expect(r.stderr).not.toContain('/openapi/v2');
    expect(r.stderr).toMatch(/POST \S+\/functions\?dryRun=All&fieldManager=kubectl-client-side-apply&fieldValidation=Strict 201/);
  });
});
