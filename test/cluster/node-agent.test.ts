import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { ManualClock } from '../../src/autoscaling/clock.js';
import { defaultNodeName, NODE_STATUS_UNKNOWN, NodeAgent, NodeLifecycleController } from '../../src/cluster/index.js';
import { MemoryStore } from '../../src/store/index.js';

const logger = pino({ level: 'silent' });
const T0 = Date.parse('2026-03-01T12:00:00Z');
const host = { cpus: 6, memoryBytes: 8 * 1024 ** 3, os: 'linux', arch: 'x64', kernel: '6.1.0', hostname: 'Box-1' };

function setup() {
  const store = new MemoryStore();
  const resources = new ResourceService(store, builtinKinds());
  const clock = new ManualClock(T0);
  let classes = ['wasm', 'container'];
  const agent = new NodeAgent({ resources, logger, nodeName: 'box-1', version: '1.2.3', host, clock, renewMs: 0, runtimeClasses: async () => classes });
  const node = () => resources.get(resources.kind('Node'), undefined, 'box-1');
  const lease = () => resources.get(resources.kind('Lease'), 'kube-node-lease', 'box-1');
  return { store, resources, clock, agent, node, lease, setClasses: (c: string[]) => (classes = c) };
}

const ready = (n: { status?: { conditions?: Array<{ type: string }> } }) => n.status?.conditions?.find((c) => c.type === 'Ready') as Record<string, string> | undefined;

describe('defaultNodeName', () => {
  it('lower-cases the host name into a DNS name', () => {
    expect(defaultNodeName('Build-Box.Example.COM')).toBe('build-box.example.com');
    expect(defaultNodeName('my_host')).toBe('my-host');
    expect(defaultNodeName('_')).toBe('node');
  });
});

describe('NodeAgent', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0)) await f();
  });

  it('registers its Node with the host\'s capacity and runtime classes, and a Lease', async () => {
    const { agent, node, lease, resources } = setup();
    cleanup.push(() => agent.stop());
    await agent.start();
    const n = await node();
    expect(n.status).toMatchObject({
      capacity: { cpu: '6', memory: `${8 * 1024 * 1024}Ki` },
      allocatable: { cpu: '6', memory: `${8 * 1024 * 1024}Ki` },
      runtimeClasses: ['container', 'wasm'],
      addresses: [{ type: 'Hostname', address: 'Box-1' }],
      nodeInfo: { kubeletVersion: 'v1.2.3', operatingSystem: 'linux', architecture: 'x64', kernelVersion: '6.1.0' },
    });
    expect(n.metadata.labels).toMatchObject({ 'kubernetes.io/hostname': 'box-1', 'skiff.dev/runtime-class-wasm': 'true', 'skiff.dev/runtime-class-container': 'true' });
    expect(n.metadata.labels!['skiff.dev/runtime-class-vm']).toBeUndefined();
    expect(ready(n)).toMatchObject({ status: 'True', lastHeartbeatTime: '2026-03-01T12:00:00Z' });
    const l = await lease();
    expect(l.spec).toEqual({ holderIdentity: 'box-1', leaseDurationSeconds: 40, acquireTime: '2026-03-01T12:00:00.000000Z', renewTime: '2026-03-01T12:00:00.000000Z' });
    expect((await resources.get(resources.kind('Namespace'), undefined, 'kube-node-lease')).metadata.name).toBe('kube-node-lease');
  });

  it('renews the Lease at every tick but rewrites the Node only when it changed or a minute passed', async () => {
    const { agent, node, lease, clock, setClasses } = setup();
    cleanup.push(() => agent.stop());
    await agent.start();
    const rv = (await node()).metadata.resourceVersion;
    clock.advance(10_000);
    await agent.tick();
    expect((await lease()).spec.renewTime).toBe('2026-03-01T12:00:10.000000Z');
    expect((await node()).metadata.resourceVersion).toBe(rv);
    clock.advance(50_000);
    setClasses(['wasm', 'container', 'vm']);
    await agent.tick();
    const n = await node();
    expect(n.metadata.resourceVersion).not.toBe(rv);
    expect(ready(n)!.lastHeartbeatTime).toBe('2026-03-01T12:01:00Z');
    expect(n.status.runtimeClasses).toEqual(['container', 'vm', 'wasm']);
    expect(n.metadata.labels!['skiff.dev/runtime-class-vm']).toBe('true');
  });

  it('writes nothing after stop()', async () => {
    const { agent, store, clock } = setup();
    await agent.start();
    await agent.stop();
    const rev = await store.revision();
    clock.advance(120_000);
    await agent.tick();
    await agent.tick();
    expect(await store.revision()).toBe(rev);
  });

  it('stops on a timer too: no renewal lands after stop() resolves', async () => {
    const { store, resources } = setup();
    const agent = new NodeAgent({ resources, logger, nodeName: 'box-1', version: '1.2.3', host, renewMs: 5, runtimeClasses: async () => ['wasm'] });
    await agent.start();
    await expect.poll(async () => (await resources.get(resources.kind('Lease'), 'kube-node-lease', 'box-1')).metadata.resourceVersion !== undefined).toBe(true);
    await expect.poll(async () => Number((await resources.get(resources.kind('Lease'), 'kube-node-lease', 'box-1')).metadata.resourceVersion), { timeout: 5_000 }).toBeGreaterThan(3);
    await agent.stop();
    const rev = await store.revision();
    await new Promise((r) => setTimeout(r, 50));
    expect(await store.revision()).toBe(rev);
  });
});

