import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Agent, fetch } from 'undici';
import { afterAll,beforeAll, describe, expect, it } from 'vitest';

import { loadPolicies, WebhookServer } from '../../src/admission/index.js';

const FIX = join(import.meta.dirname, 'fixtures');
const cert = readFileSync(join(FIX, 'tls/cert.pem'));
const key = readFileSync(join(FIX, 'tls/key.pem'));

let server: WebhookServer;
let url = '';
// Verifies the server certificate against the test CA, as kube-apiserver does with caBundle.
const agent = new Agent({ connect: { ca: cert }, keepAliveTimeout: 10_000 });

/** review is an AdmissionReview shaped exactly as kube-apiserver sends it. */
function review(operation: string, object: Record<string, any> | null, oldObject: Record<string, any> | null = null, apiVersion = 'admission.k8s.io/v1') {
  const o = (object ?? oldObject)!;
  const [group, version] = String(o.apiVersion).includes('/') ? String(o.apiVersion).split('/') : ['', String(o.apiVersion)];
  const kind = { group, version, kind: o.kind };
  const resource = { group, version, resource: `${String(o.kind).toLowerCase()}s` };
  return {
    kind: 'AdmissionReview',
    apiVersion,
    request: {
      uid: `uid-${Math.random().toString(16).slice(2)}`,
      kind,
      resource,
      requestKind: kind,
      requestResource: resource,
      name: o.metadata.name,
      namespace: o.metadata.namespace,
      operation,
      userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
      object,
      oldObject,
      dryRun: false,
      options: { kind: operation === 'DELETE' ? 'DeleteOptions' : 'CreateOptions', apiVersion: 'meta.k8s.io/v1', fieldManager: 'kubectl-client-side-apply', fieldValidation: 'Strict' },
    },
  };
}

async function post(body: string | object, path = '/validate') {
  const res = await fetch(`${url}${path}`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, text, json: res.headers.get('content-type') === 'application/json' ? (JSON.parse(text) as { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; status?: { code: number; message: string }; warnings?: string[] } }) : undefined };
}

const pod = (name: string, labels: Record<string, string> = {}, ns = 'apps') => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels }, spec: { containers: [{ name: 'app', image: 'nginx' }] } });

beforeAll(async () => {
  const client = loadPolicies([join(FIX, 'templates/k8srequiredlabels.yaml'), join(FIX, 'constraints/must-have-owner.yaml'), join(FIX, 'constraints/must-have-owner-custom-msg.yaml'), join(FIX, 'templates/k8sruntimeclass.yaml'), join(FIX, 'constraints/untrusted-wasm-only.yaml'), join(FIX, 'objects/ns-untrusted.yaml'), join(FIX, 'objects/ns-apps.yaml'), join(FIX, 'objects/ns-pss.yaml')]);
  server = new WebhookServer({ cert, key, client, maxBodyBytes: 8 * 1024 * 1024 });
  const addr = await server.listen('127.0.0.1', 0);
  url = `https://localhost:${addr.port}`;
});

afterAll(async () => {
  await server?.close();
  await agent.close();
});

