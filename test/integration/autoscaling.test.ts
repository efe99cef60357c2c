import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { apiFetch, cli, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';

/**
 * Autoscaling end to end on a real `skiff up` (wall clock): a Wasm Function scales to zero and its
 * next request is activated in the gateway and answered; replicas follow a load step; an
 * autoscaling/v2 HorizontalPodAutoscaler scales a Function through its scale subresource; the
 * decisions show in status, Events, `skiff describe` and the metrics. The decision logic itself is
 * driven tick by tick in test/controllers/autoscaler.test.ts.
 */

let s: RunningSkiff;

const fn = (name: string, scale: string) => `apiVersion: skiff.dev/v1
kind: Function
metadata: { name: ${name}, namespace: default }
spec:
  module: ./examples/hello/hello.wasm
${scale}---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: ${name}, namespace: default }
spec:
  http:
    - match: [{ uri: { prefix: /${name} } }]
      route: [{ destination: { function: ${name} } }]
`;

async function apply(yaml: string): Promise<void> {
  const r = await cli(['apply', '-f', '-'], { skiff: s, input: yaml });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

async function status(name: string): Promise<any> {
  return ((await (await apiFetch(s, `/apis/skiff.dev/v1/namespaces/default/functions/${name}`)).json()) as { status?: any }).status;
}

/** load sends `rps` requests per second for `seconds`, loopback only, and returns how many did not answer 200. */
async function load(name: string, rps: number, seconds: number): Promise<number> {
  let bad = 0;
  for (let i = 0; i < seconds; i++) {
    const t0 = Date.now();
    const rs = await Promise.all(Array.from({ length: rps }, () => fetch(`${s.gateway}/${name}`).then(async (r) => (await r.arrayBuffer(), r.status))));
    bad += rs.filter((c) => c !== 200).length;
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t0))));
  }
  return bad;
}

beforeAll(async () => {
  s = await startSkiff({});
}, 30_000);

afterAll(async () => {
  expect(await s.stop()).toBe(0);
});

describe('autoscaling end to end', () => {
  it('scales a Wasm Function to zero and answers the next request without dropping it, in milliseconds', async () => {
    await apply(fn('sleepy', '  scale: { minScale: 0, stableWindow: 6s, scaleToZeroGracePeriod: 1s }\n'));
    await waitFor(async () => (await fetch(`${s.gateway}/sleepy`)).status === 200, 'sleepy serving', 15_000);
    await waitFor(async () => (await status('sleepy'))?.replicas === 1, 'one warm replica', 10_000);
    // Idle for the stable window and the grace: nothing resident but the compiled module.
    await waitFor(async () => (await status('sleepy'))?.replicas === 0, 'sleepy at zero', 30_000);
    const t0 = performance.now();
    const r = await fetch(`${s.gateway}/sleepy`);
    const ms = performance.now() - t0;
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('Hello');
    // Activation of a Wasm Function instantiates one sandbox: well under a loaded machine's second.
    expect(ms).toBeLessThan(1000);
    await waitFor(async () => (await status('sleepy'))?.replicas === 1, 'back to one replica', 10_000);
    const desc = await cli(['describe', 'fn', 'sleepy'], { skiff: s });
    expect(desc.stdout).toMatch(/Autoscaler:\n\s+Recommendation:\s+1 replica\(s\)\n\s+Reason:\s+(activation|reactive)/);
    expect(desc.stdout).toMatch(/Normal\s+ScaledDown\s+\S+\s+\d+\s+1 → 0 replica\(s\): reactive/);
    expect(desc.stdout).toMatch(/Normal\s+ScaledUp\s+\S+\s+\d+\s+0 → 1 replica\(s\): activation/);
  }, 90_000);

  it('follows a load step on requests per second, and shows it in skiff get and the metrics', async () => {
    await apply(fn('stepper', '  scale: { minScale: 1, maxScale: 6, metric: rps, target: 10, stableWindow: 6s }\n'));
    await waitFor(async () => (await fetch(`${s.gateway}/stepper`)).status === 200, 'stepper serving', 15_000);
    // 30 requests/s at 70 % of 10 per replica: 5 replicas. The figures are read while the load runs:
    // once it stops, the stable window empties and the count comes down again.
    const running = load('stepper', 30, 12);
    await waitFor(async () => (await status('stepper'))?.desiredReplicas >= 4, 'stepper scaled up', 12_000);
    const get = await cli(['get', 'fn', 'stepper'], { skiff: s });
    expect(get.stdout).toMatch(/stepper\s+True\s+\d\/[4-6]\s/);
    const metrics = await (await apiFetch(s, '/metrics')).text();
    expect(metrics).toMatch(/skiff_autoscaler_desired_replicas\{function="default\/stepper",runtime_class="wasm"\} [4-6]/);
    expect(await running).toBe(0);
    // Idle again: back down to minScale.
    await waitFor(async () => (await status('stepper'))?.desiredReplicas === 1, 'stepper back to minScale', 30_000);
    expect((await status('stepper')).autoscaler.reason).toMatch(/minScale|reactive/);
  }, 90_000);

  it('scales a Function with a stock autoscaling/v2 HorizontalPodAutoscaler through its scale subresource', async () => {
    await apply(fn('hpa-fn', ''));
    await apply(`apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: { name: hpa-fn, namespace: default }
spec:
  scaleTargetRef: { apiVersion: skiff.dev/v1, kind: Function, name: hpa-fn }
  minReplicas: 2
  maxReplicas: 5
  metrics:
    - type: Pods
      pods:
        metric: { name: requests_per_second }
        target: { type: AverageValue, averageValue: "5" }
`);
    // minReplicas first, written to the Function's spec.replicas as kube's HPA writes a Deployment's.
    await waitFor(async () => (await (await apiFetch(s, '/apis/skiff.dev/v1/namespaces/default/functions/hpa-fn/scale')).json() as any).spec?.replicas === 2, 'HPA at minReplicas', 20_000);
    expect(await load('hpa-fn', 30, 17)).toBe(0);
    const hpa = async () => (await (await apiFetch(s, '/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/hpa-fn')).json()) as any;
    await waitFor(async () => (await hpa()).status?.desiredReplicas > 2, 'HPA scaled up', 20_000);
    const h = await hpa();
    expect(h.status.currentMetrics[0]).toMatchObject({ type: 'Pods', pods: { metric: { name: 'requests_per_second' } } });
    expect(h.status.conditions.find((c: any) => c.type === 'ScalingActive')).toMatchObject({ status: 'True' });
    expect((await status('hpa-fn')).autoscaler.reason).toBe('hpa');
  }, 90_000);
});
