import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { functionKind } from '../../src/api/kinds/function.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import type { ResourceObject } from '../../src/api/kinds/types.js';
import { ResourceService } from '../../src/api/resources.js';
import { ManualClock } from '../../src/autoscaling/clock.js';
import { DRAIN_ANNOTATION, EndpointSliceWriter, Scheduler } from '../../src/cluster/index.js';
import { MemoryStore } from '../../src/store/index.js';

const logger = pino({ level: 'silent' });
const T0 = Date.parse('2026-03-01T12:00:00Z');

function setup() {
  const store = new MemoryStore();
  const resources = new ResourceService(store, builtinKinds());
  const clock = new ManualClock(T0);
  const scheduler = new Scheduler({ resources, logger, clock });
  const nodeDef = resources.kind('Node');
  const fnDef = resources.kind('Function');
  const addNode = async (name: string, opts: { labels?: Record<string, string>; memory?: string; classes?: string[]; spec?: Record<string, unknown> } = {}) => {
    const created = (await resources.create(nodeDef, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name, ...(opts.labels ?? {}) } }, spec: opts.spec ?? {} })).object;
    await resources.updateStatus(nodeDef, undefined, name, {
      metadata: { resourceVersion: created.metadata.resourceVersion },
      status: { allocatable: { cpu: '4', memory: opts.memory ?? '8Gi' }, capacity: { cpu: '4', memory: opts.memory ?? '8Gi' }, runtimeClasses: opts.classes ?? ['wasm', 'container'], conditions: [{ type: 'Ready', status: 'True', reason: 'SkiffReady', message: 'ok', lastHeartbeatTime: '2026-03-01T12:00:00Z', lastTransitionTime: '2026-03-01T12:00:00Z' }] },
    });
  };
  const patchNode = async (name: string, patch: Record<string, unknown>) => resources.patch(nodeDef, undefined, name, patch);
  const addFn = async (name: string, spec: Record<string, unknown> = {}) =>
    resources.create(fnDef, 'default', { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name, namespace: 'default' }, spec: { runtimeClassName: 'container', image: 'oci://registry.test/app@sha256:' + 'a'.repeat(64), replicas: 2, ...spec } });
  const fn = (name: string) => resources.get(fnDef, 'default', name);
  const placement = async (name: string) => (await fn(name)).status?.placement as unknown;
  const condition = async (name: string) => ((await fn(name)).status?.conditions as Array<Record<string, string>> | undefined)?.find((c) => c.type === 'Scheduled');
  const events = async () => (await resources.list(resources.kind('Event'), 'default')).items as ResourceObject[];
  return { store, resources, clock, scheduler, addNode, patchNode, addFn, fn, placement, condition, events };
}

