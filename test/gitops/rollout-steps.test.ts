import { describe, expect, it } from 'vitest';

import { type RolloutPlan,rolloutPlan } from '../../src/api/kinds/index.js';
import { type FunctionSample, measure, type Measurement, windowBetween } from '../../src/gitops/rollout/analysis.js';
import { advance, startState, type StepState } from '../../src/gitops/rollout/steps.js';
import { previewTraffic, splitTraffic } from '../../src/gitops/rollout/traffic.js';

const pass: Measurement = { verdict: 'pass', requests: 20, errors5xx: 0, metrics: {} };
const fail: Measurement = { verdict: 'fail', requests: 20, errors5xx: 10, metrics: {}, reason: 'success-rate 0.5 below 0.95' };
const inconclusive: Measurement = { verdict: 'inconclusive', requests: 1, errors5xx: 0, metrics: {} };

function plan(spec: Record<string, unknown>): RolloutPlan['strategy'] {
  const { plan: p, errors } = rolloutPlan({ functionRef: { name: 'hello' }, routeRef: { name: 'hello' }, canary: { module: 'blob:sha256:' + 'a'.repeat(64) }, ...spec });
  expect(errors).toEqual([]);
  return p!.strategy;
}

const canary = (steps: unknown[], analysis: Record<string, unknown> = { interval: '1s', failureLimit: 1, metrics: [{ name: 'success-rate', successRate: { min: 0.95 } }] }) => plan({ strategy: { canary: { steps, analysis } } });

/** run feeds the machine a script of inputs on a fake clock and returns every outcome. */
function run(strategy: RolloutPlan['strategy'], script: Array<{ at: number; m?: Measurement; promote?: 'step' | 'full'; abort?: string }>) {
  let state: StepState = startState(0);
  return script.map((input) => {
    const out = advance(strategy, state, { now: input.at, measurement: input.m, promote: input.promote, abort: input.abort });
    state = out.state;
    return out;
  });
}

