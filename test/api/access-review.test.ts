import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { authorizeResource, rulesFor } from '../../src/api/authz.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import { objectFromProtobuf, readMessage } from '../../src/api/protobuf.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { MemoryStore } from '../../src/store/index.js';

const SSAR = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';
const SSRR = '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews';
const SSR = '/apis/authentication.k8s.io/v1/selfsubjectreviews';
const PROTOBUF = 'application/vnd.kubernetes.protobuf';

// A minimal protobuf writer for the test's own messages (string and message fields only).
const varint = (n: number) => {
  const out: number[] = [];
  do {
    out.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n);
  return Buffer.from(out);
};
const field = (n: number, bytes: Buffer | string) => {
  const b = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return Buffer.concat([varint((n << 3) | 2), varint(b.length), b]);
};
const fields = (...parts: Buffer[]) => Buffer.concat(parts);
/** A body in Kubernetes' protobuf envelope: "k8s\0", then runtime.Unknown {typeMeta, raw}. */
const envelope = (apiVersion: string, kind: string, raw: Buffer) => Buffer.concat([Buffer.from('k8s\0'), field(1, fields(field(1, apiVersion), field(2, kind))), field(2, raw)]);
const accessReview = (attrs: Record<string, string>) => {
  const order = ['namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name'];
  const ra = fields(...order.map((k, i) => field(i + 1, attrs[k] ?? '')));
  return envelope('authorization.k8s.io/v1', 'SelfSubjectAccessReview', fields(field(1, Buffer.alloc(0)), field(2, field(1, ra))));
};

let store: MemoryStore;
let server: ApiServer;
let base: string;

beforeAll(async () => {
  store = new MemoryStore();
  server = new ApiServer({ resources: new ResourceService(store, builtinKinds()), logger: pino({ level: 'silent' }), version: 'test', token: 'user-token', controllerToken: 'ctl-token' });
  base = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
});
afterAll(async () => {
  await server.close();
  await store.close();
});

async function post(path: string, body: Buffer | string, contentType: string, token = 'user-token') {
  const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': contentType, authorization: `Bearer ${token}` }, body });
  return { status: res.status, body: (await res.json()) as any };
}

describe('SelfSubjectAccessReview', () => {
  it('decodes the protobuf kubectl sends (bytes as captured from kubectl auth can-i create functions)', async () => {
    const captured = Buffer.from(
      '6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f763112175365' +
        '6c665375626a6563744163636573735265766965771' +
        '24d0a100a0012001a0022002a00320038004200122f0a2d0a0764656661756c7412066372656174651a09736b6966662e646576220' +
        '02a0966756e6374696f6e7332003a001a08080012001a0020001a00220' +
        '0',
      'hex',
    );
    const r = await post(SSAR, captured, PROTOBUF);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', status: { allowed: true } });
    expect(r.body.spec.resourceAttributes).toEqual({ namespace: 'default', verb: 'create', group: 'skiff.dev', resource: 'functions' });
  });

  it('refuses status writes to the user token and allows them to the controller token', async () => {
    const attrs = { namespace: 'default', verb: 'update', group: 'skiff.dev', resource: 'functions', subresource: 'status' };
    const user = await post(SSAR, accessReview(attrs), PROTOBUF);
    expect(user.body.status).toEqual({ allowed: false, denied: true, reason: expect.stringMatching(/status subresource is written by controllers only/) });
    const ctl = await post(SSAR, accessReview(attrs), PROTOBUF, 'ctl-token');
    expect(ctl.body.status.allowed).toBe(true);
    // Reading the status is anyone's.
    expect((await post(SSAR, accessReview({ ...attrs, verb: 'get' }), PROTOBUF)).body.status.allowed).toBe(true);
  });

  it('gives the same answer the server acts on', async () => {
    const fn = { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'a' }, spec: { module: '/m.wasm' } };
    const auth = { 'content-type': 'application/json', authorization: 'Bearer user-token' };
    expect((await fetch(`${base}/apis/skiff.dev/v1/namespaces/default/functions`, { method: 'POST', headers: auth, body: JSON.stringify(fn) })).status).toBe(201);
    const write = await fetch(`${base}/apis/skiff.dev/v1/namespaces/default/functions/a/status`, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/merge-patch+json' }, body: '{"status":{"digest":"x"}}' });
    expect(write.status).toBe(403);
    const review = await post(SSAR, JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { verb: 'patch', group: 'skiff.dev', resource: 'functions', subresource: 'status', name: 'a', namespace: 'default' } } }), 'application/json');
    expect(review.body.status.allowed).toBe(false);
    expect(((await write.json()) as any).message).toBe(review.body.status.reason);
  });

  it('answers non-resource paths and JSON bodies, and refuses bad reviews', async () => {
    const nr = await post(SSAR, JSON.stringify({ spec: { nonResourceAttributes: { path: '/version', verb: 'get' } } }), 'application/json');
    expect(nr.body.status.allowed).toBe(true);
    const neither = await post(SSAR, JSON.stringify({ spec: {} }), 'application/json');
    expect(neither.status).toBe(422);
    expect(neither.body.message).toMatch(/exactly one of nonResourceAttributes or resourceAttributes/);
    const wrongKind = await post(SSAR, JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectRulesReview', spec: {} }), 'application/json');
    expect(wrongKind.status).toBe(400);
    const truncated = await post(SSAR, accessReview({ verb: 'get' }).subarray(0, 30), PROTOBUF);
    expect(truncated.status).toBe(400);
    expect(truncated.body.message).toMatch(/protobuf request body is malformed/);
    expect((await post(SSAR, 'x=1', 'application/x-www-form-urlencoded')).status).toBe(415);
    expect((await post(SSAR, '{}', 'application/json', 'wrong')).status).toBe(401);
    expect((await fetch(base + SSAR, { headers: { authorization: 'Bearer user-token' } })).status).toBe(405);
  });
});

