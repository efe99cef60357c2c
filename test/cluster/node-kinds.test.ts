import { describe, expect, it } from 'vitest';

import { ApiError } from '../../src/api/errors.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { tableRow } from '../../src/api/table.js';
import { MemoryStore } from '../../src/store/index.js';

const resources = () => new ResourceService(new MemoryStore(), builtinKinds());
const cells = (r: ResourceService, kind: string, obj: unknown) => tableRow(r.kind(kind), obj as never, 'None').cells;

async function refused(p: Promise<unknown>): Promise<string[]> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ApiError);
  return ((err as ApiError).details?.causes ?? []).map((c: { field?: string }) => String(c.field));
}

describe('Node and Lease kinds', () => {
  it('serves Node in the core group, cluster-scoped, and Lease in coordination.k8s.io', () => {
    const r = resources();
    expect(r.kind('no')).toMatchObject({ kind: 'Node', group: '', plural: 'nodes', namespaced: false });
    expect(r.kind('leases')).toMatchObject({ kind: 'Lease', group: 'coordination.k8s.io', version: 'v1', namespaced: true });
  });

  it('prints a node STATUS as kubectl does, with ROLES and VERSION', () => {
    const r = resources();
    const node = (ready: string | undefined, unschedulable?: boolean, labels: Record<string, string> = {}) => ({
      apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', labels, creationTimestamp: new Date().toISOString() },
      spec: unschedulable === undefined ? {} : { unschedulable },
      status: { nodeInfo: { kubeletVersion: 'v1.2.3' }, conditions: ready ? [{ type: 'Ready', status: ready }] : [] },
    });
    expect(cells(r, 'Node', node('True'))).toEqual(['n1', 'Ready', '<none>', expect.any(String), 'v1.2.3']);
    expect(cells(r, 'Node', node('False'))[1]).toBe('NotReady');
    expect(cells(r, 'Node', node('Unknown'))[1]).toBe('NotReady');
    expect(cells(r, 'Node', node(undefined))[1]).toBe('Unknown');
    expect(cells(r, 'Node', node('True', true))[1]).toBe('Ready,SchedulingDisabled');
    expect(cells(r, 'Node', node('True', false, { 'node-role.kubernetes.io/worker': '', 'node-role.kubernetes.io/control-plane': '' }))[2]).toBe('control-plane,worker');
  });

  it('prints a lease HOLDER', () => {
    const r = resources();
    expect(cells(r, 'Lease', { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'n1', namespace: 'kube-node-lease' }, spec: { holderIdentity: 'n1' } }).slice(0, 2)).toEqual(['n1', 'n1']);
  });

  it('accepts a valid Lease and refuses bad times and durations', async () => {
    const r = resources();
    const def = r.kind('Lease');
    const lease = (spec: Record<string, unknown>) => ({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: `l${Math.random().toString(36).slice(2, 8)}` }, spec });
    await r.create(def, 'kube-node-lease', lease({ holderIdentity: 'n1', leaseDurationSeconds: 40, acquireTime: '2026-01-02T15:04:05.123456Z', renewTime: '2026-01-02T15:04:05.123456Z', leaseTransitions: 0 }));
    expect(await refused(r.create(def, 'kube-node-lease', lease({ renewTime: 'yesterday' })))).toContain('spec.renewTime');
    expect(await refused(r.create(def, 'kube-node-lease', lease({ acquireTime: '2026-13-45' })))).toContain('spec.acquireTime');
    expect(await refused(r.create(def, 'kube-node-lease', lease({ leaseDurationSeconds: 0 })))).toContain('spec.leaseDurationSeconds');
    expect(await refused(r.create(def, 'kube-node-lease', lease({ leaseTransitions: -1 })))).toContain('spec.leaseTransitions');
  });

  it('accepts taints and refuses bad keys, effects and duplicates', async () => {
    const r = resources();
    const def = r.kind('Node');
    const node = (name: string, taints: unknown[]) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: { unschedulable: true, taints } });
    await r.create(def, undefined, node('ok', [{ key: 'example.com/dedicated', value: 'gpu', effect: 'NoSchedule' }, { key: 'example.com/dedicated', effect: 'NoExecute' }]));
    expect(await refused(r.create(def, undefined, node('bad-key', [{ key: 'no spaces', effect: 'NoSchedule' }])))).toContain('spec.taints[0].key');
    expect((await refused(r.create(def, undefined, node('bad-effect', [{ key: 'k', effect: 'Sometimes' }])))).join()).toContain('spec.taints[0].effect');
    expect(await refused(r.create(def, undefined, node('dup', [{ key: 'k', effect: 'NoSchedule' }, { key: 'k', value: 'x', effect: 'NoSchedule' }])))).toContain('spec.taints[1]');
  });
  it('serves EndpointSlice in discovery.k8s.io with its top-level fields checked', async () => {
    const r = resources();
    const def = r.kind('endpointslices');
    expect(def).toMatchObject({ kind: 'EndpointSlice', group: 'discovery.k8s.io', version: 'v1', namespaced: true });
    const slice = (extra: Record<string, unknown>) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `s${Math.random().toString(36).slice(2, 8)}`, labels: { 'kubernetes.io/service-name': 'hello' } }, ...extra });
    const { object: ok } = await r.create(def, 'default', slice({ addressType: 'IPv4', endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true }, nodeName: 'n2', targetRef: { kind: 'Function', name: 'hello' } }], ports: [{ name: 'mesh', port: 9443, protocol: 'TCP' }] }));
    expect(cells(r, 'EndpointSlice', ok).slice(0, 4)).toEqual([ok.metadata.name, 'IPv4', '9443', '127.0.0.1']);
    expect(await refused(r.create(def, 'default', slice({ endpoints: [] })))).toContain('addressType');
    expect((await refused(r.create(def, 'default', slice({ addressType: 'IPv4', endpoints: [{ addresses: [] }] })))).join()).toContain('endpoints');
    expect((await refused(r.create(def, 'default', slice({ addressType: 'IPv4', ports: [{ port: 70000 }] })))).join()).toContain('ports');
  });
});
