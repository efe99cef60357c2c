import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasKubectl, type Kubectl, kubectlFor } from '../helpers/kubectl.js';
import { apiFetch, cli, type RunningSkiff, startSkiff } from '../helpers/skiff-process.js';

const run = hasKubectl();
let s: RunningSkiff;
let kubectl: Kubectl;

const SCALE = '/apis/skiff.dev/v1/namespaces/default/functions/hello/scale';

const HPA = `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: hello
spec:
  scaleTargetRef:
    apiVersion: skiff.dev/v1
    kind: Function
    name: hello
  minReplicas: 1
  maxReplicas: 5
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 50
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 120
      policies:
      - type: Pods
        value: 1
        periodSeconds: 60
`;

async function ok(k: Kubectl, args: string[], stdin?: string): Promise<string> {
  const r = await k(args, { stdin });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  if (!run) return;
  s = await startSkiff({ demo: true });
  kubectl = kubectlFor(s);
}, 60_000);
afterAll(async () => {
  await s?.stop();
});

describe.runIf(run)('kubectl and the autoscaling API', () => {
  it('scales a Function through its scale subresource', async () => {
    expect(await ok(kubectl, ['scale', 'function', 'hello', '--replicas=3'])).toBe('function.skiff.dev/hello scaled\n');
    const scale = JSON.parse(await ok(kubectl, ['get', '--raw', SCALE])) as { kind: string; spec: { replicas: number }; status: { selector: string } };
    expect(scale).toMatchObject({ kind: 'Scale', apiVersion: 'autoscaling/v1', spec: { replicas: 3 }, status: { replicas: expect.any(Number), selector: 'skiff.dev/function=hello' } });
    expect(await ok(kubectl, ['get', 'fn', 'hello', '-o', 'jsonpath={.spec.replicas}'])).toBe('3');
    // With a precondition kubectl reads the Scale and replaces it (PUT with its resourceVersion).
    expect((await ok(kubectl, ['scale', 'fn', 'hello', '--current-replicas=3', '--replicas=2'])).trim()).toBe('function.skiff.dev/hello scaled');
    expect(await ok(kubectl, ['get', 'fn', 'hello', '-o', 'jsonpath={.spec.replicas}'])).toBe('2');
    const stale = await kubectl(['scale', 'fn', 'hello', '--resource-version=1', '--replicas=4']);
    expect(stale.code).not.toBe(0);
    expect(stale.stderr).toMatch(/resource version/i);
    const neg = await kubectl(['patch', 'fn', 'hello', '--subresource=scale', '--type=merge', '-p', '{"spec":{"replicas":-1}}']);
    expect(neg.code).not.toBe(0);
    expect(neg.stderr).toContain('spec.replicas');
    expect(await ok(kubectl, ['auth', 'can-i', 'update', 'functions', '--subresource=scale'])).toBe('yes\n');
  });

  it('prints REPLICAS and, wide, REASON for Functions in kubectl and skiff', async () => {
    const head = (await ok(kubectl, ['get', 'fn', 'hello'])).split('\n')[0]!;
    expect(head).toMatch(/^NAME\s+READY\s+REPLICAS\s+/);
    const row = (await ok(kubectl, ['get', 'fn', 'hello'])).split('\n')[1]!;
    expect(row).toMatch(/^hello\s+\S+\s+\d+\/\d+\s/);
    expect((await ok(kubectl, ['get', 'fn', 'hello', '-o', 'wide'])).split('\n')[0]).toContain('REASON');
    const mine = await cli(['get', 'fn'], { skiff: s });
    expect(mine.code).toBe(0);
    expect(mine.stdout.split('\n')[0]).toMatch(/NAME\s+READY\s+REPLICAS/);
  });

  it('applies a stock autoscaling/v2 HorizontalPodAutoscaler and lists it with kubectl get hpa', async () => {
    expect(await ok(kubectl, ['apply', '-f', '-'], HPA)).toBe('horizontalpodautoscaler.autoscaling/hello created\n');
    expect(await ok(kubectl, ['apply', '-f', '-'], HPA)).toBe('horizontalpodautoscaler.autoscaling/hello unchanged\n');
    const lines = (await ok(kubectl, ['get', 'hpa'])).trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+REFERENCE\s+TARGETS\s+MINPODS\s+MAXPODS\s+REPLICAS\s+AGE$/);
    // The HPA controller may already have measured (0% idle) and scaled to its minimum.
    expect(lines[1]).toMatch(/^hello\s+Function\/hello\s+cpu: (<unknown>|\d+%)\/50%\s+1\s+5\s+\d+\s+\S+$/);
    const edited = HPA.replace('maxReplicas: 5', 'maxReplicas: 8');
    expect(await ok(kubectl, ['apply', '-f', '-'], edited)).toBe('horizontalpodautoscaler.autoscaling/hello configured\n');
    expect(await ok(kubectl, ['get', 'horizontalpodautoscalers.autoscaling', 'hello', '-o', 'jsonpath={.spec.maxReplicas}'])).toBe('8');
    const deployment = await kubectl(['apply', '-f', '-'], { stdin: HPA.replace('name: hello\nspec', 'name: other\nspec').replace('apiVersion: skiff.dev/v1\n    kind: Function', 'apiVersion: apps/v1\n    kind: Deployment') });
    expect(deployment.code).not.toBe(0);
    expect(deployment.stderr).toContain('spec.scaleTargetRef.kind');
    const mine = await cli(['get', 'hpa'], { skiff: s });
    expect(mine.code).toBe(0);
    // <unknown> until the autoscaler's first evaluation has filled in currentMetrics.
    expect(mine.stdout).toMatch(/hello\s+Function\/hello\s+cpu: (<unknown>|\d+%)\/50%/);
    const res = await apiFetch(s, '/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/hello');
    expect(res.status).toBe(200);
  });
});