describe('the step machine', () => {
  it('walks setWeight, a timed pause, an analysis and promotes, with one weight write per turn', () => {
    const s = canary([{ setWeight: 20 }, { pause: { duration: '10s' } }, { setWeight: 50 }, { analysis: { count: 2 } }, { setWeight: 100 }]);
    const [first, early, due, analysed1, analysed2] = run(s, [{ at: 0 }, { at: 5_000 }, { at: 10_000 }, { at: 11_000, m: pass }, { at: 12_000, m: pass }]);
    expect(first!.effects[0]).toEqual({ type: 'setWeight', weight: 20 });
    expect(first!.state).toMatchObject({ phase: 'Progressing', stepIndex: 1, weight: 20 });
    expect(first!.wakeAt).toBe(10_000);
    expect(early!.effects).toEqual([]);
    expect(early!.state.message).toMatch(/pausing 5s more/);
    // The pause ends and setWeight 50 follows in the same turn; the analysis step then waits.
    expect(due!.effects.filter((e) => e.type === 'setWeight')).toEqual([{ type: 'setWeight', weight: 50 }]);
    expect(due!.state).toMatchObject({ stepIndex: 3, weight: 50, passes: 0 });
    expect(analysed1!.state).toMatchObject({ stepIndex: 3, passes: 1 });
    expect(analysed2!.effects.map((e) => e.type)).toEqual(['setWeight', 'event', 'event', 'promote']);
    expect(analysed2!.state.weight).toBe(100);
    expect(analysed2!.state.message).toMatch(/promoting: all 5 steps completed/);
  });

  it('aborts only when failures exceed failureLimit (Argo semantics), with the reason', () => {
    const s = canary([{ setWeight: 20 }, { pause: {} }]);
    const [, f1, f2] = run(s, [{ at: 0 }, { at: 1_000, m: fail }, { at: 2_000, m: fail }]);
    expect(f1!.state.phase).toBe('Paused');
    expect(f1!.effects).toEqual([expect.objectContaining({ type: 'event', reason: 'AnalysisFailed' })]);
    expect(f2!.state).toMatchObject({ phase: 'Degraded', weight: 0, failures: 2 });
    expect(f2!.effects.at(-1)).toEqual({ type: 'abort', reason: expect.stringMatching(/failed 2 times \(limit 1\): success-rate 0.5 below 0.95/) });
  });

  it('counts too few requests as inconclusive: neither a pass nor a failure', () => {
    const s = canary([{ setWeight: 20 }, { analysis: {} }], { interval: '1s', failureLimit: 0, metrics: [{ name: 'success-rate', successRate: { min: 0.95 } }] });
    const outs = run(s, [{ at: 0 }, { at: 1_000, m: inconclusive }, { at: 2_000, m: inconclusive }, { at: 3_000, m: pass }]);
    expect(outs[2]!.state).toMatchObject({ phase: 'Progressing', stepIndex: 1, inconclusive: 2, failures: 0, passes: 0 });
    expect(outs[3]!.effects.at(-1)).toEqual({ type: 'promote' });
  });

  it('waits at pause {} until promoted, and promote --full skips every step', () => {
    const s = canary([{ setWeight: 10 }, { pause: {} }, { setWeight: 60 }, { pause: {} }, { setWeight: 100 }]);
    const outs = run(s, [{ at: 0 }, { at: 60_000 }, { at: 61_000, promote: 'step' }, { at: 62_000, promote: 'full' }]);
    expect(outs[0]!.state.phase).toBe('Paused');
    expect(outs[1]!.state).toMatchObject({ phase: 'Paused', stepIndex: 1 });
    expect(outs[1]!.wakeAt).toBeUndefined();
    expect(outs[2]!.state).toMatchObject({ phase: 'Paused', stepIndex: 3, weight: 60 });
    expect(outs[3]!.effects).toEqual([{ type: 'promote' }]);
  });

  it('aborts on request from any running phase and stays put once finished', () => {
    const s = canary([{ setWeight: 10 }, { pause: {} }]);
    const outs = run(s, [{ at: 0 }, { at: 1, abort: 'skiff rollout abort' }, { at: 2, m: pass }]);
    expect(outs[1]!.state).toMatchObject({ phase: 'Degraded', weight: 0, message: 'aborted: aborted by skiff rollout abort' });
    expect(outs[2]!.effects).toEqual([]);
  });

  it('blue-green: waits for promote without autoPromotionSeconds, else promotes once due and analysed', () => {
    const manual = plan({ strategy: { blueGreen: { previewRouteRef: { name: 'preview' } } } });
    const m = run(manual, [{ at: 0 }, { at: 1_000, promote: 'step' }]);
    expect(m[0]!.state.phase).toBe('Paused');
    expect(m[1]!.effects).toEqual([{ type: 'promote' }]);
    const auto = plan({ strategy: { blueGreen: { previewRouteRef: { name: 'preview' }, autoPromotionSeconds: 5, analysis: { interval: '1s', metrics: [{ name: 'p99', latencyP99: { maxMs: 100 } }] } } } });
    const a = run(auto, [{ at: 0 }, { at: 5_000, m: inconclusive }, { at: 6_000, m: pass }]);
    expect(a[0]!.wakeAt).toBe(5_000);
    expect(a[1]!.state.message).toMatch(/once the analysis has passed/);
    expect(a[2]!.effects).toEqual([{ type: 'promote' }]);
  });
});

const BOUNDS = [1_000, 10_000, 100_000, 1_000_000];
const sample = (requests: number, errors5xx: number, counts: number[]): FunctionSample => ({ requests, errors5xx, latencyBoundsUs: BOUNDS, latencyCounts: counts });

describe('analysis over measured windows', () => {
  const analysis = { intervalMs: 1000, failureLimit: 0, minRequests: 5, metrics: [{ name: 'success-rate', kind: 'successRate' as const, min: 0.9 }, { name: 'p99', kind: 'latencyP99' as const, maxMs: 50 }] };
  const noRego = async () => {
    throw new Error('no rego here');
  };

  it('takes differences between cumulative samples and computes the p99 bucket', () => {
    const w = windowBetween(sample(100, 1, [90, 10, 0, 0, 0]), sample(200, 3, [150, 40, 10, 0, 0]));
    expect(w).toEqual({ requests: 100, errors5xx: 2, p99Ms: 100 });
    expect(windowBetween(sample(500, 0, [500, 0, 0, 0, 0]), sample(10, 0, [10, 0, 0, 0, 0])).requests).toBe(10);
    expect(windowBetween(undefined, undefined)).toEqual({ requests: 0, errors5xx: 0 });
  });

  it('passes, fails naming the metric against its limit, and is inconclusive under minRequests', async () => {
    const ok = await measure(analysis, { requests: 50, errors5xx: 1, p99Ms: 10 }, {}, noRego);
    expect(ok.verdict).toBe('pass');
    expect(ok.metrics['success-rate']).toEqual({ value: 0.98, limit: '>= 0.9', ok: true });
    const bad = await measure(analysis, { requests: 50, errors5xx: 25, p99Ms: 100 }, {}, noRego);
    expect(bad.verdict).toBe('fail');
    expect(bad.reason).toBe('success-rate 0.5 below 0.9; p99 100ms above 50ms (over 50 requests)');
    const few = await measure(analysis, { requests: 4, errors5xx: 4, p99Ms: 100 }, {}, noRego);
    expect(few.verdict).toBe('inconclusive');
    expect(few.reason).toMatch(/4 requests .* at least 5/);
  });

  it('evaluates rego conditions over the measured values with Skiff\'s engine, and a broken one fails', async () => {
    const { RegoConditions } = await import('../../src/gitops/rollout/rego.js');
    const rego = new RegoConditions(200);
    const regoAnalysis = { ...analysis, metrics: [...analysis.metrics, { name: 'budget', kind: 'rego' as const, policy: 'package canary\nallow if input.metrics["success-rate"] >= 0.97\nallow if input.requests > 1000', query: 'data.canary.allow' }] };
    const cond = (m: Parameters<typeof rego.evaluate>[0], input: unknown) => rego.evaluate(m, input);
    expect((await measure(regoAnalysis, { requests: 100, errors5xx: 1, p99Ms: 10 }, {}, cond)).verdict).toBe('pass');
    const low = await measure(regoAnalysis, { requests: 100, errors5xx: 5, p99Ms: 10 }, {}, cond);
    expect(low.verdict).toBe('fail');
    expect(low.reason).toMatch(/budget: data.canary.allow is not true/);
    const broken = { ...analysis, metrics: [{ name: 'x', kind: 'rego' as const, policy: 'package p\nallow if {', query: 'data.p.allow' }] };
    const b = await measure(broken, { requests: 100, errors5xx: 0, p99Ms: 1 }, {}, cond);
    expect(b.verdict).toBe('fail');
    expect(b.metrics.x!.error).toBeTruthy();
  });
});

