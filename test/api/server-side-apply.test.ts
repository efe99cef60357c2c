import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { ApiError } from '../../src/api/errors.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import type { KindDefinition, ResourceObject } from '../../src/api/kinds/types.js';
import { pathString } from '../../src/api/patch/field-set.js';
import { ResourceService } from '../../src/api/resources.js';
import { MemoryStore } from '../../src/store/index.js';

let store: MemoryStore;
let svc: ResourceService;
let fnDef: KindDefinition;
let svcDef: KindDefinition;

beforeEach(() => {
  store = new MemoryStore();
  svc = new ResourceService(store, builtinKinds());
  fnDef = svc.kind('functions');
  svcDef = svc.kind('services');
});
afterEach(async () => {
  await store.close();
});

function fn(spec: Record<string, unknown>, meta: Record<string, unknown> = {}): ResourceObject {
  return { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'f', ...meta }, spec: { module: '/m.wasm', ...spec } };
}

const apply = (body: unknown, manager: string, extra: { force?: boolean; dryRun?: boolean; subresource?: 'status' } = {}) => svc.apply(fnDef, 'default', 'f', body, { fieldManager: manager, ...extra });

async function failure(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('expected an ApiError');
}

const entry = (o: ResourceObject, manager: string, operation = 'Apply') => (o.metadata.managedFields as Array<Record<string, unknown>>).find((e) => e.manager === manager && e.operation === operation);

