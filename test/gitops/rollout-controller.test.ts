import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { ApiError } from '../../src/api/errors.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import type { ResourceObject } from '../../src/api/kinds/types.js';
import { ResourceService } from '../../src/api/resources.js';
import { Informer } from '../../src/controllers/runtime/index.js';
import type { FunctionSample } from '../../src/gitops/rollout/analysis.js';
import { RolloutController } from '../../src/gitops/rollout/controller.js';
import { MemoryStore } from '../../src/store/index.js';

const logger = pino({ level: 'silent' });
const A = 'blob:sha256:' + 'a'.repeat(64);
const B = 'blob:sha256:' + 'b'.repeat(64);
const BOUNDS = [10_000, 100_000];

/**
 * A Skiff without a gateway: Functions turn Ready and Routes programmed as soon as they change (what
 * the function and route controllers report), the canary's counters are scripted, the clock is ours.
 */
async function setUp() {
  const resources = new ResourceService(new MemoryStore(), builtinKinds());
  const fnDef = resources.kind('Function');
  const routeDef = resources.kind('Route');
  const report = (def: typeof fnDef, status: (o: ResourceObject) => Record<string, unknown>) => (o: ResourceObject) => {
    if (o.status?.observedGeneration === o.metadata.generation) return;
    resources.updateStatus(def, o.metadata.namespace, o.metadata.name, { metadata: { resourceVersion: o.metadata.resourceVersion }, status: { observedGeneration: o.metadata.generation, ...status(o) } }).catch((err) => {
      if (!(err instanceof ApiError)) throw err;
    });
  };
  const functions = new Informer(resources, fnDef, logger);
  const routes = new Informer(resources, routeDef, logger);
  const fnReady = report(fnDef, () => ({ conditions: [{ type: 'Ready', status: 'True', reason: 'ModuleLoaded', message: 'ok', lastTransitionTime: new Date().toISOString() }] }));
  functions.addHandlers({ onAdd: fnReady, onUpdate: (_a, b) => fnReady(b) });
  const programmed = report(routeDef, () => ({}));
  routes.addHandlers({ onAdd: programmed, onUpdate: (_a, b) => programmed(b) });
  await resources.create(fnDef, 'default', { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'hello', labels: { team: 'web', 'sync.skiff.dev/name': 'apps', 'sync.skiff.dev/namespace': 'default' } }, spec: { module: A } });
  await resources.create(routeDef, 'default', { apiVersion: 'skiff.dev/v1', kind: 'Route', metadata: { name: 'hello' }, spec: { http: [{ route: [{ destination: { function: 'hello' } }] }] } });
  await Promise.all([functions.start(), routes.start()]);
  const clock = { now: 1_000_000 };
  const samples = new Map<string, FunctionSample>();
  const ctl = new RolloutController({ resources, logger, functions, routes, clock: () => clock.now, pollMs: 10, metrics: { snapshot: (ns, name) => samples.get(`${ns}/${name}`) } });
  await ctl.start();
  const get = async (kind: string, name: string) => resources.tryGet(resources.kind(kind), 'default', name);
  /** serve scripts the canary's cumulative counters: `n` more requests, `bad` of them 5xx. */
  const served = (n: number, bad: number) => {
    const prev = samples.get('default/hello-canary') ?? { requests: 0, errors5xx: 0, latencyBoundsUs: BOUNDS, latencyCounts: [0, 0, 0] };
    samples.set('default/hello-canary', { ...prev, requests: prev.requests + n, errors5xx: prev.errors5xx + bad, latencyCounts: [prev.latencyCounts[0]! + n, 0, 0] });
  };
  /** tick moves the clock and wakes the rollout, as its requeue timer would. */
  const tick = (ms: number) => {
    clock.now += ms;
    ctl.controller.enqueue('default/hello');
  };
  const stop = async () => {
    await ctl.stop();
    functions.stop();
    routes.stop();
  };
  return { resources, ctl, get, served, tick, stop };
}

const rollout = (steps: unknown[]) => ({
  apiVersion: 'skiff.dev/v1',
  kind: 'Rollout',
  metadata: { name: 'hello' },
  spec: { functionRef: { name: 'hello' }, routeRef: { name: 'hello' }, canary: { module: B }, strategy: { canary: { steps, analysis: { interval: '1s', failureLimit: 0, minRequests: 5, metrics: [{ name: 'success-rate', successRate: { min: 0.9 } }] } } } },
});

let env: Awaited<ReturnType<typeof setUp>> | undefined;
afterEach(async () => {
  await env?.stop();
  env = undefined;
});

const routeOf = async (e: NonNullable<typeof env>) => (await e.get('Route', 'hello'))?.spec.http[0].route;

