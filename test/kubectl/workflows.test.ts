import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

import { hasKubectl, type Kubectl, kubectlFor } from '../helpers/kubectl.js';
import { apiFetch, REPO, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';

/**
 * The daily kubectl workflows, run with the real kubectl against a real `skiff up`, each as a user
 * types it: only KUBECONFIG points kubectl at Skiff.
 */

const run = hasKubectl();
let s: RunningSkiff;
let kubectl: Kubectl;
let dir: string;
/** The demo module, uploaded once: every Function here serves it. */
let moduleRef: string;
let digest: string;

const fnYaml = (name: string, labels: Record<string, string> = {}, extra = '') =>
  `apiVersion: skiff.dev/v1\nkind: Function\nmetadata:\n  name: ${name}\n  labels: ${JSON.stringify(labels)}\nspec:\n  module: ${moduleRef}\n  limits: { memory: 16Mi }\n${extra}`;
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
/** ok runs kubectl and fails the test with kubectl's stderr when it exits non-zero. */
const ok = async (args: string[], opts: Parameters<Kubectl>[1] = {}) => {
  const r = await kubectl(args, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
};
const exists = async (name: string) => (await apiFetch(s, `/apis/skiff.dev/v1/namespaces/default/functions/${name}`)).status === 200;

beforeAll(async () => {
  if (!run) return;
  s = await startSkiff();
  kubectl = kubectlFor(s);
  dir = mkdtempSync(join(tmpdir(), 'skiff-kubectl-wf-'));
  const wasm = readFileSync(join(REPO, 'examples', 'hello', 'hello.wasm'));
  const hex = createHash('sha256').update(wasm).digest('hex');
  const up = await apiFetch(s, `/blobs/sha256/${hex}`, { method: 'PUT', headers: { 'content-type': 'application/wasm' }, body: wasm });
  expect(up.status).toBeLessThan(300);
  moduleRef = `blob:sha256:${hex}`;
  digest = `sha256:${hex}`;
});
afterAll(async () => {
  await s?.stop();
});

describe.runIf(run)('kubectl auth', () => {
  it('can-i answers from the token rules: yes for objects, no for status writes', async () => {
    expect(await kubectl(['auth', 'can-i', 'create', 'functions'])).toMatchObject({ code: 0, stdout: 'yes\n' });
    expect(await kubectl(['auth', 'can-i', 'delete', 'constrainttemplates'])).toMatchObject({ code: 0, stdout: 'yes\n' });
    const status = await kubectl(['auth', 'can-i', 'update', 'functions', '--subresource=status']);
    expect(status).toMatchObject({ code: 1, stdout: 'no - the status subresource is written by controllers only (present the controller token)\n' });
    expect(await kubectl(['auth', 'can-i', 'get', 'functions', '--subresource=status'])).toMatchObject({ code: 0, stdout: 'yes\n' });
    // kubectl reads RESOURCE/NAME, so this asks about the Function named "status", which the user may update.
    expect(await kubectl(['auth', 'can-i', 'update', 'functions/status'])).toMatchObject({ code: 0, stdout: 'yes\n' });
    expect(await kubectl(['auth', 'can-i', 'get', '/version'])).toMatchObject({ code: 0, stdout: 'yes\n' });
    // -q answers with the exit code alone.
    expect(await kubectl(['auth', 'can-i', 'patch', 'functions', '--subresource=status', '-q'])).toMatchObject({ code: 1, stdout: '' });
  });

  it('can-i --list lists every served resource, status read-only', async () => {
    const out = await ok(['auth', 'can-i', '--list']);
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^Resources\s+Non-Resource URLs\s+Resource Names\s+Verbs$/);
    expect(lines).toContainEqual(expect.stringMatching(/^functions\.skiff\.dev\s+\[\]\s+\[\]\s+\[\*\]$/));
    expect(lines).toContainEqual(expect.stringMatching(/^functions\.skiff\.dev\/status\s+\[\]\s+\[\]\s+\[get list watch\]$/));
    expect(lines).toContainEqual(expect.stringMatching(/^selfsubjectaccessreviews\.authorization\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]$/));
    expect(lines).toContainEqual(expect.stringMatching(/^\s+\[\*\]\s+\[\]\s+\[\*\]$/));
  });

  it('whoami names the token', async () => {
    const out = await ok(['auth', 'whoami', '-o', 'json']);
    expect(JSON.parse(out)).toMatchObject({ kind: 'SelfSubjectReview', status: { userInfo: { username: 'skiff:user', groups: ['system:authenticated'] } } });
  });

  it('refuses --as and --as-group rather than running the request as the token', async () => {
    for (const flags of [['--as', 'alice'], ['--as', 'alice', '--as-group', 'admins']]) {
      const r = await kubectl(['get', 'functions', ...flags]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/Error from server \(Forbidden\)/);
      expect(r.stdout).toBe('');
    }
    const raw = await apiFetch(s, '/apis/skiff.dev/v1/namespaces/default/functions', { headers: { 'impersonate-user': 'alice', 'impersonate-group': 'admins' } });
    expect(raw.status).toBe(403);
    expect(((await raw.json()) as { message: string }).message).toMatch(/^impersonation \(impersonate-group, impersonate-user\) is not supported/);
  });

  it('lists the review groups in api-resources', async () => {
    const out = await ok(['api-resources', '--api-group=authorization.k8s.io']);
    expect(out).toMatch(/^selfsubjectaccessreviews\s+authorization\.k8s\.io\/v1\s+false\s+SelfSubjectAccessReview$/m);
  });
});