describe('SelfSubjectRulesReview and SelfSubjectReview', () => {
  it('lists every served resource for the user, with status read-only', async () => {
    const raw = envelope('authorization.k8s.io/v1', 'SelfSubjectRulesReview', fields(field(1, Buffer.alloc(0)), field(2, field(1, 'default'))));
    const r = await post(SSRR, raw, PROTOBUF);
    expect(r.status).toBe(201);
    expect(r.body.spec).toEqual({ namespace: 'default' });
    const rules = r.body.status.resourceRules as Array<{ verbs: string[]; apiGroups: string[]; resources: string[] }>;
    const skiff = rules.filter((x) => x.apiGroups.includes('skiff.dev'));
    expect(skiff.find((x) => x.verbs.includes('*'))!.resources).toEqual(expect.arrayContaining(['functions', 'functions/log', 'routes']));
    expect(skiff.find((x) => x.verbs.includes('*'))!.resources).not.toContain('functions/status');
    expect(skiff.find((x) => !x.verbs.includes('*'))).toEqual({ verbs: ['get', 'list', 'watch'], apiGroups: ['skiff.dev'], resources: expect.arrayContaining(['functions/status']) });
    expect(r.body.status.nonResourceRules).toEqual([{ verbs: ['*'], nonResourceURLs: ['*'] }]);
    const ctl = await post(SSRR, JSON.stringify({ spec: { namespace: 'default' } }), 'application/json', 'ctl-token');
    expect(ctl.body.status.resourceRules).toEqual([{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }]);
  });

  it('says who the token is', async () => {
    const raw = envelope('authentication.k8s.io/v1', 'SelfSubjectReview', field(1, Buffer.alloc(0)));
    expect((await post(SSR, raw, PROTOBUF)).body.status.userInfo).toEqual({ username: 'skiff:user', groups: ['system:authenticated'] });
    expect((await post(SSR, '{}', 'application/json', 'ctl-token')).body.status.userInfo.username).toBe('skiff:controller');
  });

  it('appears in discovery', async () => {
    const auth = { authorization: 'Bearer user-token' };
    const groups = (await (await fetch(`${base}/apis`, { headers: auth })).json()) as any;
    expect(groups.groups.map((g: any) => g.name)).toEqual(expect.arrayContaining(['skiff.dev', 'authorization.k8s.io', 'authentication.k8s.io']));
    const list = (await (await fetch(`${base}/apis/authorization.k8s.io/v1`, { headers: auth })).json()) as any;
    expect(list.resources).toContainEqual({ name: 'selfsubjectaccessreviews', singularName: 'selfsubjectaccessreview', namespaced: false, kind: 'SelfSubjectAccessReview', verbs: ['create'] });
  });
});

describe('the rules and the protobuf reader', () => {
  it('agree between rulesFor and authorizeResource for every served subresource', () => {
    const kinds = new ResourceService(new MemoryStore(), builtinKinds()).kinds.all();
    const { resourceRules } = rulesFor('user', kinds);
    // The self-review rules (create only) are outside the token rules; every other rule is all or read-only.
    for (const rule of resourceRules.filter((r) => !r.verbs.includes('create')))
      for (const res of rule.resources) {
        const [resource, subresource] = res.split('/');
        expect(authorizeResource('user', { verb: 'update', resource, subresource }).allowed).toBe(rule.verbs.includes('*'));
      }
  });

  it('rejects what is not protobuf', () => {
    expect(() => readMessage(Buffer.from([0x0a, 0x05, 0x61]))).toThrow(/past the end/);
    expect(() => readMessage(Buffer.from([0x0b]))).toThrow(/wire type 3/);
    expect(() => readMessage(Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toThrow(/ten bytes/);
  });

  it('decodes the Namespace kubectl create namespace sends, and nothing else', async () => {
    // Captured from `kubectl create namespace team-x -v=8`.
    const captured = Buffer.from('6b3873000a0f0a0276311209' + Buffer.from('Namespace').toString('hex') + '121e0a160a067465616d2d781200' + '1a0022002a00320038004200' + '12001a020a001a002200', 'hex');
    expect(objectFromProtobuf(captured)).toEqual({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-x' } });
    const entry = (k: string, v: string) => fields(field(1, k), field(2, v));
    const meta = fields(field(1, 'team-y'), field(11, entry('env', 'dev')), field(11, entry('tier', 'web')), field(12, entry('note', 'hi')));
    const labelled = envelope('v1', 'Namespace', fields(field(1, meta), field(2, field(1, 'kubernetes'))));
    expect(objectFromProtobuf(labelled)).toEqual({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-y', labels: { env: 'dev', tier: 'web' }, annotations: { note: 'hi' } }, spec: { finalizers: ['kubernetes'] } });
    expect(() => objectFromProtobuf(envelope('v1', 'Pod', Buffer.alloc(0)))).toThrow(/protobuf is accepted for a v1 Namespace and the self-reviews only, not for v1 Pod/);
    const res = await fetch(`${base}/apis/skiff.dev/v1/namespaces/default/functions`, { method: 'POST', headers: { 'content-type': PROTOBUF, authorization: 'Bearer user-token' }, body: envelope('skiff.dev/v1', 'Function', Buffer.alloc(0)) });
    expect(res.status).toBe(415);
  });
});