describe('NodeLifecycleController', () => {
  it('marks a node Unknown when its Lease is not renewed, with an Event, and Ready again when it is', async () => {
    const { agent, node, resources, clock } = setup();
    await agent.start();
    const lifecycle = new NodeLifecycleController({ resources, logger, clock, graceMs: 40_000 });
    await lifecycle.start();
    try {
      await expect.poll(() => lifecycle.nodes.get('box-1') !== undefined && lifecycle.leases.get('kube-node-lease/box-1') !== undefined).toBe(true);
      // Within the lease's 40 s and the 40 s grace nothing changes.
      clock.advance(79_000);
      expect(await lifecycle.reconcile('box-1')).toMatchObject({ requeueAfterMs: 2_000 });
      expect(ready(await node())!.status).toBe('True');

      clock.advance(1_000);
      await lifecycle.reconcile('box-1');
      const silent = ready(await node())!;
      expect(silent).toMatchObject({ status: 'Unknown', reason: NODE_STATUS_UNKNOWN, lastHeartbeatTime: '2026-03-01T12:00:00Z', lastTransitionTime: '2026-03-01T12:01:20Z' });
      const events = (await resources.list(resources.kind('Event'), undefined)).items;
      expect(events.find((e) => e.reason === NODE_STATUS_UNKNOWN)).toMatchObject({ type: 'Warning', involvedObject: { kind: 'Node', name: 'box-1' } });
      // The taint the scheduler evicts by, timed from the transition.
      expect((await node()).spec.taints).toEqual([{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute', timeAdded: '2026-03-01T12:01:20Z' }]);

      // Heartbeats resume: the renewed Lease brings the node back.
      clock.advance(5_000);
      await agent.tick();
      await expect.poll(() => lifecycle.leases.get('kube-node-lease/box-1')?.spec.renewTime).toBe('2026-03-01T12:01:25.000000Z');
      await expect.poll(async () => ready(await node())!.status).toBe('True');
      await lifecycle.reconcile('box-1');
      expect(ready(await node())!.status).toBe('True');
      // The Lease is fresh again: the taint goes, whoever set Ready first.
      await expect.poll(async () => (await node()).spec.taints).toBeUndefined();
    } finally {
      await lifecycle.stop();
      await agent.stop();
    }
  });

  it('times the taint from the transition rounded up to a whole second, so no toleration runs short', async () => {
    const { resources, clock, node } = setup();
    const lifecycle = new NodeLifecycleController({ resources, logger, clock, graceMs: 0 });
    await resources.create(resources.kind('Node'), undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'box-1' } });
    await resources.create(resources.kind('Lease'), 'kube-node-lease', { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'box-1' }, spec: { holderIdentity: 'box-1', leaseDurationSeconds: 10, renewTime: '2026-03-01T12:00:00.000000Z' } });
    await lifecycle.start();
    try {
      await expect.poll(() => lifecycle.leases.get('kube-node-lease/box-1') !== undefined && lifecycle.nodes.get('box-1') !== undefined).toBe(true);
      clock.advance(10_700);
      await lifecycle.reconcile('box-1');
      const n = await node();
      expect(ready(n)).toMatchObject({ status: 'Unknown', lastTransitionTime: '2026-03-01T12:00:10Z' });
      // Counted from 12:00:10Z a 2 s toleration would end 0.7 s short of two seconds after the transition.
      expect(n.spec.taints).toEqual([{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute', timeAdded: '2026-03-01T12:00:11Z' }]);
    } finally {
      await lifecycle.stop();
    }
  });

  it('brings a node back itself once its Lease is renewed, without the agent touching the Node', async () => {
    const { resources, clock, node } = setup();
    const lifecycle = new NodeLifecycleController({ resources, logger, clock, graceMs: 0 });
    const leaseDef = resources.kind('Lease');
    await resources.create(resources.kind('Node'), undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'box-1' } });
    const spec = { holderIdentity: 'box-1', leaseDurationSeconds: 10, renewTime: '2026-03-01T12:00:00.000000Z' };
    await resources.create(leaseDef, 'kube-node-lease', { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'box-1' }, spec });
    await lifecycle.start();
    try {
      await expect.poll(() => lifecycle.leases.get('kube-node-lease/box-1') !== undefined && lifecycle.nodes.get('box-1') !== undefined).toBe(true);
      clock.advance(10_000);
      await lifecycle.reconcile('box-1');
      await expect.poll(async () => ready(await node())?.status).toBe('Unknown');
      await resources.update(leaseDef, 'kube-node-lease', 'box-1', { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'box-1' }, spec: { ...spec, renewTime: '2026-03-01T12:00:10.000000Z' } });
      // The renewal reaches the controller through its Lease watch; nothing else calls it.
      await expect.poll(async () => ready(await node())).toMatchObject({ status: 'True', reason: 'SkiffReady' });
    } finally {
      await lifecycle.stop();
    }
  });
});