describe('server-side apply', () => {
  it('creates with an Apply entry in FieldsV1 and keys Function dirs by guest', async () => {
    const out = await apply(fn({ limits: { memory: '64Mi' }, capabilities: { dirs: [{ host: '/h', guest: '/data' }] } }, { labels: { app: 'x' } }), 'kubectl');
    expect(out.created).toBe(true);
    expect(out.object.metadata.managedFields).toEqual([
      {
        manager: 'kubectl',
        operation: 'Apply',
        apiVersion: 'skiff.dev/v1',
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        fieldsType: 'FieldsV1',
        fieldsV1: {
          'f:metadata': { 'f:labels': { 'f:app': {} } },
          'f:spec': {
            'f:capabilities': { 'f:dirs': { 'k:{"guest":"/data"}': { '.': {}, 'f:guest': {}, 'f:host': {} } } },
            'f:limits': { 'f:memory': {} },
            'f:module': {},
          },
        },
      },
    ]);
  });

  it('changes nothing, not even resourceVersion, generation or the entry time, when applied again', async () => {
    const first = (await apply(fn({ limits: { memory: '64Mi' } }), 'kubectl')).object;
    const again = await apply(fn({ limits: { memory: '64Mi' } }), 'kubectl');
    expect(again.created).toBe(false);
    expect(again.object).toEqual(first);
    const dry = await apply(fn({ limits: { memory: '128Mi' } }), 'kubectl', { dryRun: true });
    expect(dry.object.spec.limits.memory).toBe('128Mi');
    expect(dry.object.metadata.resourceVersion).toBe(first.metadata.resourceVersion);
    expect((await svc.get(fnDef, 'default', 'f')).spec.limits.memory).toBe('64Mi');
  });

  it('refuses with 409 to change a field another manager set, listing each field and manager', async () => {
    await apply(fn({ limits: { memory: '64Mi', timeout: '5s' } }), 'kubectl');
    await svc.patch(fnDef, 'default', 'f', { spec: { limits: { memory: '96Mi', timeout: '6s' } } }, { fieldManager: 'kubectl-client-side-apply' });
    const one = await failure(apply(fn({ limits: { memory: '128Mi', timeout: '6s' } }), 'kubectl'));
    expect(one.httpStatus).toBe(409);
    expect(one.reason).toBe('Conflict');
    expect(one.message).toBe('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using skiff.dev/v1: .spec.limits.memory');
    expect(one.details?.causes).toEqual([{ reason: 'FieldManagerConflict', message: 'conflict with "kubectl-client-side-apply" using skiff.dev/v1', field: '.spec.limits.memory' }]);
    const two = await failure(apply(fn({ limits: { memory: '128Mi', timeout: '7s' } }), 'kubectl'));
    expect(two.message).toBe('Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using skiff.dev/v1:\n- .spec.limits.memory\n- .spec.limits.timeout');
    // Nothing was written by the refused applies.
    expect((await svc.get(fnDef, 'default', 'f')).spec.limits).toEqual({ memory: '96Mi', timeout: '6s' });
  });

  it('shares a field applied with the same value, and force takes a field over', async () => {
    await apply(fn({ limits: { memory: '64Mi' } }), 'a');
    const shared = (await apply(fn({ limits: { memory: '64Mi' } }), 'b')).object;
    expect(entry(shared, 'a')!.fieldsV1).toMatchObject({ 'f:spec': { 'f:limits': { 'f:memory': {} } } });
    expect(entry(shared, 'b')!.fieldsV1).toMatchObject({ 'f:spec': { 'f:limits': { 'f:memory': {} } } });
    expect((await failure(apply(fn({ limits: { memory: '1Gi' } }), 'b'))).message).toContain('conflict with "a": .spec.limits.memory');
    const forced = (await apply(fn({ limits: { memory: '1Gi' } }), 'b', { force: true })).object;
    expect(forced.spec.limits.memory).toBe('1Gi');
    expect(entry(forced, 'a')!.fieldsV1).toEqual({ 'f:spec': { 'f:module': {} } });
  });

  it('removes fields a manager stops applying unless another manager owns them', async () => {
    await apply(fn({ limits: { memory: '64Mi', timeout: '5s' }, env: { A: '1', B: '2' } }), 'a');
    await apply(fn({ env: { B: '2' } }), 'b');
    const out = (await apply(fn({}), 'a')).object;
    expect(out.spec).toEqual({ module: '/m.wasm', env: { B: '2' } });
    expect(entry(out, 'a')!.fieldsV1).toEqual({ 'f:spec': { 'f:module': {} } });
  });

  it('merges keyed list items by key and prunes only the items a manager dropped', async () => {
    const def = svcDef;
    const base = (endpoints: unknown[]) => ({ apiVersion: 'skiff.dev/v1', kind: 'Service', metadata: { name: 's' }, spec: { endpoints } });
    await svc.apply(def, 'default', 's', base([{ address: '10.0.0.1', port: 80 }]), { fieldManager: 'a' });
    await svc.apply(def, 'default', 's', base([{ address: '10.0.0.2', port: 80, weight: 2 }]), { fieldManager: 'b' });
    const both = await svc.get(def, 'default', 's');
    expect(both.spec.endpoints).toEqual([{ address: '10.0.0.1', port: 80 }, { address: '10.0.0.2', port: 80, weight: 2 }]);
    await svc.apply(def, 'default', 's', base([{ address: '10.0.0.2', port: 80 }]), { fieldManager: 'b' });
    expect((await svc.get(def, 'default', 's')).spec.endpoints).toEqual([{ address: '10.0.0.1', port: 80 }, { address: '10.0.0.2', port: 80 }]);
    const dup = await failure(svc.apply(def, 'default', 's', base([{ address: '10.0.0.3', port: 80 }, { address: '10.0.0.3', port: 80 }]), { fieldManager: 'a' }));
    expect(dup.httpStatus).toBe(422);
    expect(dup.message).toContain('spec.endpoints[1]');
  });

  it('places new keyed-list items where structured-merge-diff does, not at the end', async () => {
    const def = svcDef;
    const ep = (last: number) => ({ address: `10.0.0.${last}`, port: 80 });
    const base = (endpoints: unknown[]) => ({ apiVersion: 'skiff.dev/v1', kind: 'Service', metadata: { name: 's' }, spec: { endpoints } });
    const order = async () => (await svc.get(def, 'default', 's')).spec.endpoints.map((e: { address: string }) => Number(e.address.split('.')[3]));
    const A = 1, B = 2, C = 3, X = 9, Y = 8;
    // m owns A and C; n adds B, which shares nothing with what n applies, so it follows the live items.
    await svc.apply(def, 'default', 's', base([ep(A), ep(C)]), { fieldManager: 'm' });
    await svc.apply(def, 'default', 's', base([ep(B)]), { fieldManager: 'n' });
    expect(await order()).toEqual([A, C, B]);
    // A new item goes just before the next item the live list and the configuration share (C), not last.
    await svc.apply(def, 'default', 's', base([ep(A), ep(X), ep(C)]), { fieldManager: 'm' });
    expect(await order()).toEqual([A, X, C, B]);
    // Shared items follow the configuration's order; n's B keeps its place before the next configured
    // item; m's dropped X goes; the new Y lands after the last shared item.
    await svc.apply(def, 'default', 's', base([ep(C), ep(A), ep(Y)]), { fieldManager: 'm' });
    expect(await order()).toEqual([C, B, A, Y]);
    // A new item ahead of every shared one comes first.
    await svc.apply(def, 'default', 's', base([ep(X), ep(B)]), { fieldManager: 'n' });
    expect(await order()).toEqual([C, X, B, A, Y]);
  });

  it('needs a field manager and a configuration whose name matches the URL', async () => {
    expect((await failure(svc.apply(fnDef, 'default', 'f', fn({}), {}))).httpStatus).toBe(400);
    expect((await failure(svc.apply(fnDef, 'default', 'g', fn({}), { fieldManager: 'x' }))).httpStatus).toBe(400);
    expect((await failure(apply({ ...fn({}), metadata: { name: 'f', managedFields: [] } }, 'x'))).httpStatus).toBe(400);
    expect((await failure(apply({ ...fn({}), kind: 'Route' }, 'x'))).httpStatus).toBe(422);
  });

  it('assigns the fields of an object nobody managed to before-first-apply', async () => {
    await svc.create(fnDef, 'default', fn({ limits: { memory: '64Mi' } }));
    await svc.update(fnDef, 'default', 'f', { ...(await svc.get(fnDef, 'default', 'f')), metadata: { name: 'f', managedFields: [{}] } });
    expect((await svc.get(fnDef, 'default', 'f')).metadata.managedFields).toBeUndefined();
    const e = await failure(apply(fn({ limits: { memory: '1Gi' } }), 'kubectl'));
    expect(e.message).toContain('conflict with "before-first-apply" using skiff.dev/v1: .spec.limits.memory');
  });

  it('applies to the status subresource with its own managers', async () => {
    await apply(fn({}), 'kubectl');
    const out = (await apply({ ...fn({}), status: { conditions: [{ type: 'Ready', status: 'True' }] } }, 'ctl', { subresource: 'status' })).object;
    expect(out.status.conditions).toEqual([{ type: 'Ready', status: 'True' }]);
    expect(out.metadata.managedFields).toContainEqual(expect.objectContaining({ manager: 'ctl', operation: 'Apply', subresource: 'status', fieldsV1: { 'f:status': { 'f:conditions': { 'k:{"type":"Ready"}': { '.': {}, 'f:status': {}, 'f:type': {} } } } } }));
    expect(out.metadata.generation).toBe(1);
  });
});