describe('the rollout controller on a fake clock', () => {
  it('splits the Route once the canary is Ready, holds on inconclusive windows, promotes on a pass', async () => {
    const e = (env = await setUp());
    await e.resources.create(e.resources.kind('Rollout'), 'default', rollout([{ setWeight: 30 }, { analysis: {} }, { setWeight: 100 }]));
    await expect.poll(() => routeOf(e), { timeout: 5_000 }).toEqual([{ destination: { function: 'hello' }, weight: 70 }, { destination: { function: 'hello-canary' }, weight: 30 }]);
    const canary = (await e.get('Function', 'hello-canary'))!;
    expect(canary.spec.module).toBe(B);
    // The stable Function's labels (policies check them), never a Sync's ownership labels.
    expect(canary.metadata.labels).toEqual({ team: 'web', 'rollout.skiff.dev/canary-of': 'hello' });
    expect(canary.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Rollout', name: 'hello', controller: true })]);
    // The baseline is taken; two requests in the next interval are too few to judge.
    await expect.poll(async () => (await e.get('Rollout', 'hello'))?.status?.analysis?.passes, { timeout: 5_000 }).toBe(0);
    e.served(2, 0);
    e.tick(1_000);
    await expect.poll(async () => (await e.get('Rollout', 'hello'))?.status?.analysis?.verdict, { timeout: 5_000 }).toBe('inconclusive');
    expect((await e.get('Rollout', 'hello'))!.status).toMatchObject({ phase: 'Progressing', currentStepIndex: 1, canaryWeight: 30 });
    e.served(20, 1);
    e.tick(1_000);
    await expect.poll(async () => (await e.get('Rollout', 'hello'))?.status?.phase, { timeout: 5_000 }).toBe('Healthy');
    const ro = (await e.get('Rollout', 'hello'))!;
    expect(ro.status).toMatchObject({ stableModule: B, currentStepIndex: 3, canaryWeight: 0, message: expect.stringMatching(/^promoted/) });
    expect((await e.get('Function', 'hello'))!.spec.module).toBe(B);
    expect(await routeOf(e)).toEqual([{ destination: { function: 'hello' } }]);
    await expect.poll(() => e.get('Function', 'hello-canary'), { timeout: 5_000 }).toBeUndefined();
  });

  it('aborts on a failing window: the Route returns to stable and the reason names the metric', async () => {
    const e = (env = await setUp());
    await e.resources.create(e.resources.kind('Rollout'), 'default', rollout([{ setWeight: 50 }, { pause: {} }]));
    await expect.poll(async () => (await e.get('Rollout', 'hello'))?.status?.phase, { timeout: 5_000 }).toBe('Paused');
    await expect.poll(async () => (await routeOf(e))?.length, { timeout: 5_000 }).toBe(2);
    e.tick(0);
    e.served(10, 6);
    e.tick(1_000);
    await expect.poll(async () => (await e.get('Rollout', 'hello'))?.status?.phase, { timeout: 5_000 }).toBe('Degraded');
    expect((await e.get('Rollout', 'hello'))!.status.message).toBe('aborted: analysis failed 1 time (limit 0): success-rate 0.4 below 0.9 (over 10 requests); all traffic is back on the stable version');
    await expect.poll(() => routeOf(e), { timeout: 5_000 }).toEqual([{ destination: { function: 'hello' } }]);
    await expect.poll(() => e.get('Function', 'hello-canary'), { timeout: 5_000 }).toBeUndefined();
    expect((await e.get('Function', 'hello'))!.spec.module).toBe(A);
    // The aborted version stays aborted; a later tick does not start it again.
    e.tick(5_000);
    await e.ctl.controller.idle();
    expect((await e.get('Rollout', 'hello'))!.status.phase).toBe('Degraded');
    expect(await e.get('Function', 'hello-canary')).toBeUndefined();
  });
  it('aborts when the canary cannot be made, and leaves a Function of that name that is not its own alone', async () => {
    const e = (env = await setUp());
    await e.resources.create(e.resources.kind('Function'), 'default', { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'hello-canary' }, spec: { module: A } });
    await e.resources.create(e.resources.kind('Rollout'), 'default', rollout([{ setWeight: 50 }, { pause: {} }]));
    await expect.poll(async () => (await e.get('Rollout', 'hello'))?.status?.phase, { timeout: 5_000 }).toBe('Degraded');
    expect((await e.get('Rollout', 'hello'))!.status.message).toMatch(/the canary Function could not be written: a Function default\/hello-canary exists that is not this Rollout's canary/);
    expect((await e.get('Function', 'hello-canary'))!.spec.module).toBe(A);
    expect(await routeOf(e)).toEqual([{ destination: { function: 'hello' } }]);
  });
});
