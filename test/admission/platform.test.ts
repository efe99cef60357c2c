import { join } from 'node:path';

import pino from 'pino';
import { afterAll,beforeAll, describe, expect, it } from 'vitest';

import { AdmissionPlatform, auditObjects, readObjects } from '../../src/admission/index.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { MemoryStore } from '../../src/store/index.js';

const FIX = join(import.meta.dirname, 'fixtures');
const logger = pino({ level: 'silent' });

/** A Skiff API (memory store) with admission wired in as `skiff up` does, on a free loopback port. */
let base = '';
let store: MemoryStore;
let server: ApiServer;
let platform: AdmissionPlatform;

async function req(method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, { method, headers: { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json', authorization: 'Bearer tok' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {}, warning: res.headers.get('warning') ?? '' };
}

async function until<T>(fn: () => Promise<T | undefined>, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const fn = (name: string, ns: string, extra: Record<string, unknown> = {}, labels: Record<string, string> = {}) => ({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name, namespace: ns, labels }, spec: { module: 'hello.wasm', ...extra } });
const ct = (name: string) => readObjects(join(FIX, 'templates', `${name}.yaml`))[0];
const constraint = (kind: string, name: string, spec: Record<string, unknown>) => ({ apiVersion: 'constraints.gatekeeper.sh/v1beta1', kind, metadata: { name }, spec });
const CT = '/apis/templates.gatekeeper.sh/v1/constrainttemplates';
const RL = '/apis/constraints.gatekeeper.sh/v1beta1/k8srequiredlabels';

beforeAll(async () => {
  store = new MemoryStore();
  const resources = new ResourceService(store, builtinKinds());
  platform = new AdmissionPlatform({ resources, logger, auditIntervalMs: 0 });
  resources.addAdmissionHook(platform.hook);
  await platform.start();
  server = new ApiServer({ resources, logger, version: 't', token: 'tok' });
  const { port } = await server.listen('127.0.0.1', 0);
  base = `http://127.0.0.1:${port}`;
  for (const ns of ['default', 'team-a']) expect((await req('POST', '/apis/skiff.dev/v1/namespaces', { apiVersion: 'skiff.dev/v1', kind: 'Namespace', metadata: { name: ns } })).status).toBe(201);
});

afterAll(async () => {
  await server?.close();
  await platform?.stop();
  await store?.close();
});

describe('admission in the Skiff API', () => {
  it('serves ConstraintTemplates, refuses bad ones with the reason, and serves the constraint kind a template creates', async () => {
    const cel = await req('POST', CT, ct('k8scelonly'));
    expect(cel.status).toBe(422);
    expect(JSON.stringify(cel.body)).toMatch(/only engine is CEL/);
    expect((await req('POST', CT, ct('k8srequiredlabels'))).status).toBe(201);
    await until(async () => ((await req('GET', RL)).status === 200 ? true : undefined), 'the K8sRequiredLabels kind');
    const bad = await req('POST', RL, constraint('K8sRequiredLabels', 'bad', { parameters: { labels: 'owner' } }));
    expect(bad.status).toBe(422);
    expect(JSON.stringify(bad.body)).toMatch(/spec.parameters.labels must be array/);
  });

  it('denies with HTTP 403 listing every violation; warns with Warning headers; dry run is checked but not stored', async () => {
    const labels = () => ({ kinds: [{ apiGroups: ['skiff.dev'], kinds: ['Function'] }], namespaces: ['team-*'] });
    expect((await req('POST', RL, constraint('K8sRequiredLabels', 'need-owner', { match: labels(), parameters: { labels: [{ key: 'owner' }] } }))).status).toBe(201);
    expect((await req('POST', RL, constraint('K8sRequiredLabels', 'need-team', { match: labels(), parameters: { labels: [{ key: 'team' }] } }))).status).toBe(201);
    expect((await req('POST', RL, constraint('K8sRequiredLabels', 'want-docs', { enforcementAction: 'warn', match: labels(), parameters: { labels: [{ key: 'docs' }] } }))).status).toBe(201);
    expect((await req('POST', RL, constraint('K8sRequiredLabels', 'maybe-cost', { enforcementAction: 'dryrun', match: { kinds: [{ apiGroups: ['skiff.dev'], kinds: ['Function'] }] }, parameters: { labels: [{ key: 'cost' }] } }))).status).toBe(201);
    const path = '/apis/skiff.dev/v1/namespaces/team-a/functions';
    const denied = await until(async () => {
      const r = await req('POST', path, fn('f1', 'team-a'));
      return r.status === 403 && /need-team/.test(r.body.message) ? r : undefined;
    }, 'constraints to take effect');
    expect(denied.body.kind).toBe('Status');
    expect(denied.body.message).toContain('[need-owner] you must provide labels: {"owner"}');
    expect(denied.body.message).toContain('[need-team] you must provide labels: {"team"}');
    expect(denied.body.message).not.toContain('cost');
    // Warnings ride along with the 403, as Kubernetes sends them.
    expect(denied.warning).toContain('[want-docs] you must provide labels: {\\"docs\\"}');

    const dry = await req('POST', `${path}?dryRun=All`, fn('f2', 'team-a', {}, { owner: 'o', team: 't' }));
    expect(dry.status).toBe(201);
    expect(dry.warning).toContain('[want-docs] you must provide labels: {\\"docs\\"}');
    expect((await req('GET', `${path}/f2`)).status).toBe(404);
    expect((await req('POST', `${path}?dryRun=All`, fn('f2', 'team-a'))).status).toBe(403);

    const ok = await req('POST', path, fn('f3', 'team-a', {}, { owner: 'o', team: 't', docs: 'd' }));
    expect(ok.status).toBe(201);
    expect(ok.warning).toBe('');
    // Outside the matched namespaces nothing applies.
    expect((await req('POST', '/apis/skiff.dev/v1/namespaces/default/functions', fn('f4', 'default'))).status).toBe(201);
    // UPDATE goes through admission too.
    const upd = await req('PUT', `${path}/f3`, fn('f3', 'team-a', {}, { owner: 'o' }));
    expect(upd.status).toBe(403);
    expect(upd.body.message).toContain('need-team');
    // DELETE is not reviewed (Gatekeeper's default operations), so a non-compliant object can go.
    const del = await platform.hook.admit({ operation: 'DELETE', kind: 'Function', namespace: 'team-a', name: 'old', oldObject: fn('old', 'team-a') as never, dryRun: false, userInfo: { username: 'u', groups: [] } });
    expect(del).toEqual({ allowed: true });
  });

  it('applies Pod Security to Functions from namespace labels: enforce refuses, warn warns', async () => {
    const nsPath = '/apis/skiff.dev/v1/namespaces';
    expect((await req('POST', nsPath, { apiVersion: 'skiff.dev/v1', kind: 'Namespace', metadata: { name: 'locked', labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } })).status).toBe(201);
    expect((await req('POST', nsPath, { apiVersion: 'skiff.dev/v1', kind: 'Namespace', metadata: { name: 'watched', labels: { 'pod-security.kubernetes.io/warn': 'restricted', 'pod-security.kubernetes.io/warn-version': 'v1.30' } } })).status).toBe(201);
    const rw = { capabilities: { dirs: [{ host: '/srv', guest: '/data' }] } };
    const locked = await req('POST', `${nsPath}/locked/functions`, fn('rw', 'locked', rw));
    expect(locked.status).toBe(403);
    expect(locked.body.message).toMatch(/violates PodSecurity "restricted:latest": restricted volume types/);
    expect((await req('POST', `${nsPath}/locked/functions`, fn('ro', 'locked', { capabilities: { dirs: [{ host: '/srv', guest: '/data', readOnly: true }] } }))).status).toBe(201);
    const watched = await req('POST', `${nsPath}/watched/functions`, fn('rw', 'watched', rw));
    expect(watched.status).toBe(201);
    expect(watched.warning).toMatch(/would violate PodSecurity \\"restricted:v1.30\\"/);
  });

  it('fills data.inventory from the store for referential constraints', async () => {
    const tpl = {
      apiVersion: 'templates.gatekeeper.sh/v1',
      kind: 'ConstraintTemplate',
      metadata: { name: 'uniquemodule' },
      spec: {
        crd: { spec: { names: { kind: 'UniqueModule' } } },
        targets: [
          {
            target: 'admission.k8s.gatekeeper.sh',
            rego: 'package uniquemodule\nsame(ns, name) { ns == input.review.object.metadata.namespace; name == input.review.object.metadata.name }\nviolation[{"msg": msg}] {\n  other := data.inventory.namespace[ns]["skiff.dev/v1"]["Function"][name]\n  other.spec.module == input.review.object.spec.module\n  not same(ns, name)\n  msg := sprintf("module %v is already served by %v/%v", [other.spec.module, ns, name])\n}',
          },
        ],
      },
    };
    expect((await req('POST', CT, tpl)).status).toBe(201);
    const kindPath = '/apis/constraints.gatekeeper.sh/v1beta1/uniquemodule';
    await until(async () => ((await req('GET', kindPath)).status === 200 ? true : undefined), 'the UniqueModule kind');
    expect((await req('POST', kindPath, constraint('UniqueModule', 'one-fn-per-module', { match: { kinds: [{ apiGroups: ['skiff.dev'], kinds: ['Function'] }] } }))).status).toBe(201);
    const path = '/apis/skiff.dev/v1/namespaces/default/functions';
    expect((await req('POST', path, { ...fn('first', 'default'), spec: { module: 'shared.wasm' } })).status).toBe(201);
    const dup = await until(async () => {
      const r = await req('POST', path, { ...fn('second', 'default'), spec: { module: 'shared.wasm' } });
      return r.status === 403 ? r : undefined;
    }, 'the inventory to hold the first function');
    expect(dup.body.message).toContain('[one-fn-per-module] module shared.wasm is already served by default/first');
    // Namespaces are where Kubernetes templates look for them.
    expect(platform.client.inventory.tree.cluster['v1']?.['Namespace']?.['team-a']).toMatchObject({ kind: 'Namespace', metadata: { name: 'team-a' } });
    // Namespaces are core objects now: none is left under the old skiff.dev/v1 alias.
    expect(platform.client.inventory.tree.cluster['skiff.dev/v1']?.['Namespace']).toBeUndefined();
    expect((await req('DELETE', `${CT}/uniquemodule`)).status).toBe(200);
  });

  it('audits stored objects into each constraint status as Gatekeeper reports them', async () => {
    const results = await platform.audit();
    expect(results.find((r) => r.name === 'maybe-cost')!.totalViolations).toBeGreaterThan(0);
    const st = (await req('GET', `${RL}/need-owner`)).body.status;
    expect(st.totalViolations).toBe(0);
    const cost = (await req('GET', `${RL}/maybe-cost`)).body.status;
    expect(cost.totalViolations).toBeGreaterThanOrEqual(3);
    expect(cost.auditTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(cost.violations).toContainEqual({ enforcementAction: 'dryrun', group: 'skiff.dev', version: 'v1', kind: 'Function', name: 'f3', namespace: 'team-a', message: 'you must provide labels: {"cost"}' });
  });

  it('caps the listed violations but keeps the exact total', () => {
    const objs = [1, 2, 3].map((i) => fn(`x${i}`, 'default'));
    const res = auditObjects(platform.client, objs, 1).find((r) => r.name === 'maybe-cost')!;
    expect(res.totalViolations).toBe(3);
    expect(res.violations).toHaveLength(1);
  });

  it('runs an audit when a constraint is annotated (what `skiff audit` does) and drops the kind with its template', async () => {
    const before = (await req('GET', `${RL}/need-team`)).body.status?.auditTimestamp;
    await new Promise((r) => setTimeout(r, 1100));
    expect((await req('PATCH', `${RL}/need-team`, { metadata: { annotations: { 'audit.skiff.dev/requested': new Date().toISOString() } } })).status).toBe(200);
    await until(async () => {
      const ts = (await req('GET', `${RL}/need-team`)).body.status?.auditTimestamp;
      return ts && ts !== before ? ts : undefined;
    }, 'an audit after the annotation');
    expect((await req('DELETE', `${CT}/k8srequiredlabels`)).status).toBe(200);
    await until(async () => ((await req('GET', RL)).status === 404 ? true : undefined), 'the constraint kind to go');
    expect((await req('POST', '/apis/skiff.dev/v1/namespaces/team-a/functions', fn('free', 'team-a'))).status).toBe(201);
  });
});

describe('periodic audit', () => {
  it('audits on its own at the configured interval and stops cleanly', async () => {
    const st = new MemoryStore();
    const resources = new ResourceService(st, builtinKinds());
    const p = new AdmissionPlatform({ resources, logger, auditIntervalMs: 50 });
    resources.addAdmissionHook(p.hook);
    try {
      await p.start();
      await resources.create(resources.kind('ConstraintTemplate'), undefined, ct('k8srequiredlabels'));
      const def = await until(async () => resources.kinds.byPluralName('k8srequiredlabels', 'constraints.gatekeeper.sh'), 'the constraint kind');
      await resources.create(resources.kind('Namespace'), undefined, { apiVersion: 'skiff.dev/v1', kind: 'Namespace', metadata: { name: 'n1' } });
      await resources.create(def, undefined, constraint('K8sRequiredLabels', 'ns-owner', { enforcementAction: 'dryrun', match: { kinds: [{ apiGroups: ['skiff.dev'], kinds: ['Namespace'] }] }, parameters: { labels: [{ key: 'owner' }] } }));
      const status = await until(async () => {
        const s = (await resources.get(def, undefined, 'ns-owner')).status;
        return s?.totalViolations === 1 ? s : undefined;
      }, 'a periodic audit');
      expect(status.violations[0]).toMatchObject({ kind: 'Namespace', name: 'n1', enforcementAction: 'dryrun' });
    } finally {
      await p.stop();
      await st.close();
    }
  });
});
