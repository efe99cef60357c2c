import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { builtinKinds, KindRegistry } from '../../src/api/kinds/index.js';
import type { KindDefinition } from '../../src/api/kinds/types.js';
import { keyOf, ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { MemoryStore } from '../../src/store/index.js';

const TOKEN = 'tok';
const CONTROLLER = 'ctl';

describe('the core group: Namespace and Event under /api/v1', () => {
  let store: MemoryStore;
  let resources: ResourceService;
  let server: ApiServer;
  let base: string;
  const call = async (method: string, path: string, body?: unknown, token = TOKEN) => {
    const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const event = (name: string, ns: string, apiVersion = 'v1') => ({ apiVersion, kind: 'Event', metadata: { name, namespace: ns }, involvedObject: { kind: 'Function', name: 'f', namespace: ns }, reason: 'Test', message: `about ${name}`, type: 'Normal' });

  beforeEach(async () => {
    store = new MemoryStore();
    resources = new ResourceService(store, builtinKinds());
    server = new ApiServer({ resources, logger: pino({ level: 'silent' }), version: 't', token: TOKEN, controllerToken: CONTROLLER });
    base = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
  });
  afterEach(async () => {
    await server.close();
    await store.close();
  });

  it('serves Namespaces at /api/v1 as v1 objects, and at the old skiff.dev/v1 paths as the same objects', async () => {
    const created = await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } });
    expect(created.status).toBe(201);
    expect(created.body.apiVersion).toBe('v1');
    // The old path and the old apiVersion reach the same object, which comes back as v1.
    const old = await call('GET', '/apis/skiff.dev/v1/namespaces/team-a');
    expect(old.body).toEqual(created.body);
    const legacy = await call('POST', '/apis/skiff.dev/v1/namespaces', { apiVersion: 'skiff.dev/v1', kind: 'Namespace', metadata: { name: 'team-b' } });
    expect(legacy.status).toBe(201);
    expect(legacy.body.apiVersion).toBe('v1');
    expect((await call('POST', '/api/v1/namespaces', { apiVersion: 'skiff.dev/v1', kind: 'Namespace', metadata: { name: 'team-a' } })).status).toBe(409);
    const list = await call('GET', '/api/v1/namespaces');
    expect(list.body).toMatchObject({ apiVersion: 'v1', kind: 'NamespaceList' });
    expect(list.body.items.map((n: { metadata: { name: string }; apiVersion: string }) => `${n.apiVersion}/${n.metadata.name}`)).toEqual(['v1/team-a', 'v1/team-b']);
    // Same store keys as before the move.
    expect(keyOf(resources.kind('Namespace'), undefined, 'team-a')).toBe('/registry/namespaces/team-a');
    expect(await store.get('/registry/namespaces/team-b')).toBeDefined();
    // Any other apiVersion is still refused, naming the one to use.
    const wrong = await call('POST', '/api/v1/namespaces', { apiVersion: 'example.test/v1', kind: 'Namespace', metadata: { name: 'x' } });
    expect(wrong.status).toBe(422);
    expect(wrong.body.message).toContain('use v1');
  });

  it('reads objects stored as skiff.dev/v1 before the move as v1, in gets, lists and watches', async () => {
    const stored = { apiVersion: 'skiff.dev/v1', kind: 'Namespace', metadata: { name: 'old', uid: 'u1', generation: 1, creationTimestamp: '2024-01-01T00:00:00Z' } };
    await store.put('/registry/namespaces/old', JSON.stringify(stored));
    await store.put('/registry/events/default/old-ev', JSON.stringify({ ...event('old-ev', 'default', 'skiff.dev/v1'), metadata: { name: 'old-ev', namespace: 'default', uid: 'u2', generation: 1 } }));
    expect((await call('GET', '/api/v1/namespaces/old')).body).toMatchObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'old' } });
    expect((await call('GET', '/apis/skiff.dev/v1/namespaces/old')).body.apiVersion).toBe('v1');
    expect((await call('GET', '/api/v1/events')).body.items).toEqual([expect.objectContaining({ apiVersion: 'v1', metadata: expect.objectContaining({ name: 'old-ev' }) })]);
    const watch = await fetch(`${base}/api/v1/namespaces?watch=true&timeoutSeconds=1`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const first = JSON.parse((await watch.text()).split('\n')[0]!);
    expect(first).toMatchObject({ type: 'ADDED', object: { apiVersion: 'v1', metadata: { name: 'old' } } });
    // An update of such an object keeps it and stores the new apiVersion; the spec-less kind's generation is unchanged.
    const got = (await call('GET', '/api/v1/namespaces/old')).body;
    const upd = await call('PUT', '/api/v1/namespaces/old', { ...got, metadata: { ...got.metadata, labels: { a: 'b' } } });
    expect(upd.status).toBe(200);
    expect(upd.body.metadata.generation).toBe(1);
    expect(JSON.parse((await store.get('/registry/namespaces/old'))!.value).apiVersion).toBe('v1');
  });

  it('serves Events per namespace and across namespaces, under both paths', async () => {
    expect((await call('POST', '/api/v1/namespaces/default/events', event('e1', 'default'))).status).toBe(201);
    expect((await call('POST', '/apis/skiff.dev/v1/namespaces/other/events', event('e2', 'other', 'skiff.dev/v1'))).status).toBe(201);
    expect((await call('GET', '/api/v1/namespaces/other/events/e2')).body).toMatchObject({ apiVersion: 'v1', kind: 'Event', message: 'about e2' });
    const all = await call('GET', '/api/v1/events');
    expect(all.body.kind).toBe('EventList');
    expect(all.body.items.map((e: { metadata: { namespace: string; name: string } }) => `${e.metadata.namespace}/${e.metadata.name}`)).toEqual(['default/e1', 'other/e2']);
    expect((await call('GET', '/api/v1/namespaces/default/events')).body.items).toHaveLength(1);
    expect((await call('GET', '/apis/skiff.dev/v1/events')).body.items).toHaveLength(2);
    // Events have no status subresource; a namespaced kind is not reachable without its namespace.
    const status = await call('PUT', '/api/v1/namespaces/default/events/e1/status', event('e1', 'default'), CONTROLLER);
    expect(status.status).toBe(404);
    expect(status.body.message).toContain('no subresource "status"');
    expect((await call('GET', '/api/v1/events/e1')).body.message).toContain('/api/v1/namespaces/NAMESPACE/events/e1');
    // Skiff's other kinds are not in the core group.
    const fn = await call('GET', '/api/v1/namespaces/default/functions');
    expect(fn.status).toBe(404);
    expect(fn.body.message).toContain('known types: namespaces, events');
  });

  it("serves a Namespace's status subresource", async () => {
    await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } });
    expect((await call('GET', '/api/v1/namespaces/team-a/status')).body.metadata.name).toBe('team-a');
    const put = await call('PUT', '/api/v1/namespaces/team-a/status', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' }, status: { phase: 'Active' } }, CONTROLLER);
    expect(put.status).toBe(200);
    expect(put.body.status).toEqual({ phase: 'Active' });
  });

  it('deletes a collection by label selector (deletecollection)', async () => {
    for (const [name, tier] of [['a', 'web'], ['b', 'web'], ['c', 'db']] as const) {
      await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { tier } } });
    }
    const dry = await call('DELETE', '/api/v1/namespaces?labelSelector=tier%3Dweb&dryRun=All');
    expect(dry.body.items).toHaveLength(2);
    expect((await call('GET', '/api/v1/namespaces')).body.items).toHaveLength(3);
    const del = await call('DELETE', '/api/v1/namespaces?labelSelector=tier%3Dweb');
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ apiVersion: 'v1', kind: 'NamespaceList' });
    expect(del.body.items.map((n: { metadata: { name: string } }) => n.metadata.name)).toEqual(['a', 'b']);
    expect((await call('GET', '/api/v1/namespaces')).body.items.map((n: { metadata: { name: string } }) => n.metadata.name)).toEqual(['c']);
    expect((await call('DELETE', '/api/v1/namespaces?labelSelector=%3D%3D')).status).toBe(400);
    // A namespaced kind: per namespace only.
    await call('POST', '/api/v1/namespaces/default/events', event('e1', 'default'));
    await call('POST', '/api/v1/namespaces/c/events', event('e2', 'c'));
    expect((await call('DELETE', '/api/v1/events')).status).toBe(405);
    expect((await call('DELETE', '/api/v1/namespaces/default/events')).body.items.map((e: { metadata: { name: string } }) => e.metadata.name)).toEqual(['e1']);
    expect((await call('GET', '/api/v1/events')).body.items.map((e: { metadata: { name: string } }) => e.metadata.name)).toEqual(['e2']);
  });
});

