import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { builtinKinds, targetsColumn } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { MemoryStore } from '../../src/store/index.js';
import { parseQuantity } from '../../src/util/quantity.js';

const logger = pino({ level: 'silent' });
const HPA = '/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers';
const TOKEN = 'user-token';
const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io';

 
function hpa(name: string, spec: Record<string, any> = {}) {
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name },
    spec: {
      scaleTargetRef: { apiVersion: 'skiff.dev/v1', kind: 'Function', name: 'api' },
      minReplicas: 1,
      maxReplicas: 10,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }],
      ...spec,
    },
  };
}

describe('the HorizontalPodAutoscaler kind', () => {
  let store: MemoryStore;
  let server: ApiServer;
  let base: string;
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(base + path, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const causes = (r: { body: { details?: { causes?: Array<{ field: string }> } } }) => (r.body.details?.causes ?? []).map((c) => c.field);

  beforeEach(async () => {
    store = new MemoryStore();
    server = new ApiServer({ resources: new ResourceService(store, builtinKinds()), logger, version: 'test', token: TOKEN, controllerToken: 'ctl' });
    base = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
  });
  afterEach(async () => {
    await server.close();
    await store.close();
  });

  it('is served at /apis/autoscaling/v2 and listed by discovery with the short name hpa', async () => {
    const groups = (await call('GET', '/apis')).body;
    expect(groups.groups.find((g: { name: string }) => g.name === 'autoscaling')).toMatchObject({ preferredVersion: { groupVersion: 'autoscaling/v2', version: 'v2' } });
    const list = (await call('GET', '/apis/autoscaling/v2')).body;
    expect(list.resources[0]).toMatchObject({ name: 'horizontalpodautoscalers', kind: 'HorizontalPodAutoscaler', namespaced: true, shortNames: ['hpa'] });
    expect(list.resources.map((r: { name: string }) => r.name)).toEqual(['horizontalpodautoscalers', 'horizontalpodautoscalers/status']);
  });

  it('stores a stock autoscaling/v2 manifest with every metric type and behavior', async () => {
    const full = hpa('full', {
      minReplicas: 0,
      metrics: [
        { type: 'Resource', resource: { name: 'memory', target: { type: 'AverageValue', averageValue: '256Mi' } } },
        { type: 'Pods', pods: { metric: { name: 'skiff_function_inflight' }, target: { type: 'AverageValue', averageValue: '500m' } } },
        { type: 'Object', object: { describedObject: { apiVersion: 'skiff.dev/v1', kind: 'Route', name: 'web' }, metric: { name: 'skiff_gateway_requests_total' }, target: { type: 'Value', value: '2k' } } },
        { type: 'External', external: { metric: { name: 'queue_depth', selector: { matchLabels: { queue: 'jobs' } } }, target: { type: 'AverageValue', averageValue: 30 } } },
      ],
      behavior: {
        scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] },
        scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }, { type: 'Pods', value: 4, periodSeconds: 15 }] },
      },
    });
    const r = await call('POST', `${HPA}?fieldValidation=Strict`, full);
    expect(r.status).toBe(201);
    expect(r.body.spec).toEqual(full.spec);
    expect((await call('GET', `${HPA}/full`)).body.metadata.name).toBe('full');
  });

  it('refuses a target other than a skiff.dev/v1 Function, naming the field', async () => {
    const r = await call('POST', HPA, hpa('d', { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' } }));
    expect(r.status).toBe(422);
    expect(causes(r)).toEqual(['spec.scaleTargetRef.kind', 'spec.scaleTargetRef.apiVersion']);
    expect(r.body.message).toContain('Function');
  });

  it('checks replicas bounds, members per metric type, target types and quantities', async () => {
    const bounds = await call('POST', HPA, hpa('b', { minReplicas: 5, maxReplicas: 3 }));
    expect(bounds.status).toBe(422);
    expect(causes(bounds)).toEqual(['spec.maxReplicas']);
    expect((await call('POST', HPA, hpa('z', { maxReplicas: 0 }))).status).toBe(422);
    const defaultMin = await call('POST', HPA, hpa('m', { minReplicas: undefined, maxReplicas: 1 }));
    expect(defaultMin.status).toBe(201);

    const bad = await call(
      'POST',
      HPA,
      hpa('bad', {
        metrics: [
          { type: 'Pods', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } },
          { type: 'Pods', pods: { metric: { name: 'x' }, target: { type: 'Value', value: '1' } } },
          { type: 'Resource', resource: { name: 'gpu', target: { type: 'Utilization' } } },
          { type: 'External', external: { metric: { name: 'q' }, target: { type: 'Value', value: 'lots' } } },
          { type: 'Object', object: { describedObject: { kind: 'Route', name: 'r' }, metric: { name: 'm' }, target: { type: 'Utilization', averageUtilization: 3 } } },
          { type: 'ContainerResource', containerResource: { name: 'cpu', container: 'app', target: { type: 'Utilization', averageUtilization: 60 } } },
        ],
      }),
    );
    expect(bad.status).toBe(422);
    expect(causes(bad)).toEqual([
      'spec.metrics[0].resource',
      'spec.metrics[0].pods',
      'spec.metrics[1].pods.target.type',
      'spec.metrics[2].resource.name',
      'spec.metrics[2].resource.target.averageUtilization',
      'spec.metrics[3].external.target.value',
      'spec.metrics[4].object.target.type',
      'spec.metrics[5].type',
    ]);
    const schema = await call('POST', HPA, hpa('s', { metrics: [{ type: 'Cpu' }], behavior: { scaleUp: { policies: [{ type: 'Pods', value: 0, periodSeconds: 15 }] } } }));
    expect(schema.status).toBe(422);
    expect(schema.body.message).toMatch(/spec\.metrics\[0\]\.type/);
    expect(schema.body.message).toMatch(/spec\.behavior\.scaleUp\.policies\[0\]\.value/);
  });

  it('prints REFERENCE, TARGETS, MINPODS, MAXPODS, REPLICAS and AGE as kubectl does', async () => {
    await call('POST', HPA, hpa('web'));
    const t = (await call('GET', HPA, undefined, { accept: TABLE })).body;
    expect(t.columnDefinitions.map((c: { name: string }) => c.name)).toEqual(['NAME', 'REFERENCE', 'TARGETS', 'MINPODS', 'MAXPODS', 'REPLICAS', 'AGE']);
    expect(t.rows[0].cells.slice(0, 6)).toEqual(['web', 'Function/api', 'cpu: <unknown>/50%', 1, 10, 0]);

    const o = hpa('x', {
      metrics: [
        { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } },
        { type: 'External', external: { metric: { name: 'q' }, target: { type: 'AverageValue', averageValue: '30' } } },
        { type: 'Pods', pods: { metric: { name: 'p' }, target: { type: 'AverageValue', averageValue: '1' } } },
      ],
    });
    const withStatus = { ...o, metadata: { ...o.metadata, creationTimestamp: new Date().toISOString() }, status: { currentMetrics: [{ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: 31 } } }, { type: 'External', external: { metric: { name: 'q' }, current: { averageValue: '12' } } }] } };
    expect(targetsColumn(withStatus)).toBe('cpu: 31%/50%, 12/30 (avg) + 1 more...');
    expect(targetsColumn({ ...o, spec: { ...o.spec, metrics: [] } })).toBe('<none>');
  });

  it('parses Kubernetes quantities for metric targets', () => {
    expect([parseQuantity('100m'), parseQuantity('2'), parseQuantity('1.5k'), parseQuantity('512Mi'), parseQuantity('5e3'), parseQuantity('.5'), parseQuantity(7)]).toEqual([0.1, 2, 1500, 512 * 2 ** 20, 5000, 0.5, 7]);
    for (const bad of ['', 'm', '1 m', '1mi', '1.2.3', 'ten', '1Ki2']) expect(parseQuantity(bad), bad).toBeUndefined();
  });
});

