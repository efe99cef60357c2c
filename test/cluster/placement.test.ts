import { describe, expect, it } from 'vitest';

import { eligibleForWasm, eviction, failureMessage, matchesNode, matchesRequirement, type NodeView, place, type PlacementRules, tolerates } from '../../src/cluster/placement.js';

const GI = 1024 ** 3;
const T0 = Date.parse('2026-03-01T12:00:00Z');

function node(name: string, over: Partial<NodeView> = {}): NodeView {
  return {
    name,
    labels: { 'kubernetes.io/hostname': name, ...(over.labels ?? {}) },
    ready: true,
    unschedulable: false,
    draining: false,
    taints: [],
    runtimeClasses: ['wasm', 'container'],
    allocatable: { cpuMillis: 4000, memoryBytes: 8 * GI },
    used: { cpuMillis: 0, memoryBytes: 0, replicas: 0 },
    ...over,
  };
}

function rules(over: Partial<PlacementRules> = {}): PlacementRules {
  return { runtimeClass: 'container', requests: { cpuMillis: 0, memoryBytes: 256 * 1024 ** 2 }, ...over };
}

describe('selectors and affinity', () => {
  it('matches every operator of a node selector requirement', () => {
    const labels = { zone: 'a', gen: '5' };
    expect(matchesRequirement({ key: 'zone', operator: 'In', values: ['a', 'b'] }, labels)).toBe(true);
    expect(matchesRequirement({ key: 'zone', operator: 'In', values: ['b'] }, labels)).toBe(false);
    expect(matchesRequirement({ key: 'zone', operator: 'NotIn', values: ['b'] }, labels)).toBe(true);
    expect(matchesRequirement({ key: 'missing', operator: 'NotIn', values: ['b'] }, labels)).toBe(true);
    expect(matchesRequirement({ key: 'zone', operator: 'Exists' }, labels)).toBe(true);
    expect(matchesRequirement({ key: 'zone', operator: 'DoesNotExist' }, labels)).toBe(false);
    expect(matchesRequirement({ key: 'gen', operator: 'Gt', values: ['4'] }, labels)).toBe(true);
    expect(matchesRequirement({ key: 'gen', operator: 'Lt', values: ['4'] }, labels)).toBe(false);
    expect(matchesRequirement({ key: 'zone', operator: 'Gt', values: ['4'] }, labels)).toBe(false);
  });

  it('ANDs the selector with the required terms, which are ORed', () => {
    const a = node('a', { labels: { zone: 'x', disk: 'ssd' } });
    const b = node('b', { labels: { zone: 'y' } });
    const r = rules({
      nodeSelector: { zone: 'x' },
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] }, { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['b'] }] }] } } },
    });
    expect(matchesNode(r, a)).toBe(true);
    expect(matchesNode(r, b)).toBe(false); // the second term matches b, the selector does not
    expect(matchesNode({ affinity: r.affinity }, b)).toBe(true);
    expect(matchesNode({ affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{}] } } } }, a)).toBe(false);
    expect(eligibleForWasm({ nodeSelector: { zone: 'y' } }, b)).toBe(true);
    expect(eligibleForWasm({ nodeSelector: { zone: 'y' } }, a)).toBe(false);
  });
});

describe('tolerations', () => {
  it('follows Kubernetes: empty key with Exists tolerates all, effect must match when set', () => {
    const taint = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' as const };
    expect(tolerates({ operator: 'Exists' }, taint)).toBe(true);
    expect(tolerates({ key: 'dedicated', value: 'gpu' }, taint)).toBe(true);
    expect(tolerates({ key: 'dedicated', value: 'cpu' }, taint)).toBe(false);
    expect(tolerates({ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }, taint)).toBe(false);
    expect(tolerates({ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }, taint)).toBe(true);
    expect(tolerates({ value: 'gpu' }, taint)).toBe(false);
  });
});

