import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { constraintKind, constraintTemplateKind } from '../../src/api/kinds/constraint-template.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import { compareVersions } from '../../src/api/kinds/types.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { MemoryStore } from '../../src/store/index.js';

const logger = pino({ level: 'silent' });
const TOKEN = 't';
const CT = (v: string) => `/apis/templates.gatekeeper.sh/${v}/constrainttemplates`;
type Doc = Record<string, any>;

/** A template as the library's older releases wrote it: v1beta1, no legacySchema. */
function template(apiVersion: string, name = 'k8sdemo', validation: Doc | null = { openAPIV3Schema: { properties: { n: { type: 'integer' } } } }): Doc {
  return {
    apiVersion,
    kind: 'ConstraintTemplate',
    metadata: { name },
    spec: { crd: { spec: { names: { kind: name === 'k8sdemo' ? 'K8sDemo' : name }, ...(validation ? { validation } : {}) } }, targets: [{ target: 'admission.k8s.gatekeeper.sh', rego: 'package x\nviolation[{"msg": "m"}] { false }' }] },
  };
}

describe('compareVersions', () => {
  it('ranks versions as Kubernetes does: GA, then beta, then alpha, higher numbers first, others last', () => {
    expect(['v1alpha1', 'foo', 'v1beta1', 'v2', 'v1', 'v11alpha2', 'v1beta2', 'v10beta3'].sort(compareVersions)).toEqual(['v2', 'v1', 'v10beta3', 'v1beta2', 'v1beta1', 'v11alpha2', 'v1alpha1', 'foo']);
  });
});

