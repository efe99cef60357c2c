import http from 'node:http';

import pino from 'pino';
import { afterEach,beforeEach, describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { MemoryStore } from '../../src/store/index.js';

const logger = pino({ level: 'silent' });
const FN = '/apis/skiff.dev/v1/namespaces/default/functions';
const TOKEN = 'user-token';
const auth = { authorization: `Bearer ${TOKEN}` };

function fn(name: string, extra: Record<string, unknown> = {}) {
  return { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name, labels: { app: name } }, spec: { module: '/m.wasm', ...extra } };
}

describe('resource API', () => {
  let store: MemoryStore;
  let server: ApiServer;
  let base: string;
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(base + path, { method, headers: { 'content-type': 'application/json', ...auth, ...headers }, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };

  beforeEach(async () => {
    store = new MemoryStore();
    server = new ApiServer({ resources: new ResourceService(store, builtinKinds()), logger, version: 'test', token: TOKEN, controllerToken: 'ctl', maxBodyBytes: 64 * 1024 });
    const a = await server.listen('127.0.0.1', 0);
    base = `http://127.0.0.1:${a.port}`;
  });
  afterEach(async () => {
    await server.close();
    await store.close();
  });

  it('creates, gets, lists, updates, patches and deletes with Kubernetes metadata', async () => {
    const created = await call('POST', FN, fn('a'));
    expect(created.status).toBe(201);
    const m = created.body.metadata;
    expect(m.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(m.generation).toBe(1);
    expect(m.namespace).toBe('default');
    expect(m.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Number(m.resourceVersion)).toBeGreaterThan(0);

    const got = await call('GET', `${FN}/a`);
    expect(got.body).toEqual(created.body);

    await call('POST', FN, fn('b'));
    const list = await call('GET', FN);
    expect(list.body.kind).toBe('FunctionList');
    expect(list.body.items.map((i: any) => i.metadata.name)).toEqual(['a', 'b']);
    expect(Number(list.body.metadata.resourceVersion)).toBeGreaterThanOrEqual(Number(m.resourceVersion));

    const upd = await call('PUT', `${FN}/a`, { ...got.body, spec: { module: '/other.wasm' } });
    expect(upd.status).toBe(200);
    expect(upd.body.metadata.generation).toBe(2);
    expect(upd.body.metadata.uid).toBe(m.uid);

    const labelsOnly = await call('PATCH', `${FN}/a`, { metadata: { labels: { tier: 'web' } } }, { 'content-type': 'application/merge-patch+json' });
    expect(labelsOnly.status).toBe(200);
    expect(labelsOnly.body.metadata.labels).toEqual({ app: 'a', tier: 'web' });
    expect(labelsOnly.body.metadata.generation).toBe(2);

    const removed = await call('PATCH', `${FN}/a`, { metadata: { labels: { app: null } } }, { 'content-type': 'application/merge-patch+json' });
    expect(removed.body.metadata.labels).toEqual({ tier: 'web' });

    const del = await call('DELETE', `${FN}/a`);
    expect(del.status).toBe(200);
    const gone = await call('GET', `${FN}/a`);
    expect(gone.status).toBe(404);
    expect(gone.body).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404 });
  });

  it('filters lists with label selectors and pages with limit/continue', async () => {
    for (const [n, tier] of [['a', 'web'], ['b', 'db'], ['c', 'web']] as const) await call('POST', FN, { ...fn(n), metadata: { name: n, labels: { tier } } });
    const web = await call('GET', `${FN}?labelSelector=${encodeURIComponent('tier=web')}`);
    expect(web.body.items.map((i: any) => i.metadata.name)).toEqual(['a', 'c']);
    const notWeb = await call('GET', `${FN}?labelSelector=${encodeURIComponent('tier notin (web)')}`);
    expect(notWeb.body.items.map((i: any) => i.metadata.name)).toEqual(['b']);
    const bad = await call('GET', `${FN}?labelSelector=${encodeURIComponent('tier in web')}`);
    expect(bad.status).toBe(400);
    const p1 = await call('GET', `${FN}?limit=2`);
    expect(p1.body.items).toHaveLength(2);
    const p2 = await call('GET', `${FN}?limit=2&continue=${p1.body.metadata.continue}`);
    expect(p2.body.items.map((i: any) => i.metadata.name)).toEqual(['c']);
    expect(p2.body.metadata.continue).toBeUndefined();
  });

  it('reports every invalid field at once as a 422 Status with causes', async () => {
    const res = await call('POST', FN, {
      apiVersion: 'skiff.dev/v1',
      kind: 'Function',
      metadata: { name: 'Bad_Name', labels: { ok: 'has space' } },
      spec: { modul: 'x', limits: { memory: true, concurrency: 0 }, args: 'not-a-list' },
      extra: 1,
    });
    expect(res.status).toBe(422);
    expect(res.body.reason).toBe('Invalid');
    const fields = res.body.details.causes.map((c: any) => c.field).sort();
    expect(fields).toEqual(expect.arrayContaining(['metadata.name', 'metadata.labels.ok', 'spec.module', 'spec.modul', 'spec.limits.memory', 'spec.limits.concurrency', 'spec.args', 'extra']));
  });

  it('refuses duplicates, stale updates and unknown kinds', async () => {
    await call('POST', FN, fn('a'));
    expect((await call('POST', FN, fn('a'))).body.reason).toBe('AlreadyExists');
    const cur = (await call('GET', `${FN}/a`)).body;
    expect((await call('PUT', `${FN}/a`, { ...cur, spec: { module: '/1.wasm' } })).status).toBe(200);
    const stale = await call('PUT', `${FN}/a`, { ...cur, spec: { module: '/2.wasm' } });
    expect(stale.status).toBe(409);
    expect(stale.body.reason).toBe('Conflict');
    expect((await call('GET', '/apis/skiff.dev/v1/namespaces/default/widgets')).status).toBe(404);
  });

  it('lets exactly one of two concurrent updates from the same version win', async () => {
    await call('POST', FN, fn('a'));
    const cur = (await call('GET', `${FN}/a`)).body;
    const results = await Promise.all([1, 2].map((i) => call('PUT', `${FN}/a`, { ...cur, spec: { module: `/${i}.wasm` } })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
  });

  it('keeps status for controllers: the main resource ignores it, /status needs the controller token', async () => {
    await call('POST', FN, { ...fn('a'), status: { digest: 'forged' } });
    const cur = (await call('GET', `${FN}/a`)).body;
    expect(cur.status).toBeUndefined();
    expect((await call('PUT', `${FN}/a/status`, { ...cur, status: { ok: 1 } })).status).toBe(403);
    const ok = await call('PUT', `${FN}/a/status`, { ...cur, status: { ok: 1 } }, { authorization: 'Bearer ctl' });
    expect(ok.status).toBe(200);
    expect(ok.body.status).toEqual({ ok: 1 });
    expect(ok.body.metadata.generation).toBe(1);
    const upd = await call('PUT', `${FN}/a`, { ...ok.body, status: { ok: 2 } });
    expect(upd.body.status).toEqual({ ok: 1 });
  });

  it('streams watch events, resumes from a resourceVersion, and sends a 410 ERROR event once compacted', async () => {
    const first = (await call('POST', FN, fn('a'))).body;
    const rv0 = first.metadata.resourceVersion;
    await call('PATCH', `${FN}/a`, { spec: { module: '/x.wasm' } }, { 'content-type': 'application/merge-patch+json' });
    await call('DELETE', `${FN}/a`);
    const res = await fetch(`${base}${FN}?watch=true&resourceVersion=${rv0}&timeoutSeconds=1`, { headers: auth });
    const text = await res.text();
    const events = text.trim().split('\n').map((l) => JSON.parse(l));
    expect(events.map((e) => e.type)).toEqual(['MODIFIED', 'DELETED']);
    await store.compact(await store.revision());
    // As kube-apiserver: the watch starts (200) and its one event is an ERROR carrying the 410 Status.
    const stale = await call('GET', `${FN}?watch=true&resourceVersion=${rv0}`);
    expect(stale.status).toBe(200);
    expect(stale.body).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
  });

  it('delivers live watch events to a connected watcher', async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${base}${FN}?watch=true`, { signal: ctrl.signal, headers: auth });
    const reader = res.body!.getReader();
    await call('POST', FN, fn('live'));
    const { value } = await reader.read();
    const ev = JSON.parse(new TextDecoder().decode(value).split('\n')[0]!);
    expect(ev.type).toBe('ADDED');
    expect(ev.object.metadata.name).toBe('live');
    ctrl.abort();
  });

  it('answers 413 for a body over the limit and 400 for malformed JSON', async () => {
    const huge = await call('POST', FN, JSON.stringify({ ...fn('big'), spec: { module: 'x'.repeat(100 * 1024) } }));
    expect(huge.status).toBe(413);
    expect(huge.body.reason).toBe('RequestEntityTooLarge');
    const bad = await call('POST', FN, '{"kind": ');
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/not valid JSON/);
  });

  it('serves discovery, health and version', async () => {
    expect((await fetch(base + '/healthz')).status).toBe(200);
    const disc = (await call('GET', '/apis/skiff.dev/v1')).body;
    expect(disc.resources.map((r: any) => r.name)).toEqual(expect.arrayContaining(['functions', 'routes', 'services', 'policies']));
    // Namespace and Event are core kinds, listed under /api/v1 only.
    expect(disc.resources.map((r: any) => r.name)).not.toContain('namespaces');
    expect((await call('GET', '/api/v1')).body.resources.map((r: any) => r.name)).toEqual(expect.arrayContaining(['namespaces', 'events']));
    expect((await call('GET', '/version')).body.version).toBe('test');
  });
});

describe('resource API beyond loopback', () => {
  it('needs the bearer token for reads and writes, and accepts any Host', async () => {
    const store = new MemoryStore();
    const server = new ApiServer({ resources: new ResourceService(store, builtinKinds()), logger, version: 't', token: 'secret', controllerToken: 'ctl' });
    const a = await server.listen('0.0.0.0', 0);
    const url = `http://127.0.0.1:${a.port}${FN}`;
    const denied = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fn('a')) });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const allowed = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer secret' }, body: JSON.stringify(fn('a')) });
    expect(allowed.status).toBe(201);
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: 'Bearer ctl' } })).status).toBe(200);
    const named = await rawGet(a.port, FN, { host: 'skiff.example.com', authorization: 'Bearer secret' });
    expect(named.status).toBe(200);
    await server.close();
    await store.close();
  });
});

