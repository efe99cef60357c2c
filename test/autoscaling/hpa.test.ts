import { describe, expect, it } from 'vitest';

import { defaultBehavior, HpaScaler, replicasFor, resolveBehavior, validateBehavior } from '../../src/autoscaling/hpa.js';

const S = 1000;

describe('replicasFor', () => {
  it('scales by the ratio of current to desired value (the HPA docs: 200m against 100m doubles, 50m halves)', () => {
    expect(replicasFor(4, [{ kind: 'ratio', usage: 200, target: 100 }])).toBe(8);
    expect(replicasFor(4, [{ kind: 'ratio', usage: 50, target: 100 }])).toBe(2);
    expect(replicasFor(3, [{ kind: 'ratio', usage: 90, target: 60 }])).toBe(5);
    expect(replicasFor(3, [{ kind: 'ratio', usage: 61, target: 60 }])).toBe(3);
  });

  it('skips a change inside the tolerance, on both sides and at its edge', () => {
    expect(replicasFor(10, [{ kind: 'ratio', usage: 109, target: 100 }])).toBe(10);
    expect(replicasFor(10, [{ kind: 'ratio', usage: 91, target: 100 }])).toBe(10);
    expect(replicasFor(10, [{ kind: 'ratio', usage: 112, target: 100 }])).toBe(12);
    expect(replicasFor(10, [{ kind: 'ratio', usage: 88, target: 100 }])).toBe(9);
    expect(replicasFor(10, [{ kind: 'ratio', usage: 105, target: 100 }], 0)).toBe(11);
  });

  it('handles Value and AverageValue targets of Object and External metrics', () => {
    expect(replicasFor(2, [{ kind: 'value', value: 300, target: 100 }])).toBe(6);
    expect(replicasFor(2, [{ kind: 'total', value: 250, targetAverage: 50 }])).toBe(5);
    // AverageValue tolerance is measured per replica: 210 over 2 replicas is 105 each against 100.
    expect(replicasFor(2, [{ kind: 'total', value: 210, targetAverage: 100 }])).toBe(2);
  });

  it('takes the highest over the metrics and skips missing ones', () => {
    const readings = [{ kind: 'ratio' as const, usage: 150, target: 100 }, undefined, { kind: 'value' as const, value: 40, target: 10 }];
    expect(replicasFor(2, readings)).toBe(8);
    expect(replicasFor(2, [undefined, undefined])).toBe(2);
    expect(replicasFor(5, [])).toBe(5);
    expect(replicasFor(2, [{ kind: 'ratio', usage: NaN, target: 100 }, { kind: 'ratio', usage: 100, target: 0 }])).toBe(2);
  });

  it('computes from zero against one replica, without tolerance', () => {
    expect(replicasFor(0, [{ kind: 'value', value: 30, target: 10 }])).toBe(3);
    expect(replicasFor(0, [{ kind: 'total', value: 25, targetAverage: 10 }])).toBe(3);
    expect(replicasFor(0, [{ kind: 'value', value: 1.05, target: 1 }])).toBe(2);
    expect(replicasFor(0, [{ kind: 'total', value: 0, targetAverage: 10 }])).toBe(0);
    expect(replicasFor(3, [{ kind: 'total', value: 0, targetAverage: 10 }])).toBe(0);
  });
});

describe('resolveBehavior', () => {
  it("fills Kubernetes' defaults per direction and per field", () => {
    expect(resolveBehavior(undefined)).toEqual(defaultBehavior());
    const b = resolveBehavior({ scaleDown: { stabilizationWindowSeconds: 60 }, scaleUp: { selectPolicy: 'Min', policies: [{ type: 'Pods', value: 2, periodSeconds: 30 }] } });
    expect(b.scaleDown).toEqual({ stabilizationWindowMs: 60_000, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodMs: 15_000 }] });
    expect(b.scaleUp).toEqual({ stabilizationWindowMs: 0, selectPolicy: 'Min', policies: [{ type: 'Pods', value: 2, periodMs: 30_000 }] });
  });

  it('validates with full paths', () => {
    expect(validateBehavior({ scaleUp: { policies: [{ type: 'Percent', value: 10, periodSeconds: 0 }] } }, 'spec.behavior')).toEqual([
      { field: 'spec.behavior.scaleUp.policies[0].periodSeconds', message: expect.stringContaining('1 to 1800') },
    ]);
    expect(validateBehavior(undefined, 'spec.behavior')).toEqual([]);
  });
});

