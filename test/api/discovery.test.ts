import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { negotiateDiscovery } from '../../src/api/discovery/index.js';
import { constraintKind } from '../../src/api/kinds/constraint-template.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { MemoryStore } from '../../src/store/index.js';

const TOKEN = 'tok';
const V2 = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';
const V2BETA1 = 'application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList';
/** What kubectl 1.32 sends for /api and /apis. */
const KUBECTL_ACCEPT = `${V2},${V2BETA1},application/json`;

describe('negotiateDiscovery', () => {
  it.each([
    [undefined, { aggregated: false }],
    ['', { aggregated: false }],
    [KUBECTL_ACCEPT, { aggregated: 'v2' }],
    [`${V2BETA1},application/json`, { aggregated: 'v2beta1' }],
    ['application/json', { aggregated: false }],
    ['application/json;charset=utf-8', { aggregated: false }],
    ['*/*', { aggregated: false }],
    ['application/json, */*', { aggregated: false }],
    // Weights beat order; a zero weight is a refusal.
    [`application/json;q=0.5,${V2}`, { aggregated: 'v2' }],
    [`${V2};q=0,application/json`, { aggregated: false }],
    // Parameters in any order, a version Skiff does not speak skipped.
    ['application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io', { aggregated: 'v2' }],
    ['application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json', { aggregated: false }],
    ['application/json;as=Table;v=v1;g=meta.k8s.io,application/json', { aggregated: false }],
  ])('Accept %j → %j', (accept, want) => {
    expect(negotiateDiscovery(accept)).toEqual(want);
  });

  it.each(['application/yaml', 'application/vnd.kubernetes.protobuf', 'application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList', `${V2};q=0`])('refuses %j', (accept) => {
    expect(negotiateDiscovery(accept)).toBeUndefined();
  });
});