describe('KindRegistry legacy aliases', () => {
  const kinds = builtinKinds();

  it('finds Namespace and Event under their legacy apiVersion and group, and lists them under the core group only', () => {
    expect(kinds.byApiVersionKind('skiff.dev/v1', 'Namespace')).toBe(kinds.byApiVersionKind('v1', 'Namespace'));
    expect(kinds.byApiVersionKind('skiff.dev/v1', 'Event')?.group).toBe('');
    expect(kinds.byPluralName('namespaces')?.kind).toBe('Namespace');
    expect(kinds.byPluralName('namespaces', '')?.kind).toBe('Namespace');
    expect(kinds.lookup('ev')?.kind).toBe('Event');
    expect(kinds.servedAt('skiff.dev', 'v1').map((k) => k.plural)).toEqual(expect.arrayContaining(['functions', 'namespaces', 'events']));
    expect(kinds.inGroupVersion('skiff.dev', 'v1').map((k) => k.plural)).not.toContain('namespaces');
    expect(kinds.groupVersions()).toEqual(expect.arrayContaining([{ group: '', version: 'v1' }, { group: 'skiff.dev', version: 'v1' }]));
    expect(kinds.serves('skiff.dev', 'v1')).toBe(true);
    expect(kinds.serves('', 'v2')).toBe(false);
  });

  it('refuses a kind that would shadow a legacy alias, and an alias that is taken', () => {
    const reg = builtinKinds();
    const shadow: KindDefinition = { kind: 'Namespace', plural: 'namespaces', singular: 'namespace', namespaced: false, specSchema: {}, printerColumns: [] };
    expect(() => reg.register(shadow)).toThrow(/legacy alias/);
    const aliasTaken: KindDefinition = { group: '', kind: 'Thing', plural: 'functions', singular: 'thing', namespaced: true, specSchema: {}, printerColumns: [], legacyApiVersions: ['skiff.dev/v1'] };
    expect(() => reg.register(aliasTaken)).toThrow(/is taken/);
  });

  it('drops the alias with its kind', () => {
    const reg = new KindRegistry();
    const def: KindDefinition = { group: '', kind: 'Thing', plural: 'things', singular: 'thing', namespaced: true, specSchema: {}, printerColumns: [], legacyApiVersions: ['old.example/v1'] };
    reg.register(def);
    expect(reg.byPluralName('things', 'old.example')).toBe(def);
    reg.unregister('', 'things');
    expect(reg.byPluralName('things', 'old.example')).toBeUndefined();
    expect(reg.serves('old.example', 'v1')).toBe(false);
  });
});
