import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { AdmissionRequest } from '../../src/api/admission.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { scaleOf } from '../../src/api/scale.js';
import { ApiServer } from '../../src/api/server.js';
import { MemoryStore } from '../../src/store/index.js';

const logger = pino({ level: 'silent' });
const FN = '/apis/skiff.dev/v1/namespaces/default/functions';
const TOKEN = 'user-token';
const CONTROLLER = 'ctl-token';

function fn(name: string, spec: Record<string, unknown> = {}) {
  return { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name }, spec: { module: '/m.wasm', ...spec } };
}

describe('the scale subresource of Functions', () => {
  let store: MemoryStore;
  let server: ApiServer;
  let resources: ResourceService;
  let base: string;
  const admitted: AdmissionRequest[] = [];
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}, token = TOKEN) => {
    const res = await fetch(base + path, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const merge = { 'content-type': 'application/merge-patch+json' };

  beforeEach(async () => {
    admitted.length = 0;
    store = new MemoryStore();
    resources = new ResourceService(store, builtinKinds());
    resources.addAdmissionHook({ name: 'record', admit: async (req) => { admitted.push(req); return { allowed: true }; } });
    server = new ApiServer({ resources, logger, version: 'test', token: TOKEN, controllerToken: CONTROLLER });
    base = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
  });
  afterEach(async () => {
    await server.close();
    await store.close();
  });

  it('reads a Scale derived from the Function: spec.replicas, else desired, else running', async () => {
    const created = (await call('POST', FN, fn('a'))).body;
    const s0 = await call('GET', `${FN}/a/scale`);
    expect(s0.status).toBe(200);
    expect(s0.body).toEqual({
      apiVersion: 'autoscaling/v1',
      kind: 'Scale',
      metadata: { name: 'a', namespace: 'default', uid: created.metadata.uid, resourceVersion: created.metadata.resourceVersion, creationTimestamp: created.metadata.creationTimestamp },
      spec: { replicas: 0 },
      status: { replicas: 0, selector: 'skiff.dev/function=a' },
    });
    const st = await call('PUT', `${FN}/a/status`, { ...created, status: { replicas: 2, readyReplicas: 1 } }, {}, CONTROLLER);
    expect(st.status).toBe(200);
    expect((await call('GET', `${FN}/a/scale`)).body).toMatchObject({ spec: { replicas: 2 }, status: { replicas: 2 } });
    await call('PATCH', `${FN}/a/status`, { status: { desiredReplicas: 4 } }, merge, CONTROLLER);
    expect((await call('GET', `${FN}/a/scale`)).body).toMatchObject({ spec: { replicas: 4 }, status: { replicas: 2 } });
    expect(scaleOf({ ...created, spec: { replicas: 7 }, status: { desiredReplicas: 4 } }).spec.replicas).toBe(7);
  });

  it('writes spec.replicas with a merge, strategic or JSON patch and a PUT, through admission, bumping the generation', async () => {
    await call('POST', FN, fn('a'));
    const p1 = await call('PATCH', `${FN}/a/scale`, { spec: { replicas: 3 } }, merge);
    expect(p1.status).toBe(200);
    expect(p1.body).toMatchObject({ kind: 'Scale', spec: { replicas: 3 } });
    let f = (await call('GET', `${FN}/a`)).body;
    expect(f.spec.replicas).toBe(3);
    expect(f.metadata.generation).toBe(2);
    expect(p1.body.metadata.resourceVersion).toBe(f.metadata.resourceVersion);
    expect(admitted.at(-1)).toMatchObject({ operation: 'UPDATE' });

    const p2 = await call('PATCH', `${FN}/a/scale`, { spec: { replicas: 5 } }, { 'content-type': 'application/strategic-merge-patch+json' });
    expect(p2.body.spec.replicas).toBe(5);
    const p3 = await call('PATCH', `${FN}/a/scale`, [{ op: 'replace', path: '/spec/replicas', value: 0 }], { 'content-type': 'application/json-patch+json' });
    expect(p3.status).toBe(200);
    expect(p3.body.spec.replicas).toBe(0);

    const scale = (await call('GET', `${FN}/a/scale`)).body;
    const put = await call('PUT', `${FN}/a/scale`, { ...scale, spec: { replicas: 2 } });
    expect(put.status).toBe(200);
    f = (await call('GET', `${FN}/a`)).body;
    expect(f.spec).toEqual({ module: '/m.wasm', replicas: 2 });
    expect(f.metadata.generation).toBe(5);
  });

  it('reads a PUT without Content-Type as JSON, as client-go\'s scale client sends it', async () => {
    await call('POST', FN, fn('a'));
    const scale = (await call('GET', `${FN}/a/scale`)).body;
    const res = await fetch(`${base}${FN}/a/scale`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: new Blob([JSON.stringify({ ...scale, spec: { replicas: 6 } })]) });
    expect(res.status).toBe(200);
    expect((await call('GET', `${FN}/a`)).body.spec.replicas).toBe(6);
    // Everywhere else a body still needs its media type.
    const other = await fetch(`${base}${FN}/a`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: new Blob(['{}']) });
    expect(other.status).toBe(415);
  });

  it('refuses a stale resourceVersion in a PUT with 409 and leaves the Function alone', async () => {
    await call('POST', FN, fn('a'));
    const stale = (await call('GET', `${FN}/a/scale`)).body;
    await call('PATCH', `${FN}/a`, { metadata: { labels: { x: 'y' } } }, merge);
    const put = await call('PUT', `${FN}/a/scale`, { ...stale, spec: { replicas: 4 } });
    expect(put.status).toBe(409);
    expect(put.body.reason).toBe('Conflict');
    expect((await call('GET', `${FN}/a`)).body.spec.replicas).toBeUndefined();
  });

  it('answers 422 naming spec.replicas for a negative, fractional or missing count', async () => {
    await call('POST', FN, fn('a'));
    for (const replicas of [-1, 1.5, '3']) {
      const r = await call('PATCH', `${FN}/a/scale`, { spec: { replicas } }, merge);
      expect(r.status).toBe(422);
      expect(r.body.details.causes[0].field).toBe('spec.replicas');
    }
    const put = await call('PUT', `${FN}/a/scale`, { apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name: 'a' }, spec: {} });
    expect(put.status).toBe(422);
    expect(put.body.message).toContain('spec.replicas');
    // The Function's own schema refuses the same values when written directly.
    const direct = await call('PATCH', `${FN}/a`, { spec: { replicas: -2 } }, merge);
    expect(direct.status).toBe(422);
    expect(direct.body.message).toContain('spec.replicas');
  });

  it('answers dry runs without storing, 404 for a missing Function and for kinds without scale, and needs the token', async () => {
    await call('POST', FN, fn('a'));
    const dry = await call('PATCH', `${FN}/a/scale?dryRun=All`, { spec: { replicas: 9 } }, merge);
    expect(dry.body.spec.replicas).toBe(9);
    expect((await call('GET', `${FN}/a`)).body.spec.replicas).toBeUndefined();
    expect((await call('GET', `${FN}/nope/scale`)).status).toBe(404);
    expect((await call('GET', '/apis/skiff.dev/v1/namespaces/default/routes/r/scale')).status).toBe(404);
    expect((await call('GET', `${FN}/a/scale`, undefined, {}, 'wrong')).status).toBe(401);
    expect((await call('DELETE', `${FN}/a/scale`)).status).toBe(405);
  });

  it('is listed in discovery as an autoscaling/v1 Scale and allowed to the user token', async () => {
    const list = (await call('GET', '/apis/skiff.dev/v1')).body;
    expect(list.resources.find((r: { name: string }) => r.name === 'functions/scale')).toEqual({ name: 'functions/scale', singularName: '', namespaced: true, group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] });
    const agg = await fetch(`${base}/apis`, { headers: { authorization: `Bearer ${TOKEN}`, accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' } }).then((r) => r.json() as Promise<{ items: Array<{ metadata: { name: string }; versions: Array<{ resources: Array<{ resource: string; subresources: unknown[] }> }> }> }>);
    const skiff = agg.items.find((g: { metadata: { name: string } }) => g.metadata.name === 'skiff.dev');
    const fns = skiff!.versions[0].resources.find((r: { resource: string }) => r.resource === 'functions');
    expect(fns!.subresources).toContainEqual({ subresource: 'scale', responseKind: { group: 'autoscaling', version: 'v1', kind: 'Scale' }, verbs: ['get', 'patch', 'update'] });
    const review = await call('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { group: 'skiff.dev', resource: 'functions', subresource: 'scale', verb: 'patch', namespace: 'default' } } });
    expect(review.body.status.allowed).toBe(true);
  });

  it('accepts the whole spec.scale of issue 17 and refuses wrong shapes, naming each field', async () => {
    const scale = {
      class: 'kpa', minScale: 0, maxScale: 10, initialScale: 1, activationScale: 1, metric: 'concurrency', target: 100, targetUtilization: 70,
      stableWindow: '60s', panicWindowPercentage: 10, panicThresholdPercentage: 200, scaleDownDelay: '0s', scaleToZeroGracePeriod: 30, maxScaleUpRate: 1000, maxScaleDownRate: 2,
      predictive: { enabled: true, leadTime: '30s', maxError: 0.5 },
      behavior: {
        scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }, { type: 'Pods', value: 4, periodSeconds: 15 }] },
        scaleDown: { stabilizationWindowSeconds: 300, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] },
      },
      triggers: [
        { type: 'cron', metadata: { timezone: 'Europe/Paris', start: '0 8 * * 1-5', end: '0 18 * * 1-5', desiredReplicas: '3' } },
        { type: 'metrics-api', metadata: { url: 'http://10.0.0.5:9000/queue', valueLocation: 'depth', targetValue: '10' } },
        { type: 'skiff', metadata: { metricName: 'skiff_gateway_requests_total', labels: '{"route":"default/api"}', targetValue: '50' } },
      ],
    };
    const ok = await call('POST', `${FN}?fieldValidation=Strict`, fn('full', { replicas: 2, scale }));
    expect(ok.status).toBe(201);
    expect(ok.body.spec.scale).toEqual(scale);
    const bad = await call('POST', FN, fn('bad', { scale: { class: 'knative', metric: 'cpu', minScale: -1, targetUtilization: 150, stableWindow: true, triggers: [{ type: 'kafka', metadata: { n: 3 } }], behavior: { scaleUp: { selectPolicy: 'Most' } }, typo: 1 } }));
    expect(bad.status).toBe(422);
    const fields = bad.body.details.causes.map((c: { field: string }) => c.field);
    for (const f of ['spec.scale.class', 'spec.scale.metric', 'spec.scale.minScale', 'spec.scale.targetUtilization', 'spec.scale.stableWindow', 'spec.scale.triggers[0].type', 'spec.scale.triggers[0].metadata.n', 'spec.scale.behavior.scaleUp.selectPolicy', 'spec.scale.typo']) {
      expect(fields, f).toContain(f);
    }
  });

  it('runs the scale validator the composition root connects, only for Functions with spec.scale', async () => {
    const seen: string[] = [];
    const kinds = builtinKinds({}, {
      scaleValidator: (obj) => {
        seen.push(obj.metadata.name);
        return obj.spec.scale.initialScale === 0 && obj.spec.scale.minScale !== 0 ? [{ field: 'spec.scale.initialScale', message: 'may be 0 only when minScale is 0' }] : [];
      },
    });
    const svc = new ResourceService(new MemoryStore(), kinds);
    const def = kinds.lookup('Function')!;
    await svc.create(def, 'default', fn('plain'));
    await svc.create(def, 'default', fn('fine', { scale: { minScale: 0, initialScale: 0 } }));
    await expect(svc.create(def, 'default', fn('wrong', { scale: { minScale: 1, initialScale: 0 } }))).rejects.toThrow(/spec\.scale\.initialScale/);
    expect(seen).toEqual(['fine', 'wrong']);
  });
});