describe('traffic rewriting', () => {
  const http = [{ match: [{ uri: { prefix: '/a' } }], route: [{ destination: { function: 'hello' } }] }, { route: [{ destination: { function: 'other' }, weight: 3 }, { destination: { function: 'hello' }, weight: 1 }] }];

  it('splits each share of the stable Function and keeps the other shares', () => {
    expect(splitTraffic(http, 'hello', 'hello-canary', 0)).toEqual(http);
    const s = splitTraffic(http, 'hello', 'hello-canary', 20);
    expect(s[0]!.route).toEqual([{ destination: { function: 'hello' }, weight: 80 }, { destination: { function: 'hello-canary' }, weight: 20 }]);
    expect(s[1]!.route).toEqual([{ destination: { function: 'other' }, weight: 300 }, { destination: { function: 'hello' }, weight: 80 }, { destination: { function: 'hello-canary' }, weight: 20 }]);
    expect(s[0]!.match).toEqual(http[0]!.match);
    expect(http[0]!.route).toEqual([{ destination: { function: 'hello' } }]);
  });

  it('points a preview Route at the canary', () => {
    expect(previewTraffic(http, 'hello', 'hello-canary')[1]!.route).toEqual([{ destination: { function: 'other' }, weight: 3 }, { destination: { function: 'hello-canary' }, weight: 1 }]);
  });
});

describe('the Rollout kind', () => {
  it('reports every semantic problem with its field', () => {
    const { errors } = rolloutPlan({
      functionRef: { name: 'a' },
      routeRef: { name: 'a' },
      canary: { module: './rel.wasm', image: 'x' },
      strategy: { canary: { steps: [{ analysis: {} }, { pause: { duration: '5s' } }] } },
    });
    expect(errors.map((e) => e.field)).toEqual(['spec.canary', 'spec.canary.module', 'spec.strategy.canary.steps[0].analysis']);
    const blind = rolloutPlan({ functionRef: { name: 'a' }, routeRef: { name: 'a' }, canary: { module: '/m.wasm' }, strategy: { canary: { steps: [{ setWeight: 0 }, { analysis: {} }], analysis: { metrics: [{ name: 'm', successRate: { min: 1 } }] } } } });
    expect(blind.errors).toEqual([expect.objectContaining({ field: 'spec.strategy.canary.steps[1].analysis', message: expect.stringMatching(/no traffic/) })]);
    const bg = rolloutPlan({ functionRef: { name: 'a' }, routeRef: { name: 'a' }, canary: { module: '/m.wasm' }, strategy: { blueGreen: { previewRouteRef: { name: 'a' }, analysis: { interval: '10ms', metrics: [{ name: 'm', successRate: { min: 1 }, latencyP99: { maxMs: 1 } }] } } } });
    expect(bg.errors.map((e) => e.field)).toEqual(['spec.strategy.blueGreen.previewRouteRef.name', 'spec.strategy.blueGreen.analysis.interval', 'spec.strategy.blueGreen.analysis.metrics[0]']);
  });
});