describe('managedFields of updates and patches', () => {
  it('records an Update entry per manager, moves fields it changes, and skips writes that change nothing', async () => {
    const created = (await svc.create(fnDef, 'default', fn({ limits: { memory: '64Mi' } }), { fieldManager: 'kubectl-create' })).object;
    expect(entry(created, 'kubectl-create', 'Update')!.fieldsV1).toEqual({ 'f:spec': { 'f:limits': { 'f:memory': {} }, 'f:module': {} } });
    const patched = (await svc.patch(fnDef, 'default', 'f', [{ op: 'replace', path: '/spec/limits/memory', value: '1Gi' }], { type: 'json', fieldManager: 'kubectl-patch' })).object;
    expect(entry(patched, 'kubectl-patch', 'Update')!.fieldsV1).toEqual({ 'f:spec': { 'f:limits': { 'f:memory': {} } } });
    expect(entry(patched, 'kubectl-create', 'Update')!.fieldsV1).toEqual({ 'f:spec': { 'f:module': {} } });
    expect(patched.metadata.generation).toBe(2);
    const same = (await svc.update(fnDef, 'default', 'f', patched, { fieldManager: 'kubectl-replace' })).object;
    expect(same).toEqual(patched);
    const merged = (await svc.patch(fnDef, 'default', 'f', { spec: { limits: { memory: '1Gi' } } }, { type: 'strategic', fieldManager: 'other' })).object;
    expect(merged.metadata.resourceVersion).toBe(patched.metadata.resourceVersion);
  });

  it('answers a stale resourceVersion with kube message', async () => {
    const created = (await svc.create(fnDef, 'default', fn({}))).object;
    await svc.patch(fnDef, 'default', 'f', { spec: { limits: { memory: '1Gi' } } });
    const e = await failure(svc.update(fnDef, 'default', 'f', created));
    expect(e.httpStatus).toBe(409);
    expect(e.message).toBe('Operation cannot be fulfilled on functions.skiff.dev "f": the object has been modified; please apply your changes to the latest version and try again');
  });

  it('keeps at most ten Update entries, folding the oldest into ancient-changes', async () => {
    await svc.create(fnDef, 'default', fn({}), { fieldManager: 'm0' });
    for (let i = 1; i <= 12; i++) await svc.patch(fnDef, 'default', 'f', { metadata: { labels: { [`k${i}`]: 'v' } } }, { fieldManager: `m${i}` });
    const mf = (await svc.get(fnDef, 'default', 'f')).metadata.managedFields as Array<{ manager: string; operation: string; fieldsV1: unknown }>;
    expect(mf.filter((e) => e.operation === 'Update')).toHaveLength(10);
    const ancient = mf.find((e) => e.manager === 'ancient-changes')!;
    expect(ancient.fieldsV1).toMatchObject({ 'f:spec': { 'f:module': {} } });
    expect(mf.some((e) => e.manager === 'm12')).toBe(true);
  });

  it('spells paths as kube does in conflicts', () => {
    expect(pathString(['f:spec', 'f:capabilities', 'f:dirs', 'k:{"guest":"/d"}', 'f:readOnly'])).toBe('.spec.capabilities.dirs[guest="/d"].readOnly');
    expect(pathString(['f:spec', 'f:endpoints', 'k:{"address":"a","port":80}'])).toBe('.spec.endpoints[address="a",port=80]');
    expect(pathString(['f:metadata', 'f:finalizers', 'v:"x"'])).toBe('.metadata.finalizers[="x"]');
  });
});
