import pino from 'pino';
import { describe, expect,it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import type { KindDefinition } from '../../src/api/kinds/types.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { MemoryStore } from '../../src/store/index.js';

const widget: KindDefinition = {
  group: 'example.test',
  version: 'v1alpha1',
  kind: 'Widget',
  plural: 'widgets',
  singular: 'widget',
  namespaced: true,
  specSchema: { type: 'object', required: ['size'], properties: { size: { type: 'integer' } } },
  printerColumns: [{ name: 'SIZE', jsonPath: '.spec.size', value: (o) => String(o.spec?.size) }],
};

describe('kinds of other API groups, registered at run time', () => {
  it('are served, discovered and validated as soon as they are registered, and gone once unregistered', async () => {
    const store = new MemoryStore();
    const resources = new ResourceService(store, builtinKinds());
    const server = new ApiServer({ resources, logger: pino({ level: 'silent' }), version: 't', token: 'tok' });
    const headers = { authorization: 'Bearer tok' };
    const { port } = await server.listen('127.0.0.1', 0);
    const base = `http://127.0.0.1:${port}`;
    const url = `${base}/apis/example.test/v1alpha1/namespaces/default/widgets`;
    const post = (body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    try {
      expect((await post({ apiVersion: 'example.test/v1alpha1', kind: 'Widget', metadata: { name: 'w' }, spec: { size: 1 } })).status).toBe(404);
      resources.kinds.register(widget);
      const groups = (await (await fetch(`${base}/apis`, { headers })).json()) as { groups: Array<{ name: string }> };
      expect(groups.groups.map((g) => g.name)).toEqual(expect.arrayContaining(['skiff.dev', 'example.test']));
      const disc = (await (await fetch(`${base}/apis/example.test/v1alpha1`, { headers })).json()) as { resources: Array<{ name: string; columns: unknown[] }> };
      expect(disc.resources).toEqual([expect.objectContaining({ name: 'widgets', columns: [{ name: 'SIZE', wide: false, jsonPath: '.spec.size' }] }), expect.objectContaining({ name: 'widgets/status', kind: 'Widget' })]);
      const created = await post({ apiVersion: 'example.test/v1alpha1', kind: 'Widget', metadata: { name: 'w' }, spec: { size: 1 } });
      expect(created.status).toBe(201);
      const wrongVersion = await post({ apiVersion: 'skiff.dev/v1', kind: 'Widget', metadata: { name: 'x' }, spec: { size: 'big' } });
      expect(wrongVersion.status).toBe(422);
      const causes = ((await wrongVersion.json()) as { details: { causes: Array<{ field: string }> } }).details.causes.map((c) => c.field);
      expect(causes).toEqual(expect.arrayContaining(['apiVersion', 'spec.size']));
      // Same plural in Skiff's own group is a different collection.
      expect((await fetch(`${base}/apis/skiff.dev/v1/namespaces/default/widgets`, { headers })).status).toBe(404);
      resources.kinds.unregister('example.test', 'widgets');
      expect((await fetch(url, { headers })).status).toBe(404);
    } finally {
      await server.close();
      await store.close();
    }
  });
});