/** rawGet sends a GET with exactly the given headers (fetch does not let a caller set Host). */
function rawGet(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers, setHost: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('resource API on a full store', () => {
  it('answers 503 naming the cause, and the objects stored before are intact', async () => {
    const { SqliteStore } = await import('../../src/store/index.js');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'skiff-full-')), 'state.db'), { maxBytes: 200 * 1024 });
    const server = new ApiServer({ resources: new ResourceService(store, builtinKinds()), logger, version: 't', token: TOKEN });
    const { port } = await server.listen('127.0.0.1', 0);
    const url = `http://127.0.0.1:${port}${FN}`;
    let created = 0;
    let last: Response | undefined;
    for (let i = 0; i < 100; i++) {
      last = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ ...fn(`f${i}`), metadata: { name: `f${i}`, annotations: { pad: 'x'.repeat(20_000) } } }) });
      if (last.status !== 201) break;
      created++;
    }
    expect(last!.status).toBe(503);
    expect(((await last!.json()) as { message: string }).message).toMatch(/store is full/);
    const list = (await (await fetch(url, { headers: auth })).json()) as { items: unknown[] };
    expect(list.items).toHaveLength(created);
    await server.close();
    await store.close();
  });
});

describe('endpoints mounted beside the resource API', () => {
  it('serves public paths without the token and the rest only with it, after the cross-site check', async () => {
    const store = new MemoryStore();
    const seen: Array<string | undefined> = [];
    const server = new ApiServer({
      resources: new ResourceService(store, builtinKinds()),
      logger,
      version: 't',
      token: TOKEN,
      mounts: [
        {
          matches: (p) => p === '/ui' || p.startsWith('/ui/'),
          public: (p) => !p.startsWith('/ui/api/'),
          handle: (_req, res, path, query, principal) => {
            seen.push(principal);
            res.writeHead(200, { 'content-type': 'text/plain' }).end(`${path} ${query.get('x') ?? ''}`);
          },
        },
      ],
    });
    const { port } = await server.listen('127.0.0.1', 0);
    const base = `http://127.0.0.1:${port}`;
    try {
      const shell = await fetch(`${base}/ui?x=1`);
      expect([shell.status, await shell.text()]).toEqual([200, '/ui 1']);
      expect((await fetch(`${base}/ui/api/stream`)).status).toBe(401);
      expect((await fetch(`${base}/ui/api/stream`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      // A public path is public for reads only; a write needs the token like everything else.
      expect((await fetch(`${base}/ui`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(401);
      const ok = await fetch(`${base}/ui/api/stream`, { headers: auth });
      expect([ok.status, await ok.text()]).toEqual([200, '/ui/api/stream ']);
      // A page on another site cannot drive a mount either.
      expect((await fetch(`${base}/ui/api/stream`, { headers: { ...auth, 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
      expect(seen).toEqual([undefined, 'user']);
      // Paths no mount claims still reach the resource API.
      expect((await fetch(`${base}${FN}`, { headers: auth })).status).toBe(200);
    } finally {
      await server.close();
      await store.close();
    }
  });
});