describe.runIf(run)('create, wait, delete', () => {
  it('create -f makes the objects and refuses them the second time', async () => {
    const f = file('create.yaml', `${fnYaml('cr-a', { app: 'cr' })}---\n${fnYaml('cr-b', { app: 'cr' })}`);
    expect(await ok(['create', '-f', f])).toBe('function.skiff.dev/cr-a created\nfunction.skiff.dev/cr-b created\n');
    const again = await kubectl(['create', '-f', f]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/Error from server \(AlreadyExists\): error when creating ".*create\.yaml": function "cr-a" already exists/);
  });

  it('wait --for=condition=Ready and --for=jsonpath wait for the controller', async () => {
    expect(await ok(['wait', '--for=condition=Ready', 'function/cr-b', '--timeout=20s'])).toBe('function.skiff.dev/cr-b condition met\n');
    expect(await ok(['wait', `--for=jsonpath={.status.digest}=${digest}`, 'function/cr-a', '--timeout=20s'])).toBe('function.skiff.dev/cr-a condition met\n');
    const never = await kubectl(['wait', '--for=jsonpath={.status.digest}=sha256:none', 'function/cr-a', '--timeout=1s']);
    expect(never.code).toBe(1);
    expect(never.stderr).toMatch(/timed out waiting for the condition on functions\/cr-a/);
    // -l waits for every selected object.
    expect(await ok(['wait', '--for=condition=Ready', 'functions', '-l', 'app=cr', '--timeout=20s'])).toBe('function.skiff.dev/cr-a condition met\nfunction.skiff.dev/cr-b condition met\n');
  });

  it('delete -f FILE deletes what the file names, and waits until it is gone', async () => {
    const f = file('delete-f.yaml', fnYaml('del-f'));
    await ok(['create', '-f', f]);
    expect(await ok(['delete', '-f', f, '--wait'])).toBe('function.skiff.dev "del-f" deleted\n');
    expect(await exists('del-f')).toBe(false);
    const missing = await kubectl(['delete', '-f', f]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/Error from server \(NotFound\).*"del-f" not found/);
    expect(await ok(['delete', '-f', f, '--ignore-not-found'])).toBe('');
  });

  it('wait --for=delete returns once the object is deleted', async () => {
    await ok(['create', '-f', file('wait-del.yaml', fnYaml('wait-del'))]);
    const waiting = kubectl(['wait', '--for=delete', 'function/wait-del', '--timeout=20s']);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await exists('wait-del')).toBe(true);
    await ok(['delete', 'function', 'wait-del', '--wait=false']);
    const r = await waiting;
    expect(r).toMatchObject({ code: 0, stdout: 'function.skiff.dev/wait-del condition met\n' });
    // Nothing to wait for: an object that is already gone satisfies --for=delete at once.
    expect(await kubectl(['wait', '--for=delete', 'function/wait-del', '--timeout=2s'])).toMatchObject({ code: 0 });
  });

  it('create namespace sends a protobuf Namespace, which the server takes', async () => {
    expect(await ok(['create', 'namespace', 'team-wf'])).toBe('namespace/team-wf created\n');
    expect(await ok(['get', 'namespace', 'team-wf', '-o', 'jsonpath={.apiVersion} {.metadata.name}'])).toBe('v1 team-wf');
    const again = await kubectl(['create', 'namespace', 'team-wf']);
    expect(again).toMatchObject({ code: 1, stderr: 'Error from server (AlreadyExists): namespace "team-wf" already exists\n' });
    expect(await ok(['delete', 'namespace', 'team-wf'])).toBe('namespace "team-wf" deleted\n');
  });

  it('delete -l and delete --all delete by selector and everything in the namespace', async () => {
    await ok(['create', '-f', file('sel.yaml', `${fnYaml('sel-1', { app: 'x' })}---\n${fnYaml('sel-2', { app: 'x' })}---\n${fnYaml('sel-3', { app: 'y' })}`)]);
    expect(await ok(['delete', 'functions', '-l', 'app=x'])).toBe('function.skiff.dev "sel-1" deleted\nfunction.skiff.dev "sel-2" deleted\n');
    expect(await exists('sel-3')).toBe(true);
    await ok(['create', '-n', 'sweep', '-f', file('sweep.yaml', `${fnYaml('sw-1')}---\n${fnYaml('sw-2')}`)]);
    expect(await ok(['delete', 'functions', '--all', '-n', 'sweep'])).toBe('function.skiff.dev "sw-1" deleted\nfunction.skiff.dev "sw-2" deleted\n');
    const left = await kubectl(['get', 'functions', '-n', 'sweep']);
    expect(left.stderr).toBe('No resources found in sweep namespace.\n');
  });
});