describe('a kind served in several versions (Gatekeeper ConstraintTemplate)', () => {
  let store: MemoryStore;
  let resources: ResourceService;
  let server: ApiServer;
  let base: string;
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(base + path, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Doc) : undefined };
  };

  beforeEach(async () => {
    store = new MemoryStore();
    const kinds = builtinKinds();
    kinds.register(constraintTemplateKind(() => []));
    kinds.register(constraintKind('K8sDemo', () => []));
    resources = new ResourceService(store, kinds);
    server = new ApiServer({ resources, logger, version: 'test', token: TOKEN });
    base = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
  });
  afterEach(async () => {
    await server.close();
    await store.close();
  });

  it('stores an object written in any version under the storage version, with that version\'s defaults', async () => {
    const created = await call('POST', CT('v1beta1'), template('templates.gatekeeper.sh/v1beta1'));
    expect(created.status).toBe(201);
    expect(created.body!.apiVersion).toBe('templates.gatekeeper.sh/v1beta1');
    // v1beta1 defaults legacySchema to true (v1 to false); the stored form is v1.
    expect(created.body!.spec.crd.spec.validation).toEqual({ legacySchema: true, openAPIV3Schema: { properties: { n: { type: 'integer' } } } });
    expect(JSON.parse((await store.get('/registry/templates.gatekeeper.sh/constrainttemplates/k8sdemo'))!.value).apiVersion).toBe('templates.gatekeeper.sh/v1');
    await call('POST', CT('v1'), template('templates.gatekeeper.sh/v1', 'k8sother', null));
    expect((await call('GET', `${CT('v1')}/k8sother`)).body!.spec.crd.spec.validation).toEqual({ legacySchema: false });
    // v1alpha1 with no validation section at all gets the legacy default.
    await call('POST', CT('v1alpha1'), template('templates.gatekeeper.sh/v1alpha1', 'k8sold', null));
    expect((await call('GET', `${CT('v1')}/k8sold`)).body!.spec.crd.spec.validation).toEqual({ legacySchema: true });
    // An explicit value is kept.
    await call('POST', CT('v1beta1'), template('templates.gatekeeper.sh/v1beta1', 'k8sexplicit', { legacySchema: false }));
    expect((await call('GET', `${CT('v1')}/k8sexplicit`)).body!.spec.crd.spec.validation).toEqual({ legacySchema: false });
  });

  it('answers gets, lists, watches, writes and deletes in the version the request names', async () => {
    await call('POST', CT('v1beta1'), template('templates.gatekeeper.sh/v1beta1'));
    for (const v of ['v1', 'v1beta1', 'v1alpha1']) {
      expect((await call('GET', `${CT(v)}/k8sdemo`)).body!.apiVersion).toBe(`templates.gatekeeper.sh/${v}`);
      const list = (await call('GET', CT(v))).body!;
      expect([list.apiVersion, list.kind, list.items[0].apiVersion]).toEqual([`templates.gatekeeper.sh/${v}`, 'ConstraintTemplateList', `templates.gatekeeper.sh/${v}`]);
    }
    const table = (await call('GET', CT('v1alpha1'), undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' })).body!;
    expect(table.rows[0].object).toMatchObject({ kind: 'PartialObjectMetadata', metadata: { name: 'k8sdemo' } });
    const withObject = (await call('GET', `${CT('v1alpha1')}?includeObject=Object`, undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' })).body!;
    expect(withObject.rows[0].object.apiVersion).toBe('templates.gatekeeper.sh/v1alpha1');

    const patched = await call('PATCH', `${CT('v1beta1')}/k8sdemo`, { metadata: { labels: { a: 'b' } } }, { 'content-type': 'application/merge-patch+json' });
    expect([patched.status, patched.body!.apiVersion]).toEqual([200, 'templates.gatekeeper.sh/v1beta1']);
    // A JSON patch sees the object in the request's version.
    const tested = await call('PATCH', `${CT('v1alpha1')}/k8sdemo`, [{ op: 'test', path: '/apiVersion', value: 'templates.gatekeeper.sh/v1alpha1' }, { op: 'add', path: '/metadata/labels/c', value: 'd' }], { 'content-type': 'application/json-patch+json' });
    expect(tested.status).toBe(200);
    const current = (await call('GET', `${CT('v1beta1')}/k8sdemo`)).body!;
    const put = await call('PUT', `${CT('v1beta1')}/k8sdemo`, { ...current, metadata: { ...current.metadata, annotations: { x: 'y' } } });
    expect([put.status, put.body!.apiVersion, put.body!.metadata.annotations]).toEqual([200, 'templates.gatekeeper.sh/v1beta1', { x: 'y' }]);

    const ctrl = new AbortController();
    const watch = await fetch(`${base}${CT('v1alpha1')}?watch=true`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: ctrl.signal });
    const reader = watch.body!.getReader();
    const first = JSON.parse(new TextDecoder().decode((await reader.read()).value).split('\n')[0]!);
    ctrl.abort();
    expect(first).toMatchObject({ type: 'ADDED', object: { apiVersion: 'templates.gatekeeper.sh/v1alpha1', metadata: { name: 'k8sdemo' } } });

    const deleted = await call('DELETE', `${CT('v1beta1')}/k8sdemo`);
    expect([deleted.status, deleted.body!.apiVersion]).toEqual([200, 'templates.gatekeeper.sh/v1beta1']);
  });

  it('applies server-side in any version and records the version in managedFields', async () => {
    const applied = await call('PATCH', `${CT('v1beta1')}/k8sdemo?fieldManager=me`, template('templates.gatekeeper.sh/v1beta1'), { 'content-type': 'application/apply-patch+yaml' });
    expect([applied.status, applied.body!.apiVersion]).toEqual([201, 'templates.gatekeeper.sh/v1beta1']);
    expect(applied.body!.metadata.managedFields).toEqual([expect.objectContaining({ manager: 'me', operation: 'Apply', apiVersion: 'templates.gatekeeper.sh/v1beta1' })]);
    expect(applied.body!.spec.crd.spec.validation.legacySchema).toBe(true);
    // Defaulted fields belong to no manager: applying the same configuration again changes nothing.
    const again = await call('PATCH', `${CT('v1beta1')}/k8sdemo?fieldManager=me`, template('templates.gatekeeper.sh/v1beta1'), { 'content-type': 'application/apply-patch+yaml' });
    expect(again.body!.metadata.resourceVersion).toBe(applied.body!.metadata.resourceVersion);
    const wrong = await call('PATCH', `${CT('v1')}/k8sdemo?fieldManager=me`, { ...template('templates.gatekeeper.sh/v2'), kind: 'ConstraintTemplate' }, { 'content-type': 'application/apply-patch+yaml' });
    expect(wrong.status).toBe(422);
    expect(wrong.body!.message).toContain('apiVersion');
  });

  it('lists every version in discovery, the preferred one first, and documents each in OpenAPI', async () => {
    const group = (await call('GET', '/apis/templates.gatekeeper.sh')).body!;
    expect(group.versions.map((v: Doc) => v.version)).toEqual(['v1', 'v1beta1', 'v1alpha1']);
    expect(group.preferredVersion.version).toBe('v1');
    const constraints = (await call('GET', '/apis/constraints.gatekeeper.sh')).body!;
    expect(constraints.versions.map((v: Doc) => v.version)).toEqual(['v1beta1', 'v1alpha1']);
    expect(constraints.preferredVersion.version).toBe('v1beta1');
    const beta = (await call('GET', '/apis/templates.gatekeeper.sh/v1beta1')).body!;
    expect(beta.groupVersion).toBe('templates.gatekeeper.sh/v1beta1');
    expect(beta.resources.map((r: Doc) => r.name)).toEqual(['constrainttemplates', 'constrainttemplates/status']);
    // Objects are stored in one version: every version reports the same storage version hash.
    const v1 = (await call('GET', '/apis/templates.gatekeeper.sh/v1')).body!;
    expect(beta.resources[0].storageVersionHash).toBe(v1.resources[0].storageVersionHash);

    const aggregated = (await call('GET', '/apis', undefined, { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' })).body!;
    const templates = aggregated.items.find((g: Doc) => g.metadata.name === 'templates.gatekeeper.sh');
    expect(templates.versions.map((v: Doc) => [v.version, v.resources[0].responseKind.version])).toEqual([
      ['v1', 'v1'],
      ['v1beta1', 'v1beta1'],
      ['v1alpha1', 'v1alpha1'],
    ]);

    const index = (await call('GET', '/openapi/v3')).body!;
    for (const path of ['apis/templates.gatekeeper.sh/v1', 'apis/templates.gatekeeper.sh/v1beta1', 'apis/templates.gatekeeper.sh/v1alpha1', 'apis/constraints.gatekeeper.sh/v1alpha1']) expect(Object.keys(index.paths)).toContain(path);
    const doc = (await call('GET', '/openapi/v3/apis/templates.gatekeeper.sh/v1beta1')).body!;
    const schema = doc.components.schemas['sh.gatekeeper.templates.v1beta1.ConstraintTemplate'];
    expect(schema['x-kubernetes-group-version-kind']).toEqual([{ group: 'templates.gatekeeper.sh', kind: 'ConstraintTemplate', version: 'v1beta1' }]);
    expect(doc.paths['/apis/templates.gatekeeper.sh/v1beta1/constrainttemplates/{name}']).toBeDefined();
    const v2 = (await call('GET', '/openapi/v2')).body!;
    expect(Object.keys(v2.definitions).filter((k) => k.startsWith('sh.gatekeeper.templates.')).sort()).toEqual([
      'sh.gatekeeper.templates.v1.ConstraintTemplate',
      'sh.gatekeeper.templates.v1.ConstraintTemplateList',
      'sh.gatekeeper.templates.v1alpha1.ConstraintTemplate',
      'sh.gatekeeper.templates.v1alpha1.ConstraintTemplateList',
      'sh.gatekeeper.templates.v1beta1.ConstraintTemplate',
      'sh.gatekeeper.templates.v1beta1.ConstraintTemplateList',
    ]);
  });

  it('refuses a version the kind is not served in', async () => {
    expect((await call('GET', CT('v2'))).status).toBe(404);
    const bad = await call('POST', CT('v1'), template('templates.gatekeeper.sh/v2'));
    expect(bad.status).toBe(422);
  });
});
