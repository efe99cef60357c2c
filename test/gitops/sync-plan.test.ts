import { describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { artifactPath, buildPlan, configFor, healthOf, type PlannedObject, SyncBuildError, SyncLimitError } from '../../src/gitops/sync/index.js';
import { MemoryStore } from '../../src/store/index.js';

const files = (o: Record<string, string>) => new Map(Object.entries(o).map(([k, v]) => [k, new TextEncoder().encode(v)]));
const scope = (_apiVersion: string, kind: string) => (kind === 'Namespace' || kind === 'ConstraintTemplate' ? false : kind === 'Unknown' ? undefined : true);
const sync = { name: 's', namespace: 'default' };
const plan = (f: Record<string, string>, path = './', extra: Record<string, unknown> = {}) => buildPlan({ files: files(f), path, sync, scope, ...extra });
const names = (p: PlannedObject[]) => p.map((o) => `${o.object.kind}/${o.object.metadata.namespace ?? ''}/${o.object.metadata.name}`);

const fnYaml = (name: string, labels = '') => `apiVersion: skiff.dev/v1\nkind: Function\nmetadata:\n  name: ${name}\n${labels}spec:\n  module: oci://r.example/m:1\n`;

describe('buildPlan (plain manifests)', () => {
  it('reads every .yaml/.yml/.json under the path, multi-document and List, sorted in apply order', async () => {
    const p = await plan({
      'deploy/a.yaml': `${fnYaml('a')}---\napiVersion: v1\nkind: Namespace\nmetadata: { name: ns1 }\n`,
      'deploy/sub/b.json': JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'skiff.dev/v1', kind: 'Route', metadata: { name: 'r' }, spec: {} }] }),
      'deploy/c.yml': fnYaml('c'),
      'deploy/notes.txt': 'not a manifest',
      'deploy/.github/ci.yml': 'on: push\njobs: {}\n',
      'other/x.yaml': fnYaml('x'),
    }, './deploy');
    expect(names(p)).toEqual(['Namespace//ns1', 'Function/default/a', 'Function/default/c', 'Route/default/r']);
    expect(p[1]!.object.metadata.labels).toEqual({ 'sync.skiff.dev/name': 's', 'sync.skiff.dev/namespace': 'default' });
    expect(p[1]).toMatchObject({ file: 'deploy/a.yaml', line: 1, id: 'default_a_skiff.dev_Function', v: 'v1' });
    expect(p[0]).toMatchObject({ id: '_ns1__Namespace' });
  });

  it('names file, line and column of every parse error, and objects defined twice', async () => {
    const err = await plan({ 'a.yaml': 'apiVersion: v1\nkind: [\n', 'b.yaml': `${fnYaml('dup')}`, 'c.yaml': `# c\n---\n${fnYaml('dup')}`, 'd.yaml': 'apiVersion: v1\nmetadata: {name: x}\n' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncBuildError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^a\.yaml:\d+:\d+: /m);
    expect(msg).toContain('d.yaml:1: the object has no kind');
    await expect(plan({ 'b.yaml': fnYaml('dup'), 'c.yaml': `# c\n---\n${fnYaml('dup')}` })).rejects.toThrow(/c\.yaml:3: Function default\/dup is also defined at b\.yaml:1/);
  });

  it('puts namespaced objects in targetNamespace and leaves cluster-scoped ones without one', async () => {
    const p = await plan({ 'a.yaml': `${fnYaml('a')}---\napiVersion: v1\nkind: Namespace\nmetadata: { name: ns1, namespace: bogus }\n---\napiVersion: skiff.dev/v1\nkind: Function\nmetadata: { name: b, namespace: other }\nspec: { module: oci://r/m:1 }\n` }, './', { targetNamespace: 'apps' });
    expect(names(p)).toEqual(['Namespace//ns1', 'Function/apps/a', 'Function/apps/b']);
  });

  it('refuses paths that leave the artifact', async () => {
    expect(() => artifactPath('', '../x', 'spec.path')).toThrow(/leaves/);
    expect(() => artifactPath('a/b', '../../../x', 'f')).toThrow(/leaves/);
    expect(() => artifactPath('', '/etc/passwd', 'f')).toThrow(/absolute/);
    expect(() => artifactPath('', 'C:\\x', 'f')).toThrow(/absolute/);
    expect(artifactPath('a/b', '../c/./d/', 'f')).toBe('a/c/d');
    expect(artifactPath('', './', 'f')).toBe('');
    await expect(plan({ 'a.yaml': fnYaml('a') }, 'missing')).rejects.toThrow(/the folder \.\/missing is not in the source's artifact/);
    await expect(plan({ 'k/kustomization.yaml': 'resources: [../../etc]\n' }, 'k')).rejects.toThrow(/leaves the Git repository's artifact/);
  });

  it('is bounded in objects', async () => {
    const many = Array.from({ length: 6 }, (_, i) => fnYaml(`f${i}`)).join('---\n');
    await expect(plan({ 'a.yaml': many }, './', { limits: { maxObjects: 5, maxBytes: 1 << 20, maxDepth: 4, maxPatches: 4 } })).rejects.toBeInstanceOf(SyncLimitError);
  });
});

describe('buildPlan (kustomize subset)', () => {
  const base = {
    'base/kustomization.yaml': 'resources:\n  - fn.yaml\n  - route.yaml\ncommonLabels:\n  app: shop\n',
    'base/fn.yaml': fnYaml('web', '  labels:\n    tier: front\n'),
    'base/route.yaml': 'apiVersion: skiff.dev/v1\nkind: Route\nmetadata:\n  name: web\nspec:\n  hosts: [a]\n',
  };

  it('builds nested kustomizations with namespace, prefix, suffix, labels, annotations and patches', async () => {
    const p = await plan({
      ...base,
      'prod/kustomization.yml': [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'namespace: team',
        'namePrefix: prod-',
        'nameSuffix: -v1',
        'commonAnnotations: { owner: ops }',
        'resources: [../base, extra]',
        'patchesStrategicMerge:',
        '  - env.yaml',
        'patches:',
        '  - target: { kind: Route, name: "w.b" }',
        '    patch: |',
        '      - op: replace',
        '        path: /spec/hosts/0',
        '        value: prod.example',
        '  - target: { labelSelector: "tier=front" }',
        '    patch: |',
        '      metadata:',
        '        labels: { patched: "yes" }',
      ].join('\n'),
      'prod/env.yaml': 'apiVersion: skiff.dev/v1\nkind: Function\nmetadata: { name: web }\nspec:\n  env: { MODE: prod }\n',
      'prod/extra/e.yaml': fnYaml('extra'),
    }, 'prod');
    expect(names(p)).toEqual(['Function/team/prod-web-v1', 'Function/team/prod-extra-v1', 'Route/team/prod-web-v1']);
    const web = p[0]!.object;
    expect(web.spec.env).toEqual({ MODE: 'prod' });
    expect(web.metadata.labels).toMatchObject({ app: 'shop', tier: 'front', patched: 'yes' });
    expect(web.metadata.annotations).toEqual({ owner: 'ops' });
    expect(p[1]!.object.metadata.labels?.app).toBeUndefined();
    expect(p[2]!.object.spec.hosts).toEqual(['prod.example']);
    expect(p[2]!.file).toBe('base/route.yaml');
  });

  it('supports patchesJson6902 from a file', async () => {
    const p = await plan({ ...base, 'o/kustomization.yaml': 'resources: [../base]\npatchesJson6902:\n  - target: { group: skiff.dev, version: v1, kind: Function, name: web }\n    path: p.yaml\n', 'o/p.yaml': '- op: add\n  path: /spec/env\n  value: { A: "1" }\n' }, 'o');
    expect(p[0]!.object.spec.env).toEqual({ A: '1' });
  });

  it('names unsupported fields, remote resources, unmatched patches and cycles', async () => {
    await expect(plan({ ...base, 'o/kustomization.yaml': 'resources: [../base]\nimages: []\nconfigMapGenerator: []\n' }, 'o')).rejects.toThrow(/o\/kustomization\.yaml: "images", "configMapGenerator" are not supported/);
    await expect(plan({ 'o/kustomization.yaml': 'resources: [https://github.com/x/y]\n' }, 'o')).rejects.toThrow(/is remote/);
    await expect(plan({ ...base, 'o/kustomization.yaml': 'resources: [../base]\npatchesStrategicMerge:\n  - |\n    apiVersion: skiff.dev/v1\n    kind: Function\n    metadata: { name: nope }\n' }, 'o')).rejects.toThrow(/no resource matches the patch \(Function\/nope\)/);
    await expect(plan({ 'a/kustomization.yaml': 'resources: [../b]\n', 'b/kustomization.yaml': 'resources: [../a]\n' }, 'a')).rejects.toThrow(/cycle/);
    await expect(plan({ 'o/kustomization.yaml': 'resources: [x.yaml]\nnamePrefix: [\n' }, 'o')).rejects.toThrow(/o\/kustomization\.yaml:\d+:\d+/);
  });
});

describe('the Sync kind', () => {
  const resources = new ResourceService(new MemoryStore(), builtinKinds());
  const create = (spec: Record<string, unknown>) => resources.create(resources.kind('Sync'), 'default', { apiVersion: 'skiff.dev/v1', kind: 'Sync', metadata: { name: 'app', namespace: 'default' }, spec: { sourceRef: { kind: 'GitRepository', name: 'app' }, ...spec } }, { dryRun: true });

  it('accepts the contract\'s shape and names each bad field', async () => {
    await expect(create({ path: './deploy', interval: '2s', timeout: '1m30s', prune: true, wait: true, dependsOn: [{ name: 'policies' }], targetNamespace: 'apps', rollback: { enabled: false } })).resolves.toBeDefined();
    await expect(create({ interval: '500ms' })).rejects.toThrow(/spec\.interval/);
    await expect(create({ timeout: 'soon' })).rejects.toThrow(/spec\.timeout/);
    await expect(create({ dependsOn: [{ name: 'app' }] })).rejects.toThrow(/spec\.dependsOn\[0\].*itself/);
    await expect(create({ targetNamespace: 'Not_A_Name' })).rejects.toThrow(/spec\.targetNamespace/);
    await expect(create({ path: 'a/../../b' })).rejects.toThrow(/spec\.path/);
    await expect(create({ sourceRef: { kind: 'Bucket', name: 'x' } })).rejects.toThrow(/sourceRef/);
    await expect(create({ surprise: 1 })).rejects.toThrow(/surprise/);
  });
});

describe('configFor (the delegation rule)', () => {
  it('leaves out a Function\'s module and image and a Route\'s rules only when a Rollout drives the object', () => {
    const fnObj = { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'f' }, spec: { image: 'oci://r.example/i@sha256:' + 'a'.repeat(64), module: './m.wasm', env: { A: '1' } } };
    const route = { apiVersion: 'skiff.dev/v1', kind: 'Route', metadata: { name: 'r' }, spec: { hosts: ['*'], http: [{ route: [] }] } };
    const driven = { apiVersion: 'v1', kind: 'X', metadata: { name: 'x', annotations: { 'rollout.skiff.dev/name': 'ro' } } };
    expect(configFor(fnObj, undefined)).toBe(fnObj);
    expect(configFor(fnObj, { ...fnObj, metadata: { name: 'f' } })).toBe(fnObj);
    expect(configFor(fnObj, driven).spec).toEqual({ env: { A: '1' } });
    expect(configFor(route, driven).spec).toEqual({ hosts: ['*'] });
    expect(fnObj.spec.module).toBe('./m.wasm');
  });
});

describe('healthOf', () => {
  const ro = (reason: string, status = 'False') => ({ apiVersion: 'skiff.dev/v1', kind: 'Rollout', metadata: { name: 'r', generation: 2 }, status: { conditions: [{ type: 'Ready', status, reason, message: 'm', observedGeneration: 2 }] } });
  it('takes a Rollout in progress or paused as healthy and a Degraded one as failing', () => {
    expect(healthOf(ro('Healthy', 'True')).healthy).toBe(true);
    expect(healthOf(ro('Progressing')).healthy).toBe(true);
    expect(healthOf(ro('Paused')).healthy).toBe(true);
    expect(healthOf(ro('Degraded'))).toEqual({ healthy: false, message: 'Rollout r is not Ready (Degraded: m)' });
    expect(healthOf({ ...ro('Progressing'), metadata: { name: 'r', generation: 3 } }).healthy).toBe(false);
    expect(healthOf({ ...ro('Progressing'), kind: 'Function' }).healthy).toBe(false);
  });
});
