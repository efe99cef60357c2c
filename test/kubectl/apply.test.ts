import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasKubectl, type Kubectl, kubectlFor } from '../helpers/kubectl.js';
import { apiFetch, cli, REPO, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';

const run = hasKubectl();
const MODULE_DIR = join(REPO, 'examples', 'hello');
const MODULE = join(MODULE_DIR, 'hello.wasm');

let s: RunningSkiff;
let kubectl: Kubectl;
let work: string;
/** `--validate=false` while the server publishes no OpenAPI document (kubectl's strict validation needs one). */
let validate: string[] = [];

function fnYaml(name: string, opts: { memory?: string; labels?: Record<string, string>; extra?: string } = {}): string {
  const labels = Object.entries(opts.labels ?? {}).map(([k, v]) => `    ${k}: ${v}\n`).join('');
  return `apiVersion: skiff.dev/v1\nkind: Function\nmetadata:\n  name: ${name}\n${labels ? `  labels:\n${labels}` : ''}spec:\n  module: ${MODULE}\n  limits:\n    memory: ${opts.memory ?? '64Mi'}\n${opts.extra ?? ''}`;
}

function file(name: string, text: string): string {
  const p = join(work, name);
  writeFileSync(p, text);
  return p;
}

/**
 * api calls the API once more when the first attempt finds its kept-alive connection closed: the
 * synchronous `skiff` runs block this process longer than the server keeps an idle connection.
 */
async function api(path: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await apiFetch(s, path, init);
  } catch {
    return apiFetch(s, path, init);
  }
}

