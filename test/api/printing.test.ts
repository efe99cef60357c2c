import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { constraintKind, constraintTemplateKind } from '../../src/api/kinds/constraint-template.js';
import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { MemoryStore } from '../../src/store/index.js';

const logger = pino({ level: 'silent' });
const FN = '/apis/skiff.dev/v1/namespaces/default/functions';
const TOKEN = 'user-token';
const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';

function fn(name: string, labels: Record<string, string> = { app: name }) {
  return { apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name, labels }, spec: { module: '/m.wasm' } };
}

describe('Tables, lists and watches over HTTP', () => {
  let store: MemoryStore;
  let resources: ResourceService;
  let server: ApiServer;
  let base: string;
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(base + path, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  /** watchLines reads a watch until `count` events arrived, or `count` says enough (or the server ended it), at most 5 s. */
  const watchLines = async (path: string, count: number | ((events: any[]) => boolean), headers: Record<string, string> = {}, during?: () => Promise<unknown>) => {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), 5000);
    const res = await fetch(base + path, { headers: { authorization: `Bearer ${TOKEN}`, ...headers }, signal: ctrl.signal });
    const reader = res.body!.getReader();
    const events: any[] = [];
    let buf = '';
    const pending = during?.();
    try {
      const enough = typeof count === 'number' ? (e: any[]) => e.length >= count : count;
      while (!enough(events)) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
        if (done) break;
        buf += new TextDecoder().decode(value);
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          events.push(JSON.parse(buf.slice(0, nl)));
          buf = buf.slice(nl + 1);
        }
      }
    } finally {
      clearTimeout(timer);
      ctrl.abort();
      await pending;
    }
    return { status: res.status, events };
  };

  beforeEach(async () => {
    store = new MemoryStore();
    resources = new ResourceService(store, builtinKinds());
    server = new ApiServer({ resources, logger, version: 'test', token: TOKEN, watchBookmarkIntervalMs: 100, futureRevisionWaitMs: 300 });
    base = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
  });
  afterEach(async () => {
    await server.close();
    await store.close();
  });

  describe('Table responses', () => {
    it('answers a list with the kind columns, NAME first, wide ones at priority 1', async () => {
      await call('POST', FN, fn('a'));
      await call('POST', FN, fn('b'));
      const { status, body } = await call('GET', FN, undefined, { accept: TABLE });
      expect(status).toBe(200);
      expect(body).toMatchObject({ kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: expect.stringMatching(/^\d+$/) } });
      expect(body.columnDefinitions.map((c: any) => [c.name, c.type, c.priority])).toEqual([
        ['NAME', 'string', 0],
        ['READY', 'string', 0],
        ['REPLICAS', 'string', 0],
        ['DIGEST', 'string', 0],
        ['AGE', 'date', 0],
        ['SIZE', 'integer', 1],
        ['MODULE', 'string', 1],
        ['REASON', 'string', 1],
        ['CLASS', 'string', 1],
      ]);
      expect(body.columnDefinitions[0].format).toBe('name');
      for (const c of body.columnDefinitions) expect(c.description).not.toBe('');
      expect(body.rows.map((r: any) => r.cells)).toEqual([
        // A missing value is null (printed <none>), as kube-apiserver sends it.
        ['a', 'Unknown', '0/0', null, expect.stringMatching(/^\d+s$/), null, '/m.wasm', null, 'wasm'],
        ['b', 'Unknown', '0/0', null, expect.stringMatching(/^\d+s$/), null, '/m.wasm', null, 'wasm'],
      ]);
      // kubectl asks for nothing, which means Metadata: a PartialObjectMetadata per row.
      expect(body.rows[0].object).toMatchObject({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { name: 'a', namespace: 'default', labels: { app: 'a' } } });
      expect(body.rows[0].object.spec).toBeUndefined();
    });

    it('honours includeObject, v1beta1 and a single object', async () => {
      await call('POST', FN, fn('a'));
      const none = await call('GET', `${FN}?includeObject=None`, undefined, { accept: TABLE });
      expect(none.body.rows[0].object).toBeUndefined();
      const whole = await call('GET', `${FN}?includeObject=Object`, undefined, { accept: TABLE });
      expect(whole.body.rows[0].object).toMatchObject({ kind: 'Function', spec: { module: '/m.wasm' } });
      const bad = await call('GET', `${FN}?includeObject=All`, undefined, { accept: TABLE });
      expect(bad.status).toBe(400);
      const beta = await call('GET', `${FN}/a`, undefined, { accept: 'application/json;as=Table;v=v1beta1;g=meta.k8s.io' });
      expect(beta.body).toMatchObject({ kind: 'Table', apiVersion: 'meta.k8s.io/v1beta1', rows: [{ cells: ['a', 'Unknown', '0/0', null, expect.any(String), null, '/m.wasm', null, 'wasm'] }] });
      expect(beta.body.metadata.resourceVersion).toBe(beta.body.rows[0].object.metadata.resourceVersion);
    });

    it('falls back along the Accept list, serves metadata only on request, and answers 406 when nothing fits', async () => {
      await call('POST', FN, fn('a'));
      const plain = await call('GET', FN, undefined, { accept: 'application/json;as=Table;v=v1;g=example.com,application/json' });
      expect(plain.body.kind).toBe('FunctionList');
      const partial = await call('GET', FN, undefined, { accept: 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json' });
      expect(partial.body).toMatchObject({ kind: 'PartialObjectMetadataList', items: [{ kind: 'PartialObjectMetadata', metadata: { name: 'a' } }] });
      const one = await call('GET', `${FN}/a`, undefined, { accept: 'application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io' });
      expect(one.body).toMatchObject({ kind: 'PartialObjectMetadata', metadata: { name: 'a' } });
      const none = await call('GET', FN, undefined, { accept: 'application/vnd.kubernetes.protobuf' });
      expect(none.status).toBe(406);
      expect(none.body).toMatchObject({ kind: 'Status', reason: 'NotAcceptable' });
    });

    it('prints kinds registered at run time from their own columns, and lists name their group', async () => {
      resources.kinds.register(constraintTemplateKind(() => []));
      resources.kinds.register(constraintKind('K8sRequiredLabels', () => []));
      const path = '/apis/constraints.gatekeeper.sh/v1beta1/k8srequiredlabels';
      expect((await call('POST', path, { apiVersion: 'constraints.gatekeeper.sh/v1beta1', kind: 'K8sRequiredLabels', metadata: { name: 'need-team' }, spec: { enforcementAction: 'warn' } })).status).toBe(201);
      const table = (await call('GET', path, undefined, { accept: TABLE })).body;
      expect(table.columnDefinitions.map((c: any) => c.name)).toEqual(['NAME', 'ENFORCEMENT-ACTION', 'TOTAL-VIOLATIONS', 'AGE']);
      expect(table.rows[0].cells.slice(0, 3)).toEqual(['need-team', 'warn', null]);
      await resources.updateStatus(resources.kind('k8srequiredlabels'), undefined, 'need-team', { status: { totalViolations: 2 } });
      // An integer column's cell is a number.
      expect((await call('GET', path, undefined, { accept: TABLE })).body.rows[0].cells[2]).toBe(2);
      expect((await call('GET', path)).body).toMatchObject({ apiVersion: 'constraints.gatekeeper.sh/v1beta1', kind: 'K8sRequiredLabelsList' });
      expect((await call('GET', '/apis/templates.gatekeeper.sh/v1/constrainttemplates')).body).toMatchObject({ apiVersion: 'templates.gatekeeper.sh/v1', kind: 'ConstraintTemplateList' });
      expect((await call('GET', FN)).body).toMatchObject({ apiVersion: 'skiff.dev/v1', kind: 'FunctionList' });
    });
  });

  describe('lists', () => {
    const names = (body: any) => body.items.map((i: any) => i.metadata.name);

    it('pages with limit and continue over one snapshot, with remainingItemCount', async () => {
      for (const n of ['a', 'b', 'c', 'd', 'e']) await call('POST', FN, fn(n));
      const p1 = (await call('GET', `${FN}?limit=2`)).body;
      expect(names(p1)).toEqual(['a', 'b']);
      expect(p1.metadata.remainingItemCount).toBe(3);
      // Changes after the first page do not show up in the later ones: they read at its revision.
      await call('DELETE', `${FN}/c`);
      await call('POST', FN, fn('cc'));
      await call('PATCH', `${FN}/d`, { metadata: { labels: { app: 'changed' } } }, { 'content-type': 'application/merge-patch+json' });
      const p2 = (await call('GET', `${FN}?limit=2&continue=${p1.metadata.continue}`)).body;
      expect(names(p2)).toEqual(['c', 'd']);
      expect(p2.items[1].metadata.labels).toEqual({ app: 'd' });
      expect(p2.metadata.resourceVersion).toBe(p1.metadata.resourceVersion);
      expect(p2.metadata.remainingItemCount).toBe(1);
      const p3 = (await call('GET', `${FN}?limit=2&continue=${p2.metadata.continue}`)).body;
      expect(names(p3)).toEqual(['e']);
      expect(p3.metadata.continue).toBeUndefined();
      // A fresh list sees the changes.
      expect(names((await call('GET', FN)).body)).toEqual(['a', 'b', 'cc', 'd', 'e']);
    });

    it('answers 410 Expired for a continue token whose revision was compacted, with a token to read on', async () => {
      for (const n of ['a', 'b', 'c']) await call('POST', FN, fn(n));
      const p1 = (await call('GET', `${FN}?limit=1`)).body;
      await call('POST', FN, fn('bb'));
      await store.compact(await store.revision());
      const stale = await call('GET', `${FN}?limit=1&continue=${p1.metadata.continue}`);
      expect(stale.status).toBe(410);
      expect(stale.body).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
      expect(stale.body.message).toContain('too old to display a consistent list result');
      const rest = (await call('GET', `${FN}?continue=${stale.body.metadata.continue}`)).body;
      expect(names(rest)).toEqual(['b', 'bb', 'c']);
      expect((await call('GET', `${FN}?continue=not-a-token`)).status).toBe(400);
    });

    it('honours resourceVersion with NotOlderThan and Exact', async () => {
      await call('POST', FN, fn('a'));
      const rv = (await call('GET', FN)).body.metadata.resourceVersion;
      await call('POST', FN, fn('b'));
      expect(names((await call('GET', `${FN}?resourceVersion=${rv}&resourceVersionMatch=Exact`)).body)).toEqual(['a']);
      expect(names((await call('GET', `${FN}?resourceVersion=${rv}&resourceVersionMatch=NotOlderThan`)).body)).toEqual(['a', 'b']);
      expect(names((await call('GET', `${FN}?resourceVersion=0`)).body)).toEqual(['a', 'b']);
      const started = Date.now();
      const future = await call('GET', `${FN}?resourceVersion=9999`);
      // Only after waiting (300 ms here) for the store to reach the revision; kube's Status, which client-go retries.
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(future.status).toBe(504);
      expect(future.body).toEqual({
        apiVersion: 'v1',
        kind: 'Status',
        status: 'Failure',
        message: expect.stringMatching(/^Timeout: Too large resource version: 9999, current: \d+$/),
        reason: 'Timeout',
        code: 504,
        details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 },
      });
      expect((await call('GET', `${FN}?resourceVersionMatch=Exact`)).status).toBe(422);
      expect((await call('GET', `${FN}?resourceVersion=0&resourceVersionMatch=Exact`)).status).toBe(422);
      expect((await call('GET', `${FN}?resourceVersion=abc`)).status).toBe(400);
      await store.compact(await store.revision());
      const old = await call('GET', `${FN}?resourceVersion=${rv}&resourceVersionMatch=Exact`);
      expect(old.status).toBe(410);
      expect(old.body.reason).toBe('Expired');
    });

    it('answers a list at a revision the store reaches while it waits', async () => {
      await call('POST', FN, fn('a'));
      const next = (await store.revision()) + 1;
      const [listed] = await Promise.all([call('GET', `${FN}?resourceVersion=${next}`), new Promise((r) => setTimeout(r, 100)).then(() => call('POST', FN, fn('b')))]);
      expect(listed.status).toBe(200);
      expect(names(listed.body)).toEqual(['a', 'b']);
      expect(Number(listed.body.metadata.resourceVersion)).toBeGreaterThanOrEqual(next);
    });

    it('selects by field and label, and lists every namespace', async () => {
      await call('POST', FN, fn('a', { app: 'web', tier: 'front' }));
      await call('POST', FN, fn('ab', { app: 'web' }));
      await call('POST', '/apis/skiff.dev/v1/namespaces/team/functions', fn('b', { app: 'db' }));
      expect(names((await call('GET', `${FN}?fieldSelector=metadata.name%3Da`)).body)).toEqual(['a']);
      expect(names((await call('GET', `${FN}?fieldSelector=metadata.name!%3Da`)).body)).toEqual(['ab']);
      expect(names((await call('GET', `${FN}?labelSelector=tier`)).body)).toEqual(['a']);
      expect(names((await call('GET', `${FN}?labelSelector=!tier`)).body)).toEqual(['ab']);
      const all = (await call('GET', '/apis/skiff.dev/v1/functions')).body;
      expect(all.items.map((i: any) => `${i.metadata.namespace}/${i.metadata.name}`)).toEqual(['default/a', 'default/ab', 'team/b']);
      expect(names((await call('GET', '/apis/skiff.dev/v1/functions?fieldSelector=metadata.namespace%3Dteam')).body)).toEqual(['b']);
      const unknown = await call('GET', `${FN}?fieldSelector=spec.module%3Dx`);
      expect(unknown.status).toBe(400);
      expect(unknown.body.message).toMatch(/field label not supported: spec\.module/);
    });

    it('selects Events by their involved object, reason and type', async () => {
      const EV = '/apis/skiff.dev/v1/namespaces/default/events';
      const ev = (name: string, obj: string, reason: string, type = 'Normal') => ({ apiVersion: 'skiff.dev/v1', kind: 'Event', metadata: { name }, involvedObject: { kind: 'Function', name: obj, namespace: 'default', uid: `uid-${obj}` }, reason, type, message: 'm' });
      await call('POST', EV, ev('e1', 'a', 'Ready'));
      await call('POST', EV, ev('e2', 'b', 'Failed', 'Warning'));
      await call('POST', EV, ev('e3', 'a', 'Failed', 'Warning'));
      const sel = async (s: string) => names((await call('GET', `${EV}?fieldSelector=${encodeURIComponent(s)}`)).body);
      expect(await sel('involvedObject.name=a')).toEqual(['e1', 'e3']);
      expect(await sel('involvedObject.kind=Function,involvedObject.name=a,involvedObject.namespace=default,involvedObject.uid=uid-a')).toEqual(['e1', 'e3']);
      expect(await sel('type=Warning')).toEqual(['e2', 'e3']);
      expect(await sel('reason=Failed,involvedObject.name!=a')).toEqual(['e2']);
    });
  });

  describe('watches', () => {
    it('sends initial events, then a bookmark marking their end, then changes and periodic bookmarks', async () => {
      await call('POST', FN, fn('a'));
      const { events } = await watchLines(`${FN}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan`, (e) => e.findIndex((x) => x.type === 'ADDED' && x.object.metadata.name === 'b') >= 0 && e.filter((x) => x.type === 'BOOKMARK').length >= 4 && e.at(-1).type === 'BOOKMARK', {}, async () => {
        await new Promise((r) => setTimeout(r, 50));
        await call('POST', FN, fn('b'));
      });
      expect(events[0]).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'a' } } });
      expect(events[1]).toMatchObject({ type: 'BOOKMARK', object: { kind: 'Function', apiVersion: 'skiff.dev/v1', metadata: { annotations: { 'k8s.io/initial-events-end': 'true' } } } });
      expect(Object.keys(events[1].object.metadata).sort()).toEqual(['annotations', 'resourceVersion']);
      // Periodic bookmarks (every 100 ms here) interleave with the change; none repeats the annotation
      // and their revisions never go back.
      const rest = events.slice(2);
      const added = rest.findIndex((e) => e.type === 'ADDED');
      expect(rest[added]).toMatchObject({ object: { metadata: { name: 'b' } } });
      const bookmarks = rest.filter((e) => e.type === 'BOOKMARK');
      expect(bookmarks.length).toBeGreaterThanOrEqual(3);
      for (const b of bookmarks) expect(b.object.metadata.annotations).toBeUndefined();
      const rvs = bookmarks.map((b) => Number(b.object.metadata.resourceVersion));
      expect(rvs).toEqual([...rvs].sort((x, y) => x - y));
      expect(rvs.at(-1)).toBeGreaterThanOrEqual(Number(rest[added].object.metadata.resourceVersion));
    });

    it('refuses watch parameters Kubernetes refuses together', async () => {
      expect((await call('GET', `${FN}?watch=true&sendInitialEvents=true`)).status).toBe(422);
      expect((await call('GET', `${FN}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan`)).status).toBe(422);
    });

    it('ends the watch after timeoutSeconds', async () => {
      const started = Date.now();
      const res = await fetch(`${base}${FN}?watch=true&timeoutSeconds=1`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(await res.text()).toBe('');
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    });

    it('ends a watch without timeoutSeconds between the minimum request timeout and twice that', async () => {
      const short = new ApiServer({ resources, logger, version: 'test', token: TOKEN, minRequestTimeoutMs: 300 });
      const port = (await short.listen('127.0.0.1', 0)).port;
      try {
        const ends = await Promise.all(
          [0, 1, 2].map(async () => {
            const started = Date.now();
            const res = await fetch(`http://127.0.0.1:${port}${FN}?watch=true&resourceVersion=${await store.revision()}`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(5000) });
            expect(await res.text()).toBe('');
            return Date.now() - started;
          }),
        );
        for (const ms of ends) {
          expect(ms).toBeGreaterThanOrEqual(290);
          expect(ms).toBeLessThan(2000);
        }
      } finally {
        await short.close();
      }
    });

    it('sends a Table watch its bookmarks as Tables of one nameless row carrying the resourceVersion', async () => {
      await call('POST', FN, fn('a'));
      const { events } = await watchLines(`${FN}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan`, 3, { accept: TABLE });
      expect(events.map((e) => e.type)).toEqual(['ADDED', 'BOOKMARK', 'BOOKMARK']);
      const [end, periodic] = [events[1].object, events[2].object];
      // The first event carried the column definitions; the bookmarks come without them.
      const columns = events[0].object.columnDefinitions.length;
      const blank = ['', ...Array(columns - 1).fill(null)];
      expect(end).toEqual({
        kind: 'Table',
        apiVersion: 'meta.k8s.io/v1',
        metadata: { resourceVersion: events[0].object.rows[0].object.metadata.resourceVersion },
        rows: [{ cells: blank, object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: end.metadata.resourceVersion, annotations: { 'k8s.io/initial-events-end': 'true' } } } }],
      });
      expect(periodic.rows[0].object.metadata).toEqual({ resourceVersion: periodic.metadata.resourceVersion });
      // With includeObject=Object the row carries the bookmark object itself, in the kind's version.
      const full = await watchLines(`${FN}?watch=true&resourceVersion=${end.metadata.resourceVersion}&allowWatchBookmarks=true&includeObject=Object`, 1, { accept: TABLE });
      expect(full.events[0]).toMatchObject({ type: 'BOOKMARK', object: { columnDefinitions: expect.any(Array), rows: [{ cells: blank, object: { kind: 'Function', apiVersion: 'skiff.dev/v1', metadata: { resourceVersion: expect.any(String) } } }] } });
    });

    it('filters a watch by field and label selectors, and sends Tables with headers only once', async () => {
      const { events } = await watchLines(`${FN}?watch=true&fieldSelector=metadata.name%3Dw`, 2, { accept: TABLE }, async () => {
        await new Promise((r) => setTimeout(r, 50));
        await call('POST', FN, fn('other'));
        await call('POST', FN, fn('w'));
        await call('PATCH', `${FN}/w`, { metadata: { labels: { x: 'y' } } }, { 'content-type': 'application/merge-patch+json' });
      });
      expect(events.map((e) => [e.type, e.object.kind, e.object.rows[0].cells[0]])).toEqual([
        ['ADDED', 'Table', 'w'],
        ['MODIFIED', 'Table', 'w'],
      ]);
      expect(events[0].object.columnDefinitions[0].name).toBe('NAME');
      expect(events[1].object.columnDefinitions).toBeUndefined();
      const labelled = await watchLines(`${FN}?watch=true&labelSelector=x&timeoutSeconds=1`, 2);
      expect(labelled.events.map((e) => [e.type, e.object.metadata.name])).toEqual([['ADDED', 'w']]);
    });

    it('answers a compacted or future resourceVersion with one ERROR event', async () => {
      const a = (await call('POST', FN, fn('a'))).body;
      await call('POST', FN, fn('b'));
      await store.compact(await store.revision());
      const { status, events } = await watchLines(`${FN}?watch=true&resourceVersion=${a.metadata.resourceVersion}`, 2);
      expect(status).toBe(200);
      expect(events).toEqual([{ type: 'ERROR', object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired', message: expect.stringMatching(/^too old resource version/) }) }]);
      const future = await watchLines(`${FN}?watch=true&resourceVersion=99999`, 2);
      expect(future.events).toEqual([{ type: 'ERROR', object: expect.objectContaining({ code: 504, reason: 'Timeout' }) }]);
    });
  });
});