describe.runIf(run)('changing objects in place', () => {
  it('label and annotate add, refuse to overwrite without --overwrite, and remove', async () => {
    await ok(['create', '-f', file('lab.yaml', fnYaml('lab', { app: 'lab' }))]);
    expect(await ok(['label', 'function', 'lab', 'tier=gold'])).toBe('function.skiff.dev/lab labeled\n');
    const clash = await kubectl(['label', 'function', 'lab', 'tier=silver']);
    expect(clash).toMatchObject({ code: 1, stderr: "error: 'tier' already has a value (gold), and --overwrite is false\n" });
    await ok(['label', 'function', 'lab', 'tier=silver', '--overwrite']);
    expect(await ok(['annotate', 'fn', 'lab', 'owner=team-a'])).toBe('function.skiff.dev/lab annotated\n');
    expect(await ok(['get', 'fn', 'lab', '-o', 'jsonpath={.metadata.labels.tier} {.metadata.annotations.owner}'])).toBe('silver team-a');
    expect(await ok(['label', 'function', 'lab', 'tier-'])).toBe('function.skiff.dev/lab unlabeled\n');
    await ok(['annotate', 'fn', 'lab', 'owner-']);
    const obj = JSON.parse(await ok(['get', 'fn', 'lab', '-o', 'json']));
    expect(obj.metadata.labels).toEqual({ app: 'lab' });
    expect(obj.metadata.annotations?.owner).toBeUndefined();
    expect(await ok(['label', 'functions', '-l', 'app=lab', 'seen=yes'])).toBe('function.skiff.dev/lab labeled\n');
  });

  it('edit opens the object in $EDITOR and saves the change', async () => {
    await ok(['create', '-f', file('edit.yaml', fnYaml('edited'))]);
    const editor = file('editor.sh', '#!/bin/sh\nsed -i "s/memory: 16Mi/memory: 32Mi/" "$1"\n');
    chmodSync(editor, 0o755);
    const before = JSON.parse(await ok(['get', 'fn', 'edited', '-o', 'json']));
    expect(await ok(['edit', 'function', 'edited'], { env: { EDITOR: editor } })).toBe('function.skiff.dev/edited edited\n');
    const after = JSON.parse(await ok(['get', 'fn', 'edited', '-o', 'json']));
    expect(after.spec.limits.memory).toBe('32Mi');
    expect(after.metadata.generation).toBe(before.metadata.generation + 1);
    // An editor that changes nothing cancels the edit.
    const unchanged = file('noop.sh', '#!/bin/sh\ntrue\n');
    chmodSync(unchanged, 0o755);
    const r = await kubectl(['edit', 'function', 'edited'], { env: { EDITOR: unchanged } });
    expect(r).toMatchObject({ code: 0, stderr: 'Edit cancelled, no changes made.\n' });
  });

  it('edit reports a server-side refusal and keeps the copy', async () => {
    const editor = file('bad-editor.sh', '#!/bin/sh\nsed -i "s/memory: 32Mi/memory: lots/" "$1"\n');
    chmodSync(editor, 0o755);
    const r = await kubectl(['edit', 'function', 'edited'], { env: { EDITOR: editor } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/A copy of your changes has been stored to/);
    expect(JSON.parse(await ok(['get', 'fn', 'edited', '-o', 'json'])).spec.limits.memory).toBe('32Mi');
  });
});

describe.runIf(run)('apply and reading', () => {
  it('applies stdin (-f -): created, then unchanged, then configured', async () => {
    const yaml = fnYaml('stdin-fn', { app: 'stdin' });
    expect(await ok(['apply', '-f', '-'], { stdin: yaml })).toBe('function.skiff.dev/stdin-fn created\n');
    expect(await ok(['apply', '-f', '-'], { stdin: yaml })).toBe('function.skiff.dev/stdin-fn unchanged\n');
    expect(await ok(['apply', '-f', '-'], { stdin: yaml.replace('16Mi', '24Mi') })).toBe('function.skiff.dev/stdin-fn configured\n');
  });

  it('apply -k applies a kustomization with namePrefix and commonLabels', async () => {
    const k = join(dir, 'kustomize');
    mkdirSync(k);
    writeFileSync(join(k, 'fns.yaml'), `${fnYaml('k-one')}---\n${fnYaml('k-two')}`);
    writeFileSync(join(k, 'kustomization.yaml'), 'namePrefix: dev-\ncommonLabels:\n  env: dev\nresources:\n  - fns.yaml\n');
    expect(await ok(['apply', '-k', k])).toBe('function.skiff.dev/dev-k-one created\nfunction.skiff.dev/dev-k-two created\n');
    const names = await ok(['get', 'functions', '-l', 'env=dev', '-o', 'name']);
    expect(names).toBe('function.skiff.dev/dev-k-one\nfunction.skiff.dev/dev-k-two\n');
    expect(await ok(['delete', '-k', k])).toBe('function.skiff.dev "dev-k-one" deleted\nfunction.skiff.dev "dev-k-two" deleted\n');
  });

  it('get --raw returns the group document as the server sends it', async () => {
    const doc = JSON.parse(await ok(['get', '--raw', '/apis/skiff.dev/v1']));
    expect(doc).toMatchObject({ kind: 'APIResourceList', groupVersion: 'skiff.dev/v1' });
    expect(doc.resources.map((r: { name: string }) => r.name)).toEqual(expect.arrayContaining(['functions', 'routes']));
  });

  it('describe function shows the spec, the conditions and the events', async () => {
    await ok(['create', '-f', file('desc.yaml', fnYaml('desc'))]);
    await ok(['wait', '--for=condition=Ready', 'function/desc', '--timeout=20s']);
    const out = await waitFor(async () => {
      const text = await ok(['describe', 'function', 'desc']);
      return /ModuleLoaded/.test(text.split('Events:')[1] ?? '') ? text : undefined;
    }, 'the ModuleLoaded event in kubectl describe', 15_000);
    expect(out).toMatch(/^Name:\s+desc$/m);
    expect(out).toMatch(/^Kind:\s+Function$/m);
    expect(out).toMatch(/Events:\n\s+Type\s+Reason\s+Age\s+From\s+Message\n/);
    expect(out).toMatch(/Normal\s+ModuleLoaded\s+\S+\s+\S+\s+loaded sha256:/);
  });
});

describe.runIf(run)('Gatekeeper objects through kubectl', () => {
  const template = join(REPO, 'test', 'admission', 'fixtures', 'templates', 'k8srequiredlabels.yaml');
  const constraint = `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata:
  name: fn-must-have-owner
spec:
  match:
    kinds:
      - apiGroups: ["skiff.dev"]
        kinds: ["Function"]
    namespaces: ["gk"]
  parameters:
    message: "every Function needs an owner label"
    labels:
      - key: owner
`;

  it('applies a gatekeeper-library template and a constraint, and shows them unchanged', async () => {
    expect(await ok(['apply', '-f', template])).toBe('constrainttemplate.templates.gatekeeper.sh/k8srequiredlabels created\n');
    expect(await ok(['get', 'constrainttemplates', '-o', 'name'])).toMatch(/^constrainttemplate\.templates\.gatekeeper\.sh\/k8srequiredlabels$/m);
    const served = JSON.parse(await ok(['get', 'constrainttemplate', 'k8srequiredlabels', '-o', 'json']));
    // As stored by a Kubernetes API server: the v1 CRD's default for legacySchema (false) filled in.
    const written = parseYaml(readFileSync(template, 'utf8')).spec;
    expect(served.spec).toEqual({ ...written, crd: { spec: { ...written.crd.spec, validation: { ...written.crd.spec.validation, legacySchema: false } } } });
    // The template's controller registers the constraint kind; kubectl finds it through discovery.
    await waitFor(async () => (await kubectl(['get', 'k8srequiredlabels'])).code === 0, 'the K8sRequiredLabels kind', 15_000);
    expect(await ok(['apply', '-f', '-'], { stdin: constraint })).toBe('k8srequiredlabels.constraints.gatekeeper.sh/fn-must-have-owner created\n');
    expect(await ok(['get', 'k8srequiredlabels', '-o', 'name'])).toBe('k8srequiredlabels.constraints.gatekeeper.sh/fn-must-have-owner\n');
    expect(JSON.parse(await ok(['get', 'k8srequiredlabels', 'fn-must-have-owner', '-o', 'json'])).spec).toEqual(parseYaml(constraint).spec);
  });

  it('refuses a violating Function with the constraint message, and takes a compliant one', async () => {
    const bad = fnYaml('no-owner').replace('metadata:\n', 'metadata:\n  namespace: gk\n');
    const refused = await waitFor(async () => {
      const r = await kubectl(['apply', '-f', '-'], { stdin: bad });
      return r.code === 1 ? r : undefined;
    }, 'the constraint to be enforced', 15_000);
    expect(refused!.stderr).toMatch(/^Error from server \(Forbidden\): error when creating "STDIN": admission denied the request: \[fn-must-have-owner\] every Function needs an owner label$/m);
    const good = fnYaml('has-owner', { owner: 'team-a' }).replace('metadata:\n', 'metadata:\n  namespace: gk\n');
    expect(await ok(['apply', '-f', '-'], { stdin: good })).toBe('function.skiff.dev/has-owner created\n');
    // The constraint binds only its namespaces.
    expect(await ok(['apply', '-f', '-'], { stdin: fnYaml('no-owner-elsewhere') })).toBe('function.skiff.dev/no-owner-elsewhere created\n');
    expect(await ok(['delete', 'k8srequiredlabels', 'fn-must-have-owner'])).toBe('k8srequiredlabels.constraints.gatekeeper.sh "fn-must-have-owner" deleted\n');
  });
});