describe('Scheduler', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0)) await f();
  });

  async function started() {
    const s = setup();
    await s.resources.create(s.resources.kind('Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
    await s.scheduler.start();
    cleanup.push(() => s.scheduler.stop());
    return s;
  }

  it('spreads a Function over the ready nodes and records it with an Event and a condition', async () => {
    const s = await started();
    await s.addNode('node-a');
    await s.addNode('node-b');
    await s.addFn('web');
    await expect.poll(() => s.placement('web')).toEqual([
      { nodeName: 'node-a', replicas: 1 },
      { nodeName: 'node-b', replicas: 1 },
    ]);
    expect(await s.condition('web')).toMatchObject({ status: 'True', reason: 'Scheduled', message: '2 replica(s) on 2 node(s)' });
    await expect.poll(async () => (await s.events()).find((e) => e.reason === 'Scheduled')?.message).toBe('Successfully assigned default/web replicas: node-a=1, node-b=1');
    // Wasm Functions are not the scheduler's: they run on every node that matches.
    await s.resources.create(s.resources.kind('Function'), 'default', { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'mod', namespace: 'default' }, spec: { module: 'blob:sha256:' + 'b'.repeat(64) } });
    await s.scheduler.reconcile('default/mod');
    expect(await s.placement('mod')).toBeUndefined();
  });

  it('follows the autoscaler\'s desired count and keeps the replicas in place', async () => {
    const s = await started();
    await s.addNode('node-a');
    await s.addNode('node-b');
    await s.addFn('web', { replicas: 1 });
    await expect.poll(() => s.placement('web')).toEqual([{ nodeName: 'node-a', replicas: 1 }]);
    await s.resources.patch(s.resources.kind('Function'), 'default', 'web', { status: { desiredReplicas: 3 } }, { subresource: 'status' });
    await expect.poll(() => s.placement('web')).toEqual([
      { nodeName: 'node-a', replicas: 2 },
      { nodeName: 'node-b', replicas: 1 },
    ]);
  });

  it('says why replicas cannot be placed, and places them when a node that fits appears', async () => {
    const s = await started();
    await s.addNode('node-a', { spec: { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] } });
    await s.addNode('node-b', { classes: ['wasm'] });
    await s.addNode('node-c', { spec: { unschedulable: true } });
    await s.addFn('web', { nodeSelector: { zone: 'x' } });
    await expect.poll(async () => (await s.condition('web'))?.reason).toBe('Unschedulable');
    const message = "0/3 nodes are available: 1 node(s) did not have runtime class container, 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable, 3 node(s) didn't match Function's node affinity/selector.";
    expect(await s.condition('web')).toMatchObject({ status: 'False', message: `2 replica(s) could not be placed: ${message}` });
    await expect.poll(async () => (await s.events()).find((e) => e.reason === 'FailedScheduling')).toMatchObject({ type: 'Warning', message, count: 1 });
    expect(await s.placement('web')).toEqual([]);
    // The retries do not count the same failure again within the minute; after it they do.
    await s.scheduler.reconcile('default/web');
    expect((await s.events()).find((e) => e.reason === 'FailedScheduling')).toMatchObject({ count: 1 });
    s.clock.advance(60_000);
    await s.scheduler.reconcile('default/web');
    expect((await s.events()).find((e) => e.reason === 'FailedScheduling')).toMatchObject({ count: 2 });

    await s.addNode('node-d', { labels: { zone: 'x' } });
    await expect.poll(() => s.placement('web')).toEqual([{ nodeName: 'node-d', replicas: 2 }]);
    expect(await s.condition('web')).toMatchObject({ status: 'True' });
  });

  it('counts what other Functions placed against a node\'s allocatable memory', async () => {
    const s = await started();
    await s.addNode('node-a', { memory: '4Gi' });
    await s.addNode('node-b', { memory: '4Gi' });
    await s.addFn('one', { replicas: 1, resources: { memory: '3Gi' } });
    await expect.poll(() => s.placement('one')).toEqual([{ nodeName: 'node-a', replicas: 1 }]);
    await s.addFn('two', { replicas: 2, resources: { memory: '3Gi' } });
    await expect.poll(async () => (await s.condition('two'))?.reason).toBe('Unschedulable');
    expect(await s.placement('two')).toEqual([{ nodeName: 'node-b', replicas: 1 }]);
    expect((await s.condition('two'))?.message).toBe('1 replica(s) could not be placed: 0/2 nodes are available: 2 Insufficient memory.');
    // Deleting the first frees node-a.
    await s.resources.delete(s.resources.kind('Function'), 'default', 'one');
    await expect.poll(() => s.placement('two')).toEqual([
      { nodeName: 'node-a', replicas: 1 },
      { nodeName: 'node-b', replicas: 1 },
    ]);
  });

  it('applies the RuntimeClass\'s node selector and overhead', async () => {
    const s = await started();
    await s.addNode('node-a', { memory: '1Gi' });
    await s.addNode('node-b', { memory: '1Gi', labels: { 'skiff.dev/kvm': 'true' } });
    await s.resources.create(s.resources.kind('RuntimeClass'), undefined, { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'container' }, handler: 'bwrap', scheduling: { nodeSelector: { 'skiff.dev/kvm': 'true' } }, overhead: { podFixed: { memory: '256Mi' } } });
    await s.addFn('web', { replicas: 3, resources: { memory: '256Mi' } });
    await expect.poll(async () => (await s.condition('web'))?.reason).toBe('Unschedulable');
    // Two replicas of 256Mi plus 256Mi overhead fill node-b's 1Gi; node-a lacks the class's label.
    expect(await s.placement('web')).toEqual([{ nodeName: 'node-b', replicas: 2 }]);
    expect((await s.condition('web'))?.message).toBe("1 replica(s) could not be placed: 0/2 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Function's node affinity/selector.");
  });

  it('moves replicas off an unreachable node once the Function\'s toleration runs out', async () => {
    const s = await started();
    await s.addNode('node-a');
    await s.addNode('node-b');
    await s.addFn('web', { tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 5 }] });
    await expect.poll(() => s.placement('web')).toEqual([
      { nodeName: 'node-a', replicas: 1 },
      { nodeName: 'node-b', replicas: 1 },
    ]);
    // What the lifecycle controller does to a silent node.
    await s.patchNode('node-b', { spec: { taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute', timeAdded: '2026-03-01T12:00:00Z' }] } });
    await expect.poll(() => s.scheduler.nodes.get('node-b')?.spec?.taints?.length).toBe(1);
    s.clock.advance(4_000);
    expect(await s.scheduler.reconcile('default/web')).toMatchObject({ requeueAfterMs: 1_010 });
    expect(await s.placement('web')).toHaveLength(2);
    s.clock.advance(1_000);
    await s.scheduler.reconcile('default/web');
    expect(await s.placement('web')).toEqual([{ nodeName: 'node-a', replicas: 2 }]);
    await expect.poll(async () => (await s.events()).find((e) => e.reason === 'Rescheduled')?.message).toBe('moved 1 replica(s) off node node-b: taint {node.kubernetes.io/unreachable: } tolerated for 5s');
  });

  it('drains a node: new replicas first, the old ones go when those are ready, and forgets a node that is deleted', async () => {
    const s = await started();
    await s.addNode('node-a');
    await s.addNode('node-b');
    await s.addFn('web');
    await expect.poll(() => s.placement('web')).toHaveLength(2);
    await s.patchNode('node-b', { metadata: { annotations: { [DRAIN_ANNOTATION]: '2026-03-01T12:00:00Z' } }, spec: { unschedulable: true } });
    await expect.poll(() => s.placement('web')).toEqual([
      { nodeName: 'node-a', replicas: 2 },
      { nodeName: 'node-b', replicas: 1 },
    ]);
    // node-a reports both replicas ready in its EndpointSlice.
    await s.resources.create(s.resources.kind('EndpointSlice'), 'default', {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-node-a', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web', 'skiff.dev/node': 'node-a' } },
      addressType: 'IPv4',
      endpoints: [
        { addresses: ['127.0.0.1'], conditions: { ready: true } },
        { addresses: ['127.0.0.1'], conditions: { ready: true } },
      ],
      ports: [{ name: 'mesh', port: 7443 }],
    });
    await expect.poll(() => s.placement('web')).toEqual([{ nodeName: 'node-a', replicas: 2 }]);
    await expect.poll(async () => (await s.events()).find((e) => e.reason === 'Rescheduled')?.message).toBe('moved 1 replica(s) off node node-b: node is draining');

    await s.resources.delete(s.resources.kind('Node'), undefined, 'node-a');
    await expect.poll(async () => (await s.condition('web'))?.reason).toBe('Unschedulable');
    expect(await s.placement('web')).toEqual([]);
  });
});