describe('discovery documents', () => {
  let store: MemoryStore;
  let resources: ResourceService;
  let server: ApiServer;
  let base: string;
  let port: number;
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(base + path, { headers: { authorization: `Bearer ${TOKEN}`, ...headers } });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };

  beforeEach(async () => {
    store = new MemoryStore();
    resources = new ResourceService(store, builtinKinds());
    server = new ApiServer({ resources, logger: pino({ level: 'silent' }), version: 't', token: TOKEN });
    port = (await server.listen('127.0.0.1', 0)).port;
    base = `http://127.0.0.1:${port}`;
  });
  afterEach(async () => {
    await server.close();
    await store.close();
  });

  it('serves /api as APIVersions and /api/v1 with Namespace and Event', async () => {
    const api = await get('/api');
    expect(api.status).toBe(200);
    expect(api.headers.get('content-type')).toBe('application/json');
    expect(api.body).toEqual({ kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${port}` }] });
    const v1 = await get('/api/v1');
    expect(v1.body).toMatchObject({ kind: 'APIResourceList', groupVersion: 'v1' });
    expect(v1.body.apiVersion).toBeUndefined();
    const byName = Object.fromEntries(v1.body.resources.map((r: { name: string }) => [r.name, r]));
    expect(Object.keys(byName).sort()).toEqual(['events', 'namespaces', 'namespaces/status', 'nodes', 'nodes/status', 'secrets']);
    expect(byName.nodes).toMatchObject({ singularName: 'node', namespaced: false, kind: 'Node', shortNames: ['no'] });
    expect(byName.namespaces).toMatchObject({
      singularName: 'namespace',
      namespaced: false,
      kind: 'Namespace',
      shortNames: ['ns'],
      verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
      storageVersionHash: expect.stringMatching(/^[A-Za-z0-9+/]{11}=$/),
    });
    expect(byName.events).toMatchObject({ namespaced: true, kind: 'Event', shortNames: ['ev'] });
    expect(byName.secrets).toMatchObject({ namespaced: true, kind: 'Secret', singularName: 'secret' });
    expect(byName['namespaces/status']).toEqual({ name: 'namespaces/status', singularName: '', namespaced: false, kind: 'Namespace', verbs: ['get', 'patch', 'update'] });
  });

  it('lists the named groups under /apis, Skiff first, without the core kinds', async () => {
    const apis = await get('/apis');
    expect(apis.body.kind).toBe('APIGroupList');
    expect(apis.body.groups[0]).toEqual({ name: 'skiff.dev', versions: [{ groupVersion: 'skiff.dev/v1', version: 'v1' }], preferredVersion: { groupVersion: 'skiff.dev/v1', version: 'v1' } });
    expect(apis.body.groups.map((g: { name: string }) => g.name)).not.toContain('');
    const coordination = await get('/apis/coordination.k8s.io/v1');
    expect(coordination.body.resources).toEqual([expect.objectContaining({ name: 'leases', singularName: 'lease', namespaced: true, kind: 'Lease' })]);
    const group = await get('/apis/skiff.dev');
    expect(group.body).toMatchObject({ kind: 'APIGroup', apiVersion: 'v1', name: 'skiff.dev', preferredVersion: { version: 'v1' } });
    const list = await get('/apis/skiff.dev/v1');
    const names = list.body.resources.map((r: { name: string }) => r.name);
    expect(names).toEqual(['functions', 'functions/status', 'functions/log', 'functions/scale', 'gitrepositories', 'gitrepositories/status', 'imagepolicies', 'imagepolicies/status', 'policies', 'policies/status', 'policybundles', 'policybundles/status', 'rollouts', 'rollouts/status', 'routes', 'routes/status', 'services', 'services/status', 'syncs', 'syncs/status', 'trustroots', 'trustroots/status']);
    const fn = list.body.resources[0];
    expect(fn).toMatchObject({ kind: 'Function', shortNames: ['fn'], categories: ['all'] });
    expect(list.body.resources.find((r: { name: string }) => r.name === 'policies').categories).toBeUndefined();
  });

  it('answers the aggregated document when Accept asks for it, with the matching Content-Type', async () => {
    const core = await get('/api', { accept: KUBECTL_ACCEPT });
    expect(core.headers.get('content-type')).toBe(V2);
    expect(core.headers.get('vary')).toBe('Accept');
    expect(core.body).toMatchObject({ kind: 'APIGroupDiscoveryList', apiVersion: 'apidiscovery.k8s.io/v2' });
    expect(core.body.items).toHaveLength(1);
    expect(core.body.items[0].metadata).toEqual({});
    const [v1] = core.body.items[0].versions;
    expect(v1.version).toBe('v1');
    expect(v1.freshness).toBe('Current');
    const ns = v1.resources.find((r: { resource: string }) => r.resource === 'namespaces');
    expect(ns).toEqual({
      resource: 'namespaces',
      responseKind: { group: '', version: 'v1', kind: 'Namespace' },
      scope: 'Cluster',
      singularResource: 'namespace',
      verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
      shortNames: ['ns'],
      subresources: [{ subresource: 'status', responseKind: { group: '', version: 'v1', kind: 'Namespace' }, verbs: ['get', 'patch', 'update'] }],
    });
    // Events have no status.
    expect(v1.resources.find((r: { resource: string }) => r.resource === 'events').subresources).toBeUndefined();

    const named = await get('/apis', { accept: KUBECTL_ACCEPT });
    expect(named.headers.get('content-type')).toBe(V2);
    const skiff = named.body.items.find((g: { metadata: { name: string } }) => g.metadata.name === 'skiff.dev');
    const fn = skiff.versions[0].resources.find((r: { resource: string }) => r.resource === 'functions');
    expect(fn).toMatchObject({ scope: 'Namespaced', singularResource: 'function', shortNames: ['fn'], categories: ['all'], responseKind: { group: 'skiff.dev', version: 'v1', kind: 'Function' } });
    expect(fn.subresources.map((s: { subresource: string }) => s.subresource)).toEqual(['status', 'log', 'scale']);
    expect(skiff.versions[0].resources.map((r: { resource: string }) => r.resource)).not.toContain('namespaces');

    const beta = await get('/apis', { accept: `${V2BETA1},application/json` });
    expect(beta.headers.get('content-type')).toBe(V2BETA1);
    expect(beta.body.apiVersion).toBe('apidiscovery.k8s.io/v2beta1');
    expect(beta.body.items).toEqual(named.body.items);
  });

  it('revalidates with ETag and If-None-Match, per representation', async () => {
    const plain = await get('/apis');
    const agg = await get('/apis', { accept: KUBECTL_ACCEPT });
    const tag = plain.headers.get('etag')!;
    expect(tag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(agg.headers.get('etag')).not.toBe(tag);
    const again = await fetch(`${base}/apis`, { headers: { authorization: `Bearer ${TOKEN}`, 'if-none-match': tag } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    // A kind that appears changes the document, so the old tag no longer matches.
    resources.kinds.register(constraintKind('K8sRequiredLabels', () => []));
    const changed = await fetch(`${base}/apis`, { headers: { authorization: `Bearer ${TOKEN}`, 'if-none-match': tag } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(tag);
  });

  it('follows kinds as they are registered and unregistered', async () => {
    const gone = await get('/apis/constraints.gatekeeper.sh/v1beta1');
    expect(gone.status).toBe(404);
    expect(gone.body).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404 });
    resources.kinds.register(constraintKind('K8sRequiredLabels', () => []));
    const list = await get('/apis/constraints.gatekeeper.sh/v1beta1');
    expect(list.status).toBe(200);
    expect(list.body.resources[0]).toMatchObject({ name: 'k8srequiredlabels', kind: 'K8sRequiredLabels', namespaced: false, categories: ['constraint', 'constraints'] });
    const agg = await get('/apis', { accept: KUBECTL_ACCEPT });
    const group = agg.body.items.find((g: { metadata: { name: string } }) => g.metadata.name === 'constraints.gatekeeper.sh');
    expect(group.versions[0].resources[0]).toMatchObject({ resource: 'k8srequiredlabels', scope: 'Cluster', categories: ['constraint', 'constraints'] });
    expect((await get('/apis')).body.groups.map((g: { name: string }) => g.name)).toContain('constraints.gatekeeper.sh');

    resources.kinds.unregister('constraints.gatekeeper.sh', 'k8srequiredlabels');
    expect((await get('/apis/constraints.gatekeeper.sh/v1beta1')).status).toBe(404);
    expect((await get('/apis/constraints.gatekeeper.sh')).status).toBe(404);
    const after = await get('/apis', { accept: KUBECTL_ACCEPT });
    expect(after.body.items.map((g: { metadata: { name: string } }) => g.metadata.name)).not.toContain('constraints.gatekeeper.sh');
    expect((await get('/apis/constraints.gatekeeper.sh/v1beta1/k8srequiredlabels')).status).toBe(404);
  });

  it('answers unknown groups, versions and methods with a Status', async () => {
    for (const path of ['/apis/nope.example', '/apis/nope.example/v1', '/apis/skiff.dev/v2', '/api/v2']) {
      const r = await get(path);
      expect(r.status, path).toBe(404);
      expect(r.body, path).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'NotFound' });
    }
    expect((await get('/apis/nope.example/v1')).body.message).toContain('nope.example/v1');
    const post = await fetch(`${base}/apis`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
    expect(post.status).toBe(405);
    const yaml = await get('/apis', { accept: 'application/yaml' });
    expect(yaml.status).toBe(406);
    expect(yaml.body).toMatchObject({ kind: 'Status', reason: 'NotAcceptable' });
    expect(yaml.body.message).toContain('application/json');
    // Discovery needs the token like everything else.
    expect((await fetch(`${base}/api`)).status).toBe(401);
    expect((await fetch(`${base}/apis`, { headers: { accept: KUBECTL_ACCEPT } })).status).toBe(401);
  });

  it('answers HEAD with the headers and no body', async () => {
    const res = await fetch(`${base}/api/v1`, { method: 'HEAD', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(Number(res.headers.get('content-length'))).toBeGreaterThan(0);
    expect(await res.text()).toBe('');
  });
});