describe('place', () => {
  it('spreads replicas over nodes, least loaded first', () => {
    const r = place({ rules: rules(), desired: 4, nodes: [node('a'), node('b', { used: { cpuMillis: 0, memoryBytes: 0, replicas: 5 } }), node('c')], current: [], now: T0 });
    expect(r.placement).toEqual([
      { nodeName: 'a', replicas: 2 },
      { nodeName: 'b', replicas: 1 },
      { nodeName: 'c', replicas: 1 },
    ]);
    expect(r.unschedulable).toBe(0);
    expect(r.message).toBeUndefined();
  });

  it('keeps replicas where they are and scales down from the fullest node', () => {
    const nodes = [node('a'), node('b')];
    const up = place({ rules: rules(), desired: 3, nodes, current: [{ nodeName: 'b', replicas: 2 }], now: T0 });
    expect(up.placement).toEqual([
      { nodeName: 'a', replicas: 1 },
      { nodeName: 'b', replicas: 2 },
    ]);
    const down = place({ rules: rules(), desired: 2, nodes, current: up.placement, now: T0 });
    expect(down.placement).toEqual([
      { nodeName: 'a', replicas: 1 },
      { nodeName: 'b', replicas: 1 },
    ]);
    expect(place({ rules: rules(), desired: 0, nodes, current: up.placement, now: T0 }).placement).toEqual([]);
  });

  it('skips nodes that are not ready, cordoned, lack the class or are tainted, and says why', () => {
    const nodes = [
      node('a', { ready: false }),
      node('b', { unschedulable: true }),
      node('c', { runtimeClasses: ['wasm'] }),
      node('d', { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] }),
      node('e', { labels: { zone: 'y' } }),
    ];
    const r = place({ rules: rules({ nodeSelector: { zone: 'x' } }), desired: 2, nodes, current: [], now: T0 });
    expect(r.placement).toEqual([]);
    expect(r.unschedulable).toBe(2);
    expect(r.message).toBe(
      "0/5 nodes are available: 1 node(s) did not have runtime class container, 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were not ready, 1 node(s) were unschedulable, 5 node(s) didn't match Function's node affinity/selector.",
    );
  });

  it('places on a tainted node the Function tolerates, and prefers nodes without PreferNoSchedule taints', () => {
    const nodes = [node('a', { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] }), node('b', { taints: [{ key: 'spot', effect: 'PreferNoSchedule' }] })];
    const tol = rules({ tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }] });
    expect(place({ rules: tol, desired: 1, nodes, current: [], now: T0 }).placement).toEqual([{ nodeName: 'a', replicas: 1 }]);
    // Without the toleration, the PreferNoSchedule node is still usable.
    expect(place({ rules: rules(), desired: 2, nodes, current: [], now: T0 }).placement).toEqual([{ nodeName: 'b', replicas: 2 }]);
  });

  it('weighs preferred affinity terms', () => {
    const nodes = [node('a', { labels: { disk: 'hdd' } }), node('b', { labels: { disk: 'ssd' } })];
    const r = rules({ affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 50, preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] } }] } } });
    expect(place({ rules: r, desired: 1, nodes, current: [], now: T0 }).placement).toEqual([{ nodeName: 'b', replicas: 1 }]);
    // Spread still comes first: the second replica goes to the other node.
    expect(place({ rules: r, desired: 2, nodes, current: [], now: T0 }).placement).toEqual([
      { nodeName: 'a', replicas: 1 },
      { nodeName: 'b', replicas: 1 },
    ]);
  });

  it('fits requests against allocatable minus what is placed', () => {
    const nodes = [node('a', { allocatable: { cpuMillis: 1000, memoryBytes: GI }, used: { cpuMillis: 500, memoryBytes: 0, replicas: 1 } }), node('b', { allocatable: { cpuMillis: 4000, memoryBytes: GI } })];
    const r = place({ rules: rules({ requests: { cpuMillis: 500, memoryBytes: 512 * 1024 ** 2 } }), desired: 4, nodes, current: [], now: T0 });
    expect(r.placement).toEqual([
      { nodeName: 'a', replicas: 1 },
      { nodeName: 'b', replicas: 2 },
    ]);
    expect(r.unschedulable).toBe(1);
    expect(r.message).toBe('0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.');
  });

  it('reports an empty cluster', () => {
    expect(failureMessage(rules(), [], new Map())).toBe('0/0 nodes are available: no nodes registered.');
  });

  it('evicts from an untolerated NoExecute node at once and from the unreachable taint after the toleration', () => {
    const added = new Date(T0).toISOString();
    const unreachable = { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' as const, timeAdded: added };
    const nodes = [node('a', { ready: false, taints: [unreachable] }), node('b')];
    const current = [
      { nodeName: 'a', replicas: 1 },
      { nodeName: 'b', replicas: 1 },
    ];
    const r = rules({ tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 5 }] });
    const before = place({ rules: r, desired: 2, nodes, current, now: T0 + 4_000 });
    expect(before.placement).toEqual(current);
    expect(before.nextEvictionAt).toBe(T0 + 5_000);
    const after = place({ rules: r, desired: 2, nodes, current, now: T0 + 5_000 });
    expect(after.placement).toEqual([{ nodeName: 'b', replicas: 2 }]);
    expect(after.evicted).toEqual([{ nodeName: 'a', replicas: 1, reason: 'taint {node.kubernetes.io/unreachable: } tolerated for 5s' }]);
    // A toleration for a while does not let new replicas onto the node, even a ready one.
    const tainted = node('c', { taints: [unreachable] });
    expect(place({ rules: r, desired: 1, nodes: [tainted], current: [], now: T0 }).message).toBe('0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }.');
    expect(place({ rules: rules({ tolerations: [{ operator: 'Exists' }] }), desired: 1, nodes: [tainted], current: [], now: T0 }).placement).toEqual([{ nodeName: 'c', replicas: 1 }]);
    // No toleration given: Kubernetes' default of 300 s.
    expect(eviction(rules(), nodes[0]!, T0 + 299_000)).toEqual({ now: false, at: T0 + 300_000 });
    expect(eviction(rules(), nodes[0]!, T0 + 300_000).now).toBe(true);
    // Another NoExecute taint without a toleration evicts at once.
    expect(eviction(rules(), node('c', { taints: [{ key: 'maintenance', effect: 'NoExecute' }] }), T0)).toEqual({ now: true, reason: 'untolerated taint {maintenance: }' });
  });

  it('drains new replicas first: the old ones go once the new are ready', () => {
    const nodes = [node('a'), node('b', { unschedulable: true, draining: true })];
    const current = [
      { nodeName: 'a', replicas: 1 },
      { nodeName: 'b', replicas: 1 },
    ];
    const first = place({ rules: rules(), desired: 2, nodes, current, readyByNode: { a: 1, b: 1 }, now: T0 });
    expect(first.placement).toEqual([
      { nodeName: 'a', replicas: 2 },
      { nodeName: 'b', replicas: 1 },
    ]);
    expect(first.leaving).toBe(1);
    const done = place({ rules: rules(), desired: 2, nodes, current: first.placement, readyByNode: { a: 2, b: 1 }, now: T0 });
    expect(done.placement).toEqual([{ nodeName: 'a', replicas: 2 }]);
    expect(done.leaving).toBe(0);
    expect(done.evicted).toEqual([{ nodeName: 'b', replicas: 1, reason: 'node is draining' }]);
  });

  it('keeps a draining node\'s replicas when they have nowhere to go', () => {
    const nodes = [node('a', { runtimeClasses: ['wasm'] }), node('b', { unschedulable: true, draining: true })];
    const r = place({ rules: rules(), desired: 1, nodes, current: [{ nodeName: 'b', replicas: 1 }], readyByNode: { b: 1 }, now: T0 });
    expect(r.placement).toEqual([{ nodeName: 'b', replicas: 1 }]);
    expect(r.leaving).toBe(1);
    expect(r.unschedulable).toBe(1);
    expect(r.message).toContain('1 node(s) did not have runtime class container');
  });

  it('forgets replicas on nodes that are gone', () => {
    const r = place({ rules: rules(), desired: 1, nodes: [node('a')], current: [{ nodeName: 'zz', replicas: 1 }], now: T0 });
    expect(r.placement).toEqual([{ nodeName: 'a', replicas: 1 }]);
    expect(r.evicted).toEqual([{ nodeName: 'zz', replicas: 1, reason: 'node is gone' }]);
  });
});
