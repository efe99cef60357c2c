import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { CustomObjectsApi, KubeConfig, type KubernetesListObject, type KubernetesObject, makeInformer, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { apiFetch, REPO, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';

/**
 * The official JavaScript client, @kubernetes/client-node, drives Skiff through nothing but the
 * kubeconfig `skiff up` writes: list, an informer's list + watch, create, server-side apply, delete.
 */

interface Fn extends KubernetesObject {
  spec: { module: string; limits?: { memory?: string } };
  status?: { digest?: string };
}

const FUNCTIONS = { group: 'skiff.dev', version: 'v1', namespace: 'default', plural: 'functions' } as const;

let s: RunningSkiff;
let kc: KubeConfig;
let api: CustomObjectsApi;
let moduleRef: string;

const fn = (name: string, labels: Record<string, string> = {}): Fn => ({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name, labels }, spec: { module: moduleRef } });
const list = async () => (await api.listNamespacedCustomObject(FUNCTIONS)) as KubernetesListObject<Fn>;

beforeAll(async () => {
  s = await startSkiff();
  const wasm = readFileSync(join(REPO, 'examples', 'hello', 'hello.wasm'));
  const hex = createHash('sha256').update(wasm).digest('hex');
  expect((await apiFetch(s, `/blobs/sha256/${hex}`, { method: 'PUT', headers: { 'content-type': 'application/wasm' }, body: wasm })).status).toBeLessThan(300);
  moduleRef = `blob:sha256:${hex}`;
  kc = new KubeConfig();
  kc.loadFromFile(join(s.dataDir, 'kubeconfig'));
  api = kc.makeApiClient(CustomObjectsApi);
});
afterAll(async () => {
  await s?.stop();
});

describe('@kubernetes/client-node through the kubeconfig', () => {
  it('loads the kubeconfig: context skiff, the HTTPS server, a bearer token', () => {
    expect(kc.getCurrentContext()).toBe('skiff');
    expect(kc.getCurrentCluster()?.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(kc.getCurrentUser()?.token).toBe(s.token);
  });

  it('creates, lists and deletes Functions with CustomObjectsApi', async () => {
    const created = (await api.createNamespacedCustomObject({ ...FUNCTIONS, body: fn('cn-plain', { app: 'cn' }) })) as Fn;
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect((await list()).items.map((i) => i.metadata?.name)).toContain('cn-plain');
    const selected = (await api.listNamespacedCustomObject({ ...FUNCTIONS, labelSelector: 'app=cn' })) as KubernetesListObject<Fn>;
    expect(selected.items.map((i) => i.metadata?.name)).toEqual(['cn-plain']);
    await api.deleteNamespacedCustomObject({ ...FUNCTIONS, name: 'cn-plain' });
    await expect(api.getNamespacedCustomObject({ ...FUNCTIONS, name: 'cn-plain' })).rejects.toMatchObject({ code: 404 });
  });

  it('an informer sees ADD, UPDATE and DELETE while the client creates, server-side applies and deletes', async () => {
    const seen: string[] = [];
    const informer = makeInformer<Fn>(kc, '/apis/skiff.dev/v1/namespaces/default/functions', list);
    const errors: unknown[] = [];
    informer.on('add', (o) => seen.push(`add ${o.metadata?.name}`));
    informer.on('update', (o) => seen.push(`update ${o.metadata?.name} ${o.spec.limits?.memory ?? '-'}`));
    informer.on('delete', (o) => seen.push(`delete ${o.metadata?.name}`));
    informer.on('error', (e) => errors.push(e));
    await informer.start();
    try {
      const apply = (body: Fn) =>
        api.patchNamespacedCustomObject({ ...FUNCTIONS, name: body.metadata!.name!, body, fieldManager: 'client-node-test', force: true }, setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply));
      // Server-side apply creates the object when there is none yet.
      const first = (await apply(fn('cn-informed'))) as Fn;
      expect(first.metadata?.name).toBe('cn-informed');
      await waitFor(() => seen.includes('add cn-informed'), 'the informer ADD');
      await waitFor(() => informer.get('cn-informed', 'default')?.status?.digest, 'the controller status in the cache', 15_000);

      const applied = (await apply({ ...fn('cn-informed'), spec: { module: moduleRef, limits: { memory: '24Mi' } } })) as Fn;
      expect(applied.spec.limits?.memory).toBe('24Mi');
      await waitFor(() => seen.includes('update cn-informed 24Mi'), 'the informer UPDATE after server-side apply');
      expect(informer.get('cn-informed', 'default')?.spec.limits?.memory).toBe('24Mi');

      await api.deleteNamespacedCustomObject({ ...FUNCTIONS, name: 'cn-informed' });
      await waitFor(() => seen.includes('delete cn-informed'), 'the informer DELETE');
      expect(informer.get('cn-informed', 'default')).toBeUndefined();
      expect(informer.list('default').map((o) => o.metadata?.name)).not.toContain('cn-informed');
      expect(errors).toEqual([]);
    } finally {
      await informer.stop();
    }
    expect(seen.indexOf('add cn-informed')).toBeLessThan(seen.indexOf('update cn-informed 24Mi'));
    expect(seen.at(-1)).toBe('delete cn-informed');
  });

  it('surfaces a refusal as an ApiException with the Status', async () => {
    const bad = { ...fn('cn-bad'), spec: { module: moduleRef, limits: { memory: 'lots' } } };
    const err = await api.createNamespacedCustomObject({ ...FUNCTIONS, body: bad }).then(
      () => undefined,
      (e: { code: number; body: string }) => e,
    );
    expect(err?.code).toBe(422);
    expect(JSON.parse(err!.body)).toMatchObject({ kind: 'Status', reason: 'Invalid' });
  });
});
