import { describe, expect, it } from 'vitest';

import { InvalidScaleSpecError } from '../../src/autoscaling/errors.js';
import { boundScale, parseScaleDurationMs, resolveScalePolicy, validateScaleSpec } from '../../src/autoscaling/policy.js';

const fields = (scale: unknown) => validateScaleSpec(scale).map((p) => p.field);

describe('resolveScalePolicy', () => {
  it("fills Knative's defaults and Kubernetes' behavior defaults", () => {
    const p = resolveScalePolicy(undefined, { defaultMinScale: 0 });
    expect(p).toMatchObject({
      class: 'kpa', minScale: 0, maxScale: 0, initialScale: 1, activationScale: 1, metric: 'concurrency', target: 100,
      targetUtilization: 0.7, stableWindowMs: 60_000, panicWindowMs: 6000, panicThreshold: 2, scaleDownDelayMs: 0,
      scaleToZeroGraceMs: 30_000, maxScaleUpRate: 1000, maxScaleDownRate: 2, predictive: { enabled: false, maxError: 0.5 }, triggers: [],
    });
    expect(p.predictive.leadTimeMs).toBeUndefined();
    expect(p.fixedReplicas).toBeUndefined();
    expect(p.behavior.scaleDown.stabilizationWindowMs).toBe(300_000);
    expect(p.behavior.scaleUp.policies).toEqual([{ type: 'Percent', value: 100, periodMs: 15_000 }, { type: 'Pods', value: 4, periodMs: 15_000 }]);
  });

  it('uses 200 requests/s as the rps target, the class minimum and spec.replicas', () => {
    const p = resolveScalePolicy({ metric: 'rps' }, { defaultMinScale: 1, replicas: 3 });
    expect(p.target).toBe(200);
    expect(p.minScale).toBe(1);
    expect(p.fixedReplicas).toBe(3);
  });

  it('converts durations, percentages and the predictive settings', () => {
    const p = resolveScalePolicy(
      { stableWindow: '2m', panicWindowPercentage: 5, panicThresholdPercentage: 300, targetUtilization: 50, scaleDownDelay: 90, scaleToZeroGracePeriod: '6s', predictive: { enabled: true, leadTime: '1m30s', maxError: 0.3 } },
      { defaultMinScale: 0 },
    );
    expect(p.stableWindowMs).toBe(120_000);
    expect(p.panicWindowMs).toBe(6000);
    expect(p.panicThreshold).toBe(3);
    expect(p.targetUtilization).toBe(0.5);
    expect(p.scaleDownDelayMs).toBe(90_000);
    expect(p.scaleToZeroGraceMs).toBe(6000);
    expect(p.predictive).toEqual({ enabled: true, leadTimeMs: 90_000, maxError: 0.3 });
  });

  it('keeps the panic window at one second or more', () => {
    expect(resolveScalePolicy({ stableWindow: '6s', panicWindowPercentage: 1 }, { defaultMinScale: 0 }).panicWindowMs).toBe(1000);
  });

  it('keeps initialScale within minScale and maxScale', () => {
    expect(resolveScalePolicy({ minScale: 3 }, { defaultMinScale: 0 }).initialScale).toBe(3);
    expect(resolveScalePolicy({ initialScale: 0 }, { defaultMinScale: 1 }).initialScale).toBe(1);
    expect(resolveScalePolicy({ initialScale: 0 }, { defaultMinScale: 0 }).initialScale).toBe(0);
  });

  it('throws one error listing every problem', () => {
    let err: unknown;
    try {
      resolveScalePolicy({ stableWindow: '1s', metric: 'cpu' } as never, { defaultMinScale: 0 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidScaleSpecError);
    const e = err as InvalidScaleSpecError;
    expect(e.code).toBe('autoscaling_invalid_scale_spec');
    expect(e.problems.map((p) => p.field).sort()).toEqual(['spec.scale.metric', 'spec.scale.stableWindow']);
    expect(e.message).toContain('spec.scale.stableWindow');
  });
});

describe('parseScaleDurationMs', () => {
  it('reads strings with units and bare numbers as seconds', () => {
    expect(parseScaleDurationMs('1m30s')).toBe(90_000);
    expect(parseScaleDurationMs('500ms')).toBe(500);
    expect(parseScaleDurationMs(45)).toBe(45_000);
    expect(parseScaleDurationMs('45')).toBe(45_000);
    expect(parseScaleDurationMs('soon')).toBeUndefined();
    expect(parseScaleDurationMs(-1)).toBeUndefined();
    expect(parseScaleDurationMs(true)).toBeUndefined();
  });
});

describe('validateScaleSpec', () => {
  it('accepts the full example of the brief', () => {
    expect(
      validateScaleSpec({
        class: 'kpa', minScale: 0, maxScale: 10, initialScale: 1, activationScale: 1, metric: 'concurrency', target: 100, targetUtilization: 70,
        stableWindow: '60s', panicWindowPercentage: 10, panicThresholdPercentage: 200, scaleDownDelay: '0s', scaleToZeroGracePeriod: '30s',
        maxScaleUpRate: 1000, maxScaleDownRate: 2, predictive: { enabled: true, leadTime: '30s', maxError: 0.5 },
        behavior: {
          scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }, { type: 'Pods', value: 4, periodSeconds: 15 }] },
          scaleDown: { stabilizationWindowSeconds: 300, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] },
        },
        triggers: [
          { type: 'cron', metadata: { timezone: 'Europe/Paris', start: '0 8 * * 1-5', end: '0 18 * * 1-5', desiredReplicas: '3' } },
          { type: 'metrics-api', metadata: { url: 'http://10.0.0.5:9000/queue', valueLocation: 'depth', targetValue: '10' } },
          { type: 'skiff', name: 'gw', metadata: { metricName: 'skiff_gateway_requests_total', labels: '{"route":"default/api"}', targetValue: '50' } },
        ],
      }),
    ).toEqual([]);
    expect(validateScaleSpec(undefined)).toEqual([]);
    expect(validateScaleSpec({ scaleToZeroGracePeriod: '6s' })).toEqual([]);
  });

  it('names unknown classes, metrics and fields, with a suggestion for a misspelt one', () => {
    const problems = validateScaleSpec({ class: 'vpa', metric: 'cpu', minscale: 1, speed: 2 });
    expect(problems.map((p) => p.field)).toEqual(['spec.scale.minscale', 'spec.scale.speed', 'spec.scale.class', 'spec.scale.metric']);
    expect(problems[0]!.message).toContain('did you mean minScale?');
    expect(problems[2]!.message).toContain('kpa');
    expect(validateScaleSpec('fast')).toEqual([{ field: 'spec.scale', message: expect.stringContaining('object') }]);
  });

  it('checks the ranges of Knative', () => {
    expect(fields({ stableWindow: '5s' })).toEqual(['spec.scale.stableWindow']);
    expect(fields({ stableWindow: '61m' })).toEqual(['spec.scale.stableWindow']);
    expect(fields({ stableWindow: '6s' })).toEqual([]);
    expect(fields({ stableWindow: 3600 })).toEqual([]);
    expect(fields({ panicWindowPercentage: 0 })).toEqual(['spec.scale.panicWindowPercentage']);
    expect(fields({ panicWindowPercentage: 101 })).toEqual(['spec.scale.panicWindowPercentage']);
    expect(fields({ panicThresholdPercentage: 100 })).toEqual(['spec.scale.panicThresholdPercentage']);
    expect(fields({ panicThresholdPercentage: 1001 })).toEqual(['spec.scale.panicThresholdPercentage']);
    expect(fields({ targetUtilization: 0.7 })).toEqual(['spec.scale.targetUtilization']);
    expect(fields({ targetUtilization: 100 })).toEqual([]);
    expect(fields({ target: 0 })).toEqual(['spec.scale.target']);
    expect(fields({ target: '10' })).toEqual(['spec.scale.target']);
    expect(fields({ scaleDownDelay: '2h' })).toEqual(['spec.scale.scaleDownDelay']);
    expect(fields({ maxScaleUpRate: 1 })).toEqual(['spec.scale.maxScaleUpRate']);
    expect(fields({ maxScaleDownRate: 0.5 })).toEqual(['spec.scale.maxScaleDownRate']);
    expect(fields({ minScale: -1, maxScale: 1.5 })).toEqual(['spec.scale.minScale', 'spec.scale.maxScale']);
    expect(fields({ activationScale: 0 })).toEqual(['spec.scale.activationScale']);
  });

  it('relates the bounds: maxScale, initialScale and activationScale', () => {
    expect(fields({ minScale: 3, maxScale: 2 })).toEqual(['spec.scale.maxScale']);
    expect(fields({ minScale: 3, maxScale: 0 })).toEqual([]);
    expect(fields({ minScale: 1, initialScale: 0 })).toEqual(['spec.scale.initialScale']);
    expect(fields({ minScale: 0, initialScale: 0 })).toEqual([]);
    expect(fields({ maxScale: 2, initialScale: 3, activationScale: 3 })).toEqual(['spec.scale.initialScale', 'spec.scale.activationScale']);
  });

  it('says which durations do not parse and how to write them', () => {
    const [p] = validateScaleSpec({ scaleToZeroGracePeriod: 'half a minute' });
    expect(p).toEqual({ field: 'spec.scale.scaleToZeroGracePeriod', message: expect.stringContaining('30s') });
    expect(fields({ predictive: { enabled: 'yes', leadTime: 'x', maxError: 0, extra: 1 } })).toEqual([
      'spec.scale.predictive.extra', 'spec.scale.predictive.enabled', 'spec.scale.predictive.leadTime', 'spec.scale.predictive.maxError',
    ]);
  });

  it('checks behavior policies with their full paths', () => {
    expect(
      fields({
        behavior: {
          scaleUp: { stabilizationWindowSeconds: 3601, selectPolicy: 'Fastest', policies: [{ type: 'Replicas', value: 0, periodSeconds: 1801 }] },
          scaleDown: { policies: [] },
          sideways: {},
        },
      }),
    ).toEqual([
      'spec.scale.behavior.sideways',
      'spec.scale.behavior.scaleUp.stabilizationWindowSeconds',
      'spec.scale.behavior.scaleUp.selectPolicy',
      'spec.scale.behavior.scaleUp.policies[0].type',
      'spec.scale.behavior.scaleUp.policies[0].value',
      'spec.scale.behavior.scaleUp.policies[0].periodSeconds',
      'spec.scale.behavior.scaleDown.policies',
    ]);
    expect(fields({ behavior: { scaleDown: { selectPolicy: 'Disabled' } } })).toEqual([]);
  });

  it('checks triggers: known types, required metadata, strings and numbers', () => {
    const problems = validateScaleSpec({
      triggers: [
        { type: 'kafka', metadata: {} },
        { type: 'cron', metadata: { start: '0 8 * * *', desiredReplicas: 3 } },
        { type: 'cron', metadata: { start: '0 8 * * *', end: '0 9 * * *', desiredReplicas: '2.5' } },
        { type: 'metrics-api', metadata: { url: 'http://127.0.0.1:9/q', valueLocation: 'n', targetValue: 'ten', activationTargetValue: '-1', method: 'POST' } },
        { type: 'skiff', metadata: { metricName: 'http_requests_total', labels: '{route: x}', targetValue: '0' } },
        { type: 'skiff', metadata: { metricName: 'skiff_function_runs_total', labels: '{"function": 1}', targetValue: '5' } },
        'cron',
      ],
    });
    expect(problems.map((p) => p.field)).toEqual([
      'spec.scale.triggers[0].type',
      'spec.scale.triggers[1].metadata.desiredReplicas',
      'spec.scale.triggers[1].metadata.end',
      'spec.scale.triggers[2].metadata.desiredReplicas',
      'spec.scale.triggers[3].metadata.targetValue',
      'spec.scale.triggers[3].metadata.activationTargetValue',
      'spec.scale.triggers[3].metadata.method',
      'spec.scale.triggers[4].metadata.targetValue',
      'spec.scale.triggers[4].metadata.metricName',
      'spec.scale.triggers[4].metadata.labels',
      'spec.scale.triggers[5].metadata.labels',
      'spec.scale.triggers[6]',
    ]);
    expect(problems[0]!.message).toContain('cron, metrics-api, skiff');
    expect(problems[1]!.message).toContain('quote it');
    expect(fields({ triggers: {} })).toEqual(['spec.scale.triggers']);
    expect(fields({ triggers: Array.from({ length: 17 }, () => ({ type: 'skiff', metadata: { metricName: 'skiff_x', targetValue: '1' } })) })).toEqual(['spec.scale.triggers']);
  });

  it('takes another path prefix', () => {
    expect(validateScaleSpec({ target: -1 }, 'spec.template.scale')[0]!.field).toBe('spec.template.scale.target');
  });
});

describe('boundScale', () => {
  it('keeps a count within minScale and maxScale and says which bound applied', () => {
    expect(boundScale({ minScale: 1, maxScale: 5 }, 7)).toEqual({ replicas: 5, bound: 'maxScale' });
    expect(boundScale({ minScale: 1, maxScale: 5 }, 0)).toEqual({ replicas: 1, bound: 'minScale' });
    expect(boundScale({ minScale: 0, maxScale: 0 }, 70)).toEqual({ replicas: 70 });
  });
});