describe('HpaScaler', () => {
  it('scales up at once by the larger of 100 % and 4 pods per 15 s (the defaults)', () => {
    const s = new HpaScaler(defaultBehavior());
    expect(s.recommend(0, 1, 20, 1, 100)).toEqual({ desired: 5, reason: 'ScaleUpLimit', limited: 'rate' });
    s.record(0, 1, 5);
    // Within the same 15 s the budget is measured from the count at the start of the period (1).
    expect(s.recommend(5 * S, 5, 20, 1, 100).desired).toBe(5);
    // After the period, from 5: 100 % gives 10, 4 pods gives 9.
    expect(s.recommend(16 * S, 5, 20, 1, 100).desired).toBe(10);
    s.record(16 * S, 5, 10);
    expect(s.recommend(32 * S, 10, 20, 1, 100)).toEqual({ desired: 20, reason: 'DesiredWithinRange' });
  });

  it('scales down by the docs example: 4 pods or 10 % a minute, the larger change', () => {
    const b = resolveBehavior({ scaleDown: { stabilizationWindowSeconds: 0, policies: [{ type: 'Pods', value: 4, periodSeconds: 60 }, { type: 'Percent', value: 10, periodSeconds: 60 }] } });
    const s = new HpaScaler(b);
    // 80 replicas towards 10: the first step removes 8 (10 %).
    let r = s.recommend(0, 80, 10, 1, 100);
    expect(r).toEqual({ desired: 72, reason: 'ScaleDownLimit', limited: 'rate' });
    s.record(0, 80, 72);
    // Inside the minute the budget is spent.
    expect(s.recommend(30 * S, 72, 10, 1, 100).desired).toBe(72);
    // Next minute: 10 % of 72 is 7.2, so 8 go (the count kept is rounded down).
    r = s.recommend(61 * S, 72, 10, 1, 100);
    expect(r.desired).toBe(64);
    // With 40 or fewer replicas the 4-pod policy is the larger change.
    expect(new HpaScaler(b).recommend(0, 30, 10, 1, 100).desired).toBe(26);
  });

  it('with selectPolicy Min removes no more than the smallest change (5 pods against 10 %)', () => {
    const s = new HpaScaler(resolveBehavior({ scaleDown: { stabilizationWindowSeconds: 0, selectPolicy: 'Min', policies: [{ type: 'Percent', value: 10, periodSeconds: 60 }, { type: 'Pods', value: 5, periodSeconds: 60 }] } }));
    expect(s.recommend(0, 100, 10, 1, 200).desired).toBe(95);
    const small = new HpaScaler(resolveBehavior({ scaleDown: { stabilizationWindowSeconds: 0, selectPolicy: 'Min', policies: [{ type: 'Percent', value: 10, periodSeconds: 60 }, { type: 'Pods', value: 5, periodSeconds: 60 }] } }));
    expect(small.recommend(0, 20, 10, 1, 200).desired).toBe(18);
  });

  it('keeps the highest recommendation of the down stabilization window (default 300 s)', () => {
    const s = new HpaScaler(defaultBehavior());
    // The first call seeds the history with the current count, as a restarted controller does.
    expect(s.recommend(0, 10, 4, 1, 100)).toEqual({ desired: 10, reason: 'ScaleDownStabilized', limited: 'stabilization' });
    expect(s.recommend(100 * S, 10, 6, 1, 100).desired).toBe(10);
    expect(s.recommend(299 * S, 10, 5, 1, 100).desired).toBe(10);
    // The seed of 10 has left the window; 6 (at 100 s) is the highest left.
    expect(s.recommend(301 * S, 10, 5, 1, 100)).toEqual({ desired: 6, reason: 'ScaleDownStabilized', limited: 'stabilization' });
    s.record(301 * S, 10, 6);
    expect(s.recommend(401 * S, 6, 5, 1, 100).desired).toBe(5);
  });

  it('keeps the lowest recommendation of an up stabilization window', () => {
    const s = new HpaScaler(resolveBehavior({ scaleUp: { stabilizationWindowSeconds: 60 } }));
    expect(s.recommend(0, 2, 2, 1, 100).desired).toBe(2);
    expect(s.recommend(15 * S, 2, 8, 1, 100)).toEqual({ desired: 2, reason: 'ScaleUpStabilized', limited: 'stabilization' });
    expect(s.recommend(30 * S, 2, 6, 1, 100).desired).toBe(2);
    // The 2 of t=0 is out; the lowest since is 6.
    expect(s.recommend(61 * S, 2, 9, 1, 100).desired).toBe(6);
  });

  it('does not scale in a Disabled direction but still honours min and max', () => {
    const s = new HpaScaler(resolveBehavior({ scaleDown: { selectPolicy: 'Disabled', stabilizationWindowSeconds: 0 } }));
    expect(s.recommend(0, 10, 2, 1, 100)).toEqual({ desired: 10, reason: 'ScaleDownDisabled', limited: 'rate' });
    expect(s.recommend(1 * S, 10, 2, 1, 8)).toEqual({ desired: 8, reason: 'TooManyReplicas', limited: 'max' });
    const up = new HpaScaler(resolveBehavior({ scaleUp: { selectPolicy: 'Disabled' } }));
    expect(up.recommend(0, 1, 5, 1, 10)).toEqual({ desired: 1, reason: 'ScaleUpDisabled', limited: 'rate' });
    expect(up.recommend(1 * S, 1, 5, 3, 10)).toEqual({ desired: 3, reason: 'TooFewReplicas', limited: 'min' });
  });

  it('scales to and from zero when minReplicas is 0', () => {
    const s = new HpaScaler(resolveBehavior({ scaleDown: { stabilizationWindowSeconds: 0 } }));
    expect(s.recommend(0, 3, 0, 0, 10).desired).toBe(0);
    s.record(0, 3, 0);
    // From zero: 100 % of 0 is 0, 4 pods is 4; the larger applies.
    expect(s.recommend(20 * S, 0, 7, 0, 10)).toEqual({ desired: 4, reason: 'ScaleUpLimit', limited: 'rate' });
    expect(s.recommend(40 * S, 0, 3, 0, 10).desired).toBe(3);
  });

  it('counts scale-down events in the up budget of the same period', () => {
    const s = new HpaScaler(resolveBehavior({ scaleDown: { stabilizationWindowSeconds: 0 }, scaleUp: { policies: [{ type: 'Pods', value: 2, periodSeconds: 60 }] } }));
    s.recommend(0, 10, 6, 1, 100);
    s.record(0, 10, 6);
    // The period started at 10: +2 allows 12 even though 6 are running.
    expect(s.recommend(10 * S, 6, 20, 1, 100).desired).toBe(12);
  });

  it('keeps its histories bounded by the longest window and period', () => {
    const s = new HpaScaler(defaultBehavior());
    for (let t = 0; t < 2000; t++) {
      s.recommend(t * S, 5, 5 + (t % 3), 1, 100);
      s.record(t * S, 5, 6);
    }
    const inner = s as any;
    expect(inner.recs.length).toBeLessThanOrEqual(301);
    expect(inner.ups.length).toBeLessThanOrEqual(16);
  });
});