describe('skiff webhook: AdmissionReview over HTTPS', () => {
  it('allows a compliant object, echoing apiVersion and uid', async () => {
    const r = review('CREATE', pod('ok', { owner: 'me.agilebank.demo' }));
    const res = await post(r);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: r.request.uid, allowed: true } });
  });

  it('denies with status 403 and every message; warnings ride along', async () => {
    const r = review('CREATE', pod('bare'));
    const res = (await post(r)).json!;
    expect(res.response.uid).toBe(r.request.uid);
    expect(res.response.allowed).toBe(false);
    expect(res.response.status).toEqual({ code: 403, reason: 'Forbidden', message: '[must-have-owner] you must provide labels: {"owner"}' });
    // A namespace nobody synced cannot be matched by namespaceSelector: refused, as Gatekeeper does.
    const ghost = (await post(review('CREATE', pod('p', { owner: 'me.agilebank.demo' }, 'ghost')))).json!;
    expect(ghost.response.status?.message).toMatch(/\[untrusted-wasm-only\] could not evaluate: namespace "ghost" is not known/);
    expect(res.response.warnings).toEqual(['[must-have-owner-custom] every object needs an owner label']);
  });

  it('uses synced Namespaces for namespaceSelector (runtime class policy) and answers v1beta1 in kind', async () => {
    const deploy = (rc: string) => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'w', namespace: 'sandbox', labels: { owner: 'a.agilebank.demo' } }, spec: { template: { spec: { runtimeClassName: rc, containers: [{ name: 'w', image: 'x' }] } } } });
    const bad = (await post(review('CREATE', deploy('runc'), null, 'admission.k8s.io/v1beta1'))).json!;
    expect(bad.apiVersion).toBe('admission.k8s.io/v1beta1');
    expect(bad.response.status?.message).toMatch(/must run with runtimeClassName in \["wasm"\], not "runc"/);
    expect((await post(review('CREATE', deploy('wasm')))).json!.response.allowed).toBe(true);
  });

  it('applies Pod Security from synced Namespace labels: enforce denies, warn warns', async () => {
    const labels = { owner: 'me.agilebank.demo' };
    const host = { ...pod('h', labels, 'pss'), spec: { hostNetwork: true, containers: [{ name: 'app', image: 'nginx' }] } };
    const denied = (await post(review('CREATE', host))).json!;
    expect(denied.response.status?.message).toBe('violates PodSecurity "baseline:v1.29": host namespaces (hostNetwork=true)');
    const plain = (await post(review('CREATE', pod('p', labels, 'pss')))).json!;
    expect(plain.response.allowed).toBe(true);
    expect(plain.response.warnings?.[0]).toMatch(/^would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false/);
  });

  it('reviews UPDATE with oldObject and DELETE (object null, oldObject set)', async () => {
    expect((await post(review('UPDATE', pod('p', { owner: 'x.agilebank.demo' }), pod('p')))).json!.response.allowed).toBe(true);
    const del = (await post(review('DELETE', null, pod('gone')))).json!;
    expect(del.response.allowed).toBe(false);
    expect(del.response.status?.message).toContain('you must provide labels');
  });

  it('answers malformed JSON and a missing request with allowed=false, code 400', async () => {
    const bad = await post('{"kind":"AdmissionReview",');
    expect(bad.status).toBe(200);
    expect(bad.json!.response).toMatchObject({ uid: '', allowed: false, status: { code: 400, message: expect.stringMatching(/cannot decode the AdmissionReview/) } });
    const noReq = (await post({ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1' })).json!;
    expect(noReq.response).toMatchObject({ allowed: false, status: { code: 400, message: 'the AdmissionReview has no "request" object' } });
    const noObj = (await post({ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1', request: { uid: 'u1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE' } })).json!;
    expect(noObj.response).toMatchObject({ uid: 'u1', allowed: false, status: { code: 400 } });
    const wrongKind = (await post({ kind: 'Pod', apiVersion: 'v1' })).json!;
    expect(wrongKind.response.status?.code).toBe(400);
  });

  it('reviews a 3 MB object, and refuses a body over the limit with HTTP 413', async () => {
    const big = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'big', namespace: 'apps' }, data: { blob: 'x'.repeat(3 * 1024 * 1024) } };
    const res = await post(review('CREATE', big));
    expect(res.status).toBe(200);
    expect(res.json!.response.allowed).toBe(true);
    const huge = await post(review('CREATE', { ...big, data: { blob: 'x'.repeat(9 * 1024 * 1024) } }));
    expect(huge.status).toBe(413);
  });

  it('answers health checks and refuses other methods', async () => {
    const h = await fetch(`${url}/healthz`, { dispatcher: agent });
    expect(h.status).toBe(200);
    expect(await h.text()).toBe('ok\n');
    expect((await fetch(`${url}/validate`, { dispatcher: agent, method: 'PUT', body: '{}' })).status).toBe(405);
  });
});

describe('skiff webhook with evaluation worker threads', () => {
  it('answers the same verdicts from a pool, and refuses to start on policies that do not load', async () => {
    const { EvalPool } = await import('../../src/admission/index.js');
    const { pool, counts } = await EvalPool.start({ policies: [join(FIX, 'templates/k8srequiredlabels.yaml'), join(FIX, 'constraints/must-have-owner.yaml')] }, 2);
    const pooled = new WebhookServer({ cert, key, evaluate: (b) => pool.evaluate(b) });
    try {
      expect(counts).toEqual({ templates: 1, constraints: 1, inventory: 0 });
      const addr = await pooled.listen('127.0.0.1', 0);
      const answers = await Promise.all([pod('bare'), pod('ok', { owner: 'me.agilebank.demo' }), pod('bare2')].map(async (p) => {
        const res = await fetch(`https://localhost:${addr.port}/validate`, { method: 'POST', dispatcher: agent, body: JSON.stringify(review('CREATE', p)) });
        return ((await res.json()) as { response: { allowed: boolean; status?: { message: string } } }).response;
      }));
      expect(answers.map((a) => a.allowed)).toEqual([false, true, false]);
      expect(answers[0]!.status?.message).toBe('[must-have-owner] you must provide labels: {"owner"}');
    } finally {
      await pooled.close();
      await pool.close();
    }
    await expect(EvalPool.start({ policies: [join(FIX, 'constraints/must-have-owner.yaml')] }, 2)).rejects.toThrow(/no ConstraintTemplate defines kind K8sRequiredLabels/);
  });
});
