import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { addressTypeOf, EndpointSliceWriter, sliceName } from '../../src/cluster/index.js';
import { MemoryStore } from '../../src/store/index.js';

const logger = pino({ level: 'silent' });

async function setup(mesh: { host: string; port: number } | null = { host: '10.0.0.7', port: 7443 }) {
  const store = new MemoryStore();
  const resources = new ResourceService(store, builtinKinds());
  await resources.create(resources.kind('Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
  const fn = (await resources.create(resources.kind('Function'), 'default', { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'web', namespace: 'default' }, spec: { runtimeClassName: 'container', image: 'oci://r/a:1' } })).object;
  let at = mesh ?? undefined;
  const writer = new EndpointSliceWriter({ resources, logger, nodeName: 'node-a', mesh: () => at });
  await writer.start();
  const slice = () => resources.tryGet(resources.kind('EndpointSlice'), 'default', 'web-node-a');
  return { store, resources, fn, writer, slice, setMesh: (m: { host: string; port: number }) => (at = m) };
}

describe('EndpointSliceWriter', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0)) await f();
  });

  it('tries a failed write again, backing off, until it lands', async () => {
    const store = new MemoryStore();
    const resources = new ResourceService(store, builtinKinds());
    await resources.create(resources.kind('Namespace'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
    await resources.create(resources.kind('Function'), 'default', { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'web', namespace: 'default' }, spec: { module: 'sha256:00' } });
    // The store refuses the first three creates, as etcd does while it has no quorum.
    let refusals = 3;
    const create = resources.create.bind(resources);
    resources.create = (async (...args: Parameters<typeof create>) => {
      if (args[0].kind === 'EndpointSlice' && refusals-- > 0) throw new Error('etcd unavailable');
      return create(...args);
    }) as typeof create;
    const writer = new EndpointSliceWriter({ resources, logger, nodeName: 'node-a', mesh: () => ({ host: '10.0.0.7', port: 7443 }), retryMs: 10 });
    cleanup.push(() => writer.stop());
    await writer.start();
    // Set once, as a Wasm Function's slice is when it starts serving: nothing else would ask again.
    writer.set('default', 'web', [{ ready: true }]);
    await writer.settled();
    expect(await resources.tryGet(resources.kind('EndpointSlice'), 'default', 'web-node-a')).toBeUndefined();
    await expect.poll(() => resources.tryGet(resources.kind('EndpointSlice'), 'default', 'web-node-a'), { timeout: 2_000 }).toMatchObject({ endpoints: [{ conditions: { ready: true } }] });
    expect(refusals).toBe(-1);
  });

  it('stops trying again once stopped', async () => {
    const s = await setup();
    let calls = 0;
    s.resources.create = (async () => {
      calls++;
      throw new Error('etcd unavailable');
    }) as typeof s.resources.create;
    const writer = new EndpointSliceWriter({ resources: s.resources, logger, nodeName: 'node-b', mesh: () => ({ host: '10.0.0.8', port: 7443 }), retryMs: 10 });
    await writer.start();
    writer.set('default', 'web', [{ ready: true }]);
    await expect.poll(() => calls, { timeout: 2_000 }).toBeGreaterThanOrEqual(2);
    await writer.stop();
    await s.writer.stop();
    const after = calls;
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toBe(after);
  });

  it('lists a node\'s replicas of a Function at its mesh address, writing only on change', async () => {
    const s = await setup();
    cleanup.push(() => s.writer.stop());
    s.writer.set('default', 'web', [{ ready: true }, { ready: false }]);
    await s.writer.settled();
    const first = await s.slice();
    expect(first).toMatchObject({
      metadata: {
        labels: { 'kubernetes.io/service-name': 'web', 'skiff.dev/node': 'node-a', 'endpointslice.kubernetes.io/managed-by': 'node-agent.skiff.dev' },
        ownerReferences: [{ kind: 'Function', name: 'web', uid: s.fn.metadata.uid, controller: true }],
      },
      addressType: 'IPv4',
      endpoints: [
        { addresses: ['10.0.0.7'], conditions: { ready: true, serving: true }, nodeName: 'node-a', targetRef: { kind: 'Function', namespace: 'default', name: 'web', uid: s.fn.metadata.uid } },
        { addresses: ['10.0.0.7'], conditions: { ready: false, serving: false }, nodeName: 'node-a' },
      ],
      ports: [{ name: 'mesh', port: 7443, protocol: 'TCP' }],
    });
    // The same again is no write (the watchers would all receive it).
    await expect.poll(() => s.writer.informer.get('default/web-node-a') !== undefined).toBe(true);
    const rev = await s.store.revision();
    s.writer.set('default', 'web', [{ ready: true }, { ready: false }]);
    await s.writer.settled();
    expect(await s.store.revision()).toBe(rev);
    // A change is.
    s.writer.set('default', 'web', [{ ready: true }, { ready: true }]);
    await s.writer.settled();
    expect((await s.slice())!.endpoints).toHaveLength(2);
    expect(((await s.slice())!.endpoints as Array<{ conditions: { ready: boolean } }>).every((e) => e.conditions.ready)).toBe(true);
    // None left: the slice goes.
    s.writer.remove('default', 'web');
    await s.writer.settled();
    expect(await s.slice()).toBeUndefined();
  });

  it('waits for the mesh address, and removes the slice of a Function that is gone', async () => {
    const s = await setup(null);
    cleanup.push(() => s.writer.stop());
    s.writer.set('default', 'web', [{ ready: true }]);
    await s.writer.settled();
    expect(await s.slice()).toBeUndefined();
    s.setMesh({ host: 'fd00::7', port: 9443 });
    s.writer.resync();
    await s.writer.settled();
    expect(await s.slice()).toMatchObject({ addressType: 'IPv6', ports: [{ port: 9443 }] });
    await s.resources.delete(s.resources.kind('Function'), 'default', 'web');
    // The API collects no owner references: a restarted node prunes what it finds.
    const restarted = new EndpointSliceWriter({ resources: s.resources, logger, nodeName: 'node-a', mesh: () => ({ host: 'fd00::7', port: 9443 }) });
    await restarted.start();
    cleanup.push(() => restarted.stop());
    await expect.poll(() => restarted.informer.get('default/web-node-a') !== undefined).toBe(true);
    await restarted.prune();
    expect(await s.slice()).toBeUndefined();
  });

  it('names slices FUNCTION-NODE, hashed when too long, and types addresses', () => {
    expect(sliceName('web', 'node-a')).toBe('web-node-a');
    const long = sliceName('a'.repeat(40), 'node-' + 'b'.repeat(40));
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^a{40}-node-b+-[0-9a-f]{10}$/);
    expect(sliceName('a'.repeat(40), 'node-' + 'c'.repeat(40))).not.toBe(long);
    expect([addressTypeOf('127.0.0.1'), addressTypeOf('::1'), addressTypeOf('node-a.example')]).toEqual(['IPv4', 'IPv6', 'FQDN']);
  });
});