async function live(name: string): Promise<Record<string, any>> {
  const res = await api(`/apis/skiff.dev/v1/namespaces/default/functions/${name}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, any>;
}

/** settled is the object once the controller has reported on its latest generation (its status write done). */
async function settled(name: string): Promise<Record<string, any>> {
  return (await waitFor(async () => {
    const o = await live(name);
    // The Function controller reported on this generation, and the autoscaler on the Function.
    return o.status?.observedGeneration === o.metadata.generation && o.status?.autoscaler !== undefined ? o : undefined;
  }, `the controllers to report on ${name}`))!;
}

beforeAll(async () => {
  s = await startSkiff({ args: ['--allow-host-dir', MODULE_DIR] });
  kubectl = kubectlFor(s);
  work = mkdtempSync(join(tmpdir(), 'skiff-kubectl-apply-'));
  const openapi = await apiFetch(s, '/openapi/v3');
  validate = openapi.status === 200 ? [] : ['--validate=false'];
});
afterAll(async () => {
  await s?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.runIf(run)('kubectl apply (client side)', () => {
  it('creates, leaves unchanged and configures through the last-applied annotation', async () => {
    const f = file('csa.yaml', fnYaml('csa'));
    const created = await kubectl(['apply', ...validate, '-f', f]);
    expect(created.stdout).toBe('function.skiff.dev/csa created\n');
    const first = await settled('csa');
    expect(first.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']).toContain('"name":"csa"');
    expect(first.metadata.managedFields).toContainEqual(expect.objectContaining({ manager: 'kubectl-client-side-apply', operation: 'Update' }));

    const again = await kubectl(['apply', ...validate, '-f', f]);
    expect(again.stdout).toBe('function.skiff.dev/csa unchanged\n');
    const still = await live('csa');
    expect(still.metadata.resourceVersion).toBe(first.metadata.resourceVersion);

    writeFileSync(f, fnYaml('csa', { memory: '128Mi' }));
    const changed = await kubectl(['apply', ...validate, '-f', f]);
    expect(changed.stdout).toBe('function.skiff.dev/csa configured\n');
    const after = await live('csa');
    expect(after.spec.limits.memory).toBe('128Mi');
    expect(after.metadata.generation).toBe(2);
  });

  it('prunes labelled objects no longer in the directory', async () => {
    const dir = join(work, 'prune');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.yaml'), fnYaml('prune-a', { labels: { app: 'pr' } }));
    writeFileSync(join(dir, 'b.yaml'), fnYaml('prune-b', { labels: { app: 'pr' } }));
    const args = ['apply', ...validate, '--prune', '-l', 'app=pr', '--prune-allowlist=skiff.dev/v1/Function', '-f', dir];
    const first = await kubectl(args);
    expect(first.code).toBe(0);
    expect(first.stdout).toBe('function.skiff.dev/prune-a created\nfunction.skiff.dev/prune-b created\n');
    rmSync(join(dir, 'b.yaml'));
    const second = await kubectl(args);
    expect(second.stdout).toBe('function.skiff.dev/prune-a unchanged\nfunction.skiff.dev/prune-b pruned\n');
    expect((await apiFetch(s, '/apis/skiff.dev/v1/namespaces/default/functions/prune-b')).status).toBe(404);
  });
});

describe.runIf(run)('kubectl apply --server-side', () => {
  it('applies a directory of files, refuses a conflicting change naming field and manager, and forces it', async () => {
    const dir = join(work, 'ssa');
    mkdirSync(dir);
    for (let i = 0; i < 5; i++) writeFileSync(join(dir, `f${i}.yaml`), fnYaml(`ssa-${i}`));
    const applied = await kubectl(['apply', ...validate, '--server-side', '-f', dir]);
    expect(applied.code).toBe(0);
    expect(applied.stdout.trim().split('\n')).toEqual([0, 1, 2, 3, 4].map((i) => `function.skiff.dev/ssa-${i} serverside-applied`));
    const obj = await live('ssa-0');
    expect(obj.metadata.managedFields).toContainEqual(
      expect.objectContaining({ manager: 'kubectl', operation: 'Apply', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:limits': { 'f:memory': {} }, 'f:module': {} } } }),
    );

    const patched = await kubectl(['patch', 'function', 'ssa-0', '--type=merge', '-p', '{"spec":{"limits":{"memory":"96Mi"}}}']);
    expect(patched.stdout).toBe('function.skiff.dev/ssa-0 patched\n');
    writeFileSync(join(dir, 'f0.yaml'), fnYaml('ssa-0', { memory: '256Mi' }));
    const refused = await kubectl(['apply', ...validate, '--server-side', '-f', join(dir, 'f0.yaml')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Apply failed with 1 conflict: conflict with "kubectl-patch" using skiff.dev/v1: .spec.limits.memory');
    expect((await live('ssa-0')).spec.limits.memory).toBe('96Mi');

    const forced = await kubectl(['apply', ...validate, '--server-side', '--force-conflicts', '-f', join(dir, 'f0.yaml')]);
    expect(forced.code).toBe(0);
    const owned = await settled('ssa-0');
    expect(owned.spec.limits.memory).toBe('256Mi');
    expect(owned.metadata.managedFields.find((e: { manager: string }) => e.manager === 'kubectl-patch')).toBeUndefined();

    // Applying the same again writes nothing.
    await kubectl(['apply', ...validate, '--server-side', '-f', join(dir, 'f0.yaml')]);
    expect((await live('ssa-0')).metadata.resourceVersion).toBe(owned.metadata.resourceVersion);
  });

  it('leaves resourceVersion and generation alone on a server dry run', async () => {
    const f = file('dry.yaml', fnYaml('dry'));
    await kubectl(['apply', ...validate, '--server-side', '-f', f]);
    // The controller writes status once after a create; compare after that.
    const before = await settled('dry');
    writeFileSync(f, fnYaml('dry', { memory: '1Gi' }));
    const r = await kubectl(['apply', ...validate, '--server-side', '--dry-run=server', '-f', f, '-o', 'json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).spec.limits.memory).toBe('1Gi');
    const after = await live('dry');
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(after.metadata.generation).toBe(before.metadata.generation);
    expect(after.spec.limits.memory).toBe('64Mi');
  });
});

describe.runIf(run)('kubectl diff, patch and replace', () => {
  it('diffs against a dry-run apply: exit 0 when equal, 1 with the change otherwise', async () => {
    const f = file('diff.yaml', fnYaml('diff'));
    await kubectl(['apply', ...validate, '-f', f]);
    const before = await settled('diff');
    for (const mode of [[], ['--server-side', '--force-conflicts']]) {
      const same = await kubectl(['diff', ...mode, '-f', f]);
      expect(same.code, same.stderr).toBe(0);
      expect(same.stdout).toBe('');
    }
    const changed = file('diff2.yaml', fnYaml('diff', { memory: '512Mi' }));
    for (const mode of [[], ['--server-side', '--force-conflicts']]) {
      const d = await kubectl(['diff', ...mode, '-f', changed]);
      expect(d.code, d.stderr).toBe(1);
      expect(d.stdout).toMatch(/^-\s+memory: 64Mi$/m);
      expect(d.stdout).toMatch(/^\+\s+memory: 512Mi$/m);
    }
    const after = await live('diff');
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(after.spec.limits.memory).toBe('64Mi');
  });

  it('patches with JSON patch, merge patch and strategic merge patch', async () => {
    await kubectl(['apply', ...validate, '-f', file('p.yaml', fnYaml('p'))]);
    const json = await kubectl(['patch', 'fn', 'p', '--type=json', '-p', '[{"op":"test","path":"/spec/limits/memory","value":"64Mi"},{"op":"replace","path":"/spec/limits/memory","value":"80Mi"},{"op":"add","path":"/metadata/annotations/example.com~1note","value":"a"}]']);
    expect(json.stdout).toBe('function.skiff.dev/p patched\n');
    let obj = await live('p');
    expect(obj.spec.limits.memory).toBe('80Mi');
    expect(obj.metadata.annotations['example.com/note']).toBe('a');

    const failed = await kubectl(['patch', 'fn', 'p', '--type=json', '-p', '[{"op":"test","path":"/spec/limits/memory","value":"1Mi"}]']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('operation 0 (test /spec/limits/memory)');
    expect(failed.stderr).toContain('test failed');

    expect((await kubectl(['patch', 'fn', 'p', '--type=merge', '-p', '{"spec":{"limits":{"timeout":"5s"}}}'])).code).toBe(0);
    expect((await kubectl(['patch', 'fn', 'p', '--type=strategic', '-p', '{"spec":{"limits":{"timeout":"6s"}}}'])).stdout).toBe('function.skiff.dev/p patched\n');
    // The controllers report on the new generation first: a status write between kubectl's read and
    // its patch would be a change kubectl reports.
    const rv = (await settled('p')).metadata.resourceVersion;
    expect((await kubectl(['patch', 'fn', 'p', '-p', '{"spec":{"limits":{"timeout":"6s"}}}'])).stdout).toBe('function.skiff.dev/p patched (no change)\n');
    obj = await live('p');
    expect(obj.spec.limits).toEqual({ memory: '80Mi', timeout: '6s' });
    expect(obj.metadata.resourceVersion).toBe(rv);
    expect(obj.metadata.managedFields).toContainEqual(expect.objectContaining({ manager: 'kubectl-patch', operation: 'Update' }));
  });

  it('replaces, and refuses a stale resourceVersion with 409 in kube words', async () => {
    await kubectl(['apply', ...validate, '-f', file('r.yaml', fnYaml('r'))]);
    // Once the controllers have written their status: a status write between get and replace is a real conflict.
    await settled('r');
    const current = (await kubectl(['get', 'fn', 'r', '-o', 'yaml'])).stdout;
    const replaced = await kubectl(['replace', ...validate, '-f', '-'], { stdin: current.replace('memory: 64Mi', 'memory: 70Mi') });
    expect(replaced.stdout).toBe('function.skiff.dev/r replaced\n');
    const stale = await kubectl(['replace', ...validate, '-f', '-'], { stdin: current.replace('memory: 64Mi', 'memory: 72Mi') });
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('Operation cannot be fulfilled on functions.skiff.dev "r": the object has been modified; please apply your changes to the latest version and try again');
    expect((await live('r')).spec.limits.memory).toBe('70Mi');
  });
});

describe('skiff apply shares the server-side apply', () => {
  it('applies as field manager skiff, reports created/unchanged/configured, and stops at conflicts', async () => {
    const f = file('skiff.yaml', fnYaml('by-skiff').replace(MODULE, './hello.wasm'));
    writeFileSync(join(work, 'hello.wasm'), new Uint8Array(await (await import('node:fs/promises')).readFile(MODULE)));
    expect((await cli(['apply', '-f', f], { skiff: s })).stdout).toBe('function.skiff.dev/by-skiff created\n');
    expect((await cli(['apply', '-f', f], { skiff: s })).stdout).toBe('function.skiff.dev/by-skiff unchanged\n');
    const obj = await live('by-skiff');
    expect(obj.metadata.managedFields).toContainEqual(expect.objectContaining({ manager: 'skiff', operation: 'Apply' }));
    await settled('by-skiff');

    const patched = await api('/apis/skiff.dev/v1/namespaces/default/functions/by-skiff?fieldManager=someone-else', {
      method: 'PATCH',
      headers: { 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ spec: { limits: { memory: '99Mi' } } }),
    });
    expect(patched.status).toBe(200);
    writeFileSync(f, fnYaml('by-skiff', { memory: '128Mi' }).replace(MODULE, './hello.wasm'));
    const refused = await cli(['apply', '-f', f], { skiff: s });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('conflict with "someone-else" using skiff.dev/v1: .spec.limits.memory');
    expect(refused.stderr).toContain('--force-conflicts');
    const forced = await cli(['apply', '--force-conflicts', '-f', f], { skiff: s });
    expect(forced.stdout).toBe('function.skiff.dev/by-skiff configured\n');
    expect((await live('by-skiff')).spec.limits.memory).toBe('128Mi');
  });
});
