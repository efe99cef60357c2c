import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SYNC_MANAGER } from '../../src/gitops/sync/index.js';

import { fn, HEX, SyncHarness } from './sync-harness.js';

const TEMPLATE = readFileSync(join(import.meta.dirname, '..', 'admission', 'fixtures', 'templates', 'k8srequiredlabels.yaml'), 'utf8');
const POLL = { timeout: 10_000, interval: 20 };

let h: SyncHarness;

beforeAll(async () => {
  h = new SyncHarness();
  await h.start();
});

afterAll(async () => {
  await h?.stop();
});

describe('Sync applies a source revision', () => {
  it('applies with ownership labels, updates, prunes removed objects, and records the inventory', async () => {
    await h.publish('app', 'main@sha1:1111', { 'deploy/hello.yaml': fn('hello'), 'deploy/other.yaml': fn('other'), 'deploy/README.md': '# not applied', 'outside.yaml': fn('outside') });
    await h.createSync('app', { path: './deploy', prune: true });
    await expect.poll(async () => h.ready(await h.getSync('app')).status, POLL).toBe('True');
    const hello = await h.get('Function', 'default', 'hello');
    expect(hello?.metadata.labels).toMatchObject({ 'sync.skiff.dev/name': 'app', 'sync.skiff.dev/namespace': 'default' });
    expect((hello?.metadata.managedFields as Array<{ manager: string }>).some((m) => m.manager === SYNC_MANAGER)).toBe(true);
    expect(await h.get('Function', 'default', 'outside')).toBeUndefined();
    const s1 = await h.getSync('app');
    expect(s1.status.lastAppliedRevision).toBe('main@sha1:1111');
    expect(s1.status.inventory.entries.map((e: { id: string }) => e.id).sort()).toEqual(['default_hello_skiff.dev_Function', 'default_other_skiff.dev_Function']);

    await h.publish('app', 'main@sha1:2222', { 'deploy/hello.yaml': fn('hello', { env: { GREETING: 'hi' } }) });
    await expect.poll(async () => (await h.getSync('app')).status.lastAppliedRevision, POLL).toBe('main@sha1:2222');
    expect((await h.get('Function', 'default', 'hello'))?.spec.env).toEqual({ GREETING: 'hi' });
    expect(await h.get('Function', 'default', 'other')).toBeUndefined();
    expect((await h.getSync('app')).status.lastPruned).toBe(1);
    expect((await h.events('app')).some((e) => e.startsWith('Pruned: pruned Function default/other'))).toBe(true);
  });

  it('deletes its objects with it when a pruning Sync is deleted', async () => {
    await h.publish('gone', 'main@sha1:g1', { 'a.yaml': fn('gone-a') });
    await h.createSync('gone', { prune: true });
    await expect.poll(async () => (await h.getSync('gone')).status?.lastAppliedRevision, POLL).toBe('main@sha1:g1');
    await h.resources.delete(h.resources.kind('Sync'), 'default', 'gone');
    await expect.poll(async () => h.get('Function', 'default', 'gone-a'), POLL).toBeUndefined();
  });

  it('refuses an object another Sync already applies', async () => {
    await h.publish('owner1', 'main@sha1:o1', { 'a.yaml': fn('shared') });
    await h.createSync('owner1', {});
    await expect.poll(async () => (await h.getSync('owner1')).status?.lastAppliedRevision, POLL).toBe('main@sha1:o1');
    await h.publish('owner2', 'main@sha1:o2', { 'a.yaml': fn('shared', { env: { B: '1' } }) });
    await h.createSync('owner2', {});
    await expect.poll(async () => h.ready(await h.getSync('owner2')).reason, POLL).toBe('ApplyFailed');
    expect(h.ready(await h.getSync('owner2')).message).toContain('Function default/shared (a.yaml:1) is already applied by Sync default/owner1');
    expect((await h.get('Function', 'default', 'shared'))?.spec.env).toBeUndefined();
  });

  it('does not prune with prune: false, and never prunes an object without its ownership labels', async () => {
    await h.publish('keep', 'main@sha1:1', { 'a.yaml': fn('keep-a'), 'b.yaml': fn('keep-b') });
    await h.createSync('keep', { prune: false });
    await expect.poll(async () => (await h.getSync('keep')).status?.lastAppliedRevision, POLL).toBe('main@sha1:1');
    await h.publish('keep', 'main@sha1:2', { 'a.yaml': fn('keep-a') });
    await expect.poll(async () => (await h.getSync('keep')).status?.lastAppliedRevision, POLL).toBe('main@sha1:2');
    expect(await h.get('Function', 'default', 'keep-b')).toBeDefined();

    // Someone replaces an object with one of their own (no ownership labels) while the Sync is
    // suspended: when a revision without it is applied, a pruning Sync leaves it alone.
    const sdef = h.resources.kind('Sync');
    await h.resources.patch(sdef, 'default', 'keep', { spec: { suspend: true, prune: true } });
    await expect.poll(async () => h.ready(await h.getSync('keep')).reason, POLL).toBe('Suspended');
    const fdef = h.resources.kind('Function');
    await h.resources.delete(fdef, 'default', 'keep-a');
    await h.resources.create(fdef, 'default', JSON.parse(fn('keep-a', {}, { namespace: 'default' })));
    await h.publish('keep', 'main@sha1:3', { 'c.yaml': fn('keep-c') });
    await h.resources.patch(sdef, 'default', 'keep', { spec: { suspend: false } });
    await expect.poll(async () => (await h.getSync('keep')).status?.lastAppliedRevision, POLL).toBe('main@sha1:3');
    expect(await h.get('Function', 'default', 'keep-c')).toBeDefined();
    expect(await h.get('Function', 'default', 'keep-a')).toBeDefined();
    expect((await h.getSync('keep')).status.lastPruned).toBe(0);
  });

  it('reverts a hand edit and names the drifted field in an Event and status.drift', async () => {
    await h.publish('drift', 'main@sha1:d1', { 'f.yaml': fn('drifty', { env: { MODE: 'prod' } }) });
    // An hour's interval: the revert comes from watching the owned object, not from the interval.
    await h.createSync('drift', { interval: '1h' });
    await expect.poll(async () => (await h.getSync('drift')).status?.lastAppliedRevision, POLL).toBe('main@sha1:d1');
    await h.resources.patch(h.resources.kind('Function'), 'default', 'drifty', { spec: { env: { MODE: 'debug' } } }, { fieldManager: 'kubectl-edit' });
    await expect.poll(async () => (await h.get('Function', 'default', 'drifty'))?.spec.env.MODE, POLL).toBe('prod');
    await expect.poll(async () => (await h.events('drift')).find((e) => e.startsWith('DriftCorrected')), POLL).toContain('spec.env.MODE');
    const st = (await h.getSync('drift')).status;
    expect(st.drift.lastCorrected).toBeTruthy();
    // A deleted object is drift too.
    await h.resources.delete(h.resources.kind('Function'), 'default', 'drifty');
    await expect.poll(async () => (await h.get('Function', 'default', 'drifty'))?.spec.env.MODE, POLL).toBe('prod');
  });

  it('refuses a broken manifest naming file and line, and keeps the previous revision', async () => {
    await h.publish('broken', 'main@sha1:b1', { 'f.yaml': fn('steady', { env: { V: '1' } }) });
    await h.createSync('broken', {});
    await expect.poll(async () => (await h.getSync('broken')).status?.lastAppliedRevision, POLL).toBe('main@sha1:b1');
    await h.publish('broken', 'main@sha1:b2', { 'f.yaml': fn('steady', { env: { V: '2' } }), 'g.yaml': 'apiVersion: skiff.dev/v1\nkind: Function\nmetadata:\n  name: x\n  labels: [oops\n' });
    await expect.poll(async () => (await h.getSync('broken')).status?.lastAttemptedRevision, POLL).toBe('main@sha1:b2');
    const s = await h.getSync('broken');
    expect(s.status.lastAppliedRevision).toBe('main@sha1:b1');
    expect(h.ready(s)).toMatchObject({ status: 'False', reason: 'BuildFailed' });
    expect(h.ready(s).message).toMatch(/g\.yaml:\d+:\d+:/);
    expect((await h.get('Function', 'default', 'steady'))?.spec.env.V).toBe('1');
    expect((await h.events('broken')).some((e) => e.startsWith('ApplyFailed: revision main@sha1:b2'))).toBe(true);
  });

  it('applies a ConstraintTemplate and its constraint in one revision; a later revision the constraint refuses applies nothing', async () => {
    const constraint = JSON.stringify({ apiVersion: 'constraints.gatekeeper.sh/v1beta1', kind: 'K8sRequiredLabels', metadata: { name: 'need-owner' }, spec: { match: { kinds: [{ apiGroups: ['skiff.dev'], kinds: ['Function'] }], namespaces: ['team'] }, parameters: { labels: [{ key: 'owner' }] } } });
    await h.publish('policies', 'main@sha1:p1', { 'template.yaml': TEMPLATE, 'constraint.yaml': constraint });
    await h.createSync('policies', { prune: true });
    await expect.poll(async () => h.ready(await h.getSync('policies')), POLL).toMatchObject({ status: 'True' });
    expect((await h.getSync('policies')).status.inventory.entries.map((e: { id: string }) => e.id)).toContain('_need-owner_constraints.gatekeeper.sh_K8sRequiredLabels');

    await h.publish('team', 'main@sha1:t1', { 'f.yaml': fn('svc', {}, { labels: { owner: 'me' } }), 'g.yaml': fn('svc2', {}, { labels: { owner: 'me' } }) });
    await h.createSync('team', { targetNamespace: 'team', dependsOn: [{ name: 'policies' }] });
    await expect.poll(async () => (await h.getSync('team')).status?.lastAppliedRevision, POLL).toBe('main@sha1:t1');
    // Wait until the constraint decides, then commit a Function without the label beside a valid change.
    await expect.poll(async () => (await h.resources.apply(h.resources.kind('Function'), 'team', 'probe', JSON.parse(fn('probe', {}, { namespace: 'team' })), { fieldManager: 't', dryRun: true }).then(() => 'allowed', (e: Error) => e.message)), POLL).toMatch(/owner/);
    await h.publish('team', 'main@sha1:t2', { 'f.yaml': fn('svc', { env: { NEW: '1' } }, { labels: { owner: 'me' } }), 'g.yaml': fn('svc2') });
    await expect.poll(async () => (await h.getSync('team')).status?.lastAttemptedRevision, POLL).toBe('main@sha1:t2');
    const s = await h.getSync('team');
    expect(s.status.lastAppliedRevision).toBe('main@sha1:t1');
    expect(h.ready(s)).toMatchObject({ status: 'False', reason: 'ApplyFailed' });
    expect(h.ready(s).message).toContain('Function team/svc2 (g.yaml:1) was refused');
    expect(h.ready(s).message).toContain('need-owner');
    expect((await h.get('Function', 'team', 'svc'))?.spec.env).toBeUndefined();
  });

  it('rolls back a revision that does not become healthy, and does not retry it until the source changes', async () => {
    await h.publish('roll', 'main@sha1:r1', { 'f.yaml': fn('roller', { env: { V: '1' } }) });
    await h.createSync('roll', { wait: true, timeout: '1s', prune: true });
    await expect.poll(async () => (await h.getSync('roll')).status?.lastHealthyRevision, POLL).toBe('main@sha1:r1');
    await h.publish('roll', 'main@sha1:r2', { 'f.yaml': fn('roller', { env: { V: '2', BROKEN: '1' } }), 'new.yaml': fn('added-by-r2') });
    await expect.poll(async () => (await h.getSync('roll')).status?.lastAttemptedRevision, POLL).toBe('main@sha1:r2');
    const s = await h.getSync('roll');
    expect(h.ready(s)).toMatchObject({ status: 'False', reason: 'RolledBack' });
    expect(s.status.lastAppliedRevision).toBe('main@sha1:r1');
    expect((await h.get('Function', 'default', 'roller'))?.spec.env).toEqual({ V: '1' });
    expect(await h.get('Function', 'default', 'added-by-r2')).toBeUndefined();
    expect((await h.events('roll')).some((e) => e.startsWith('RolledBack: rolled back to main@sha1:r1'))).toBe(true);
    // Another pass leaves the rolled-back revision alone.
    h.sync.controller.enqueue('default/roll');
    await h.sync.controller.idle();
    expect((await h.get('Function', 'default', 'roller'))?.spec.env).toEqual({ V: '1' });
  });

  it('waits for dependsOn, stays put while suspended, and honours targetNamespace', async () => {
    await h.createSync('late', { dependsOn: [{ name: 'first' }], targetNamespace: 'apps' });
    await h.publish('late', 'main@sha1:l1', { 'f.yaml': fn('late-fn', {}, { namespace: 'elsewhere' }) });
    await expect.poll(async () => h.ready(await h.getSync('late')).reason, POLL).toBe('DependencyNotReady');
    expect(await h.get('Function', 'apps', 'late-fn')).toBeUndefined();
    await h.createSync('first', {});
    await h.publish('first', 'main@sha1:f1', { 'f.yaml': fn('first-fn') });
    await expect.poll(async () => (await h.getSync('late')).status?.lastAppliedRevision, POLL).toBe('main@sha1:l1');
    expect(await h.get('Function', 'apps', 'late-fn')).toBeDefined();

    await h.resources.patch(h.resources.kind('Sync'), 'default', 'late', { spec: { suspend: true } });
    await expect.poll(async () => h.ready(await h.getSync('late')).reason, POLL).toBe('Suspended');
    await h.publish('late', 'main@sha1:l2', { 'f.yaml': fn('late-fn', { env: { X: '1' } }) });
    h.sync.controller.enqueue('default/late');
    await h.sync.controller.idle();
    expect((await h.get('Function', 'apps', 'late-fn'))?.spec.env).toBeUndefined();
    await h.resources.patch(h.resources.kind('Sync'), 'default', 'late', { spec: { suspend: false } });
    await expect.poll(async () => (await h.get('Function', 'apps', 'late-fn'))?.spec.env, POLL).toEqual({ X: '1' });
  });

  it('stores a module committed beside its manifest as a blob', async () => {
    const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
    await h.publish('mod', 'main@sha1:m1', { 'fns/hello/function.yaml': fn('modfn', { module: './hello.wasm' }), 'fns/hello/hello.wasm': wasm });
    await h.createSync('mod', { path: 'fns' });
    await expect.poll(async () => (await h.get('Function', 'default', 'modfn'))?.spec.module, POLL).toMatch(/^blob:sha256:[0-9a-f]{64}$/);
    const f = (await h.get('Function', 'default', 'modfn'))!;
    expect(f.metadata.annotations?.['skiff.dev/module-source']).toBe('fns/hello/hello.wasm');
    expect(await h.blobs.has(String(f.spec.module).slice('blob:sha256:'.length))).toEqual({ size: wasm.length });
  });

  it('stores a Rollout\'s canary module committed beside it as a blob', async () => {
    const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
    const rollout = 'apiVersion: skiff.dev/v1\nkind: Rollout\nmetadata: { name: ro }\nspec:\n  functionRef: { name: modfn2 }\n  routeRef: { name: modfn2 }\n  canary: { module: ./next.wasm }\n  strategy: { canary: { steps: [{ setWeight: 50 }] } }\n';
    await h.publish('romod', 'main@sha1:r1', { 'app/rollout.yaml': rollout, 'app/next.wasm': wasm });
    await h.createSync('romod', { path: 'app' });
    await expect.poll(async () => (await h.get('Rollout', 'default', 'ro'))?.spec.canary.module, POLL).toMatch(/^blob:sha256:[0-9a-f]{64}$/);
    const ro = (await h.get('Rollout', 'default', 'ro'))!;
    expect(await h.blobs.has(String(ro.spec.canary.module).slice('blob:sha256:'.length))).toEqual({ size: wasm.length });
  });

  it('leaves the fields a Rollout drives alone and still corrects the others', async () => {
    await h.publish('deleg', 'main@sha1:x1', { 'f.yaml': fn('canaried', { env: { A: '1' } }) });
    await h.createSync('deleg', {});
    await expect.poll(async () => (await h.getSync('deleg')).status?.lastAppliedRevision, POLL).toBe('main@sha1:x1');
    const def = h.resources.kind('Function');
    await h.resources.apply(def, 'default', 'canaried', { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'canaried', namespace: 'default', annotations: { 'rollout.skiff.dev/name': 'canaried' } }, spec: { module: `blob:sha256:${HEX('b')}` } }, { fieldManager: 'skiff-rollout', force: true });
    await h.resources.patch(def, 'default', 'canaried', { spec: { env: { A: 'edited' } } }, { fieldManager: 'kubectl-edit' });
    h.sync.controller.enqueue('default/deleg');
    await expect.poll(async () => (await h.get('Function', 'default', 'canaried'))?.spec.env.A, POLL).toBe('1');
    const f = (await h.get('Function', 'default', 'canaried'))!;
    expect(f.spec.module).toBe(`blob:sha256:${HEX('b')}`);
    const ev = (await h.events('deleg')).find((e) => e.startsWith('DriftCorrected'))!;
    expect(ev).toContain('spec.env.A');
    expect(ev).not.toContain('spec.module');
  });

  it('refuses a spec.path or a module that leaves the artifact', async () => {
    await expect(h.createSync('escape', { path: '../other' })).rejects.toThrow(/spec.path/);
    await expect(h.createSync('escape', { path: '/etc' })).rejects.toThrow(/spec.path/);
    await h.publish('sneaky', 'main@sha1:s1', { 'f.yaml': fn('sneaky', { module: '../../../etc/passwd' }) });
    await h.createSync('sneaky', {});
    await expect.poll(async () => h.ready(await h.getSync('sneaky')).reason, POLL).toBe('BuildFailed');
    expect(h.ready(await h.getSync('sneaky')).message).toMatch(/f\.yaml:1: spec\.module: .* leaves the Git repository's artifact/);
    expect(await h.get('Function', 'default', 'sneaky')).toBeUndefined();
  });
});