describe('Scheduler and EndpointSlices', () => {
  it('removes the slices of a node that is not ready, and the node writes them again once back', async () => {
    const s = setup();
    await s.resources.create(s.resources.kind('Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
    await s.addNode('node-a');
    await s.addNode('node-b');
    await s.addFn('web');
    const writers = ['node-a', 'node-b'].map((n) => new EndpointSliceWriter({ resources: s.resources, logger, nodeName: n, mesh: () => ({ host: '127.0.0.1', port: 7443 }), rewriteDelayMs: 300 }));
    await Promise.all(writers.map((w) => w.start()));
    await s.scheduler.start();
    try {
      for (const w of writers) w.set('default', 'web', [{ ready: true }]);
      await Promise.all(writers.map((w) => w.settled()));
      const names = async () => (await s.resources.list(s.resources.kind('EndpointSlice'), 'default')).items.map((o) => o.metadata.name).sort();
      expect(await names()).toEqual(['web-node-a', 'web-node-b']);
      // node-b goes silent: what the lifecycle controller writes.
      const b = await s.resources.get(s.resources.kind('Node'), undefined, 'node-b');
      await s.resources.updateStatus(s.resources.kind('Node'), undefined, 'node-b', { metadata: { resourceVersion: b.metadata.resourceVersion }, status: { ...b.status, conditions: [{ type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown', message: 'silent', lastHeartbeatTime: '2026-03-01T12:00:00Z', lastTransitionTime: '2026-03-01T12:01:20Z' }] } });
      await expect.poll(names).toEqual(['web-node-a']);
      // The node (alive here) writes it back after a pause; the sweep takes it out again, at that pace and no faster.
      const rev = await s.store.revision();
      await new Promise((r) => setTimeout(r, 1_000));
      // A few create/delete pairs, with the events they cause, not hundreds.
      expect((await s.store.revision()) - rev).toBeLessThanOrEqual(20);
      // Its replica stays placed there until the toleration runs out.
      expect(((await s.placement('web')) as Array<{ nodeName: string }>).map((e) => e.nodeName)).toEqual(['node-a', 'node-b']);
      // Back: its writer notices the deletion and writes the slice again.
      const c = await s.resources.get(s.resources.kind('Node'), undefined, 'node-b');
      await s.resources.updateStatus(s.resources.kind('Node'), undefined, 'node-b', { metadata: { resourceVersion: c.metadata.resourceVersion }, status: { ...c.status, conditions: [{ type: 'Ready', status: 'True', reason: 'SkiffReady', message: 'back', lastHeartbeatTime: '2026-03-01T12:02:00Z', lastTransitionTime: '2026-03-01T12:02:00Z' }] } });
      await expect.poll(names).toEqual(['web-node-a', 'web-node-b']);
    } finally {
      await s.scheduler.stop();
      await Promise.all(writers.map((w) => w.stop()));
    }
  });
});

describe('Function placement fields', () => {
  const kind = functionKind;
  const validate = (spec: Record<string, unknown>) => kind.validate!({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'f', namespace: 'default' }, spec: { runtimeClassName: 'container', image: 'oci://r/a:1', ...spec } });

  it('accepts Kubernetes\' shapes and refuses operators without their values', () => {
    expect(validate({ nodeSelector: { zone: 'x' }, tolerations: [{ operator: 'Exists' }, { key: 'k', value: 'v', effect: 'NoExecute', tolerationSeconds: 5 }], affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['x'] }] }] } } } })).toEqual([]);
    const errs = validate({
      tolerations: [{ value: 'v' }, { key: 'k', operator: 'Exists', value: 'v' }, { key: 'k', effect: 'NoSchedule', tolerationSeconds: 3 }],
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'a', operator: 'In' }, { key: 'b', operator: 'Exists', values: ['x'] }, { key: 'c', operator: 'Gt', values: ['x'] }], matchFields: [{ key: 'metadata.labels', operator: 'In', values: ['n'] }] }] } } },
    });
    expect(errs.map((e) => e.field)).toEqual([
      'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values',
      'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values',
      'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[2].values',
      'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key',
      'spec.tolerations[0].operator',
      'spec.tolerations[1].value',
      'spec.tolerations[2].effect',
    ]);
  });
});
