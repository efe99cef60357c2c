import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

import { SqliteStore } from '../../src/store/index.js';
import { hasKubectl, type Kubectl, kubectlFor } from '../helpers/kubectl.js';
import { apiFetch, cli, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';

const run = hasKubectl();
const FN = '/apis/skiff.dev/v1/namespaces/default/functions';
let s: RunningSkiff;
let kubectl: Kubectl;
let port: number;
let module: string;

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const p = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return p;
}

async function post(path: string, body: unknown): Promise<void> {
  const res = await apiFetch(s, path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
}

const fn = (name: string, labels: Record<string, string>, namespace = 'default') => ({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name, namespace, labels }, spec: { module } });

/** Lines kubectl printed for the functions, without the AGE column (which moves while the test runs). */
const rowsOf = (out: string) => out.trimEnd().split('\n');

/** streamKubectl starts a long-running kubectl (a watch) and lets the test read its output as it comes. */
function streamKubectl(args: string[]): { proc: ChildProcess; out: () => string; err: () => string; done: Promise<number | null> } {
  const proc = spawn('kubectl', args, { env: kubectl.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const done = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
  // Bounded whatever happens to the test.
  const guard = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  void done.then(() => clearTimeout(guard));
  return { proc, out: () => out, err: () => err, done };
}

beforeAll(async () => {
  port = await freePort();
  s = await startSkiff({ demo: true, args: ['--api', `127.0.0.1:${port}`] });
  kubectl = kubectlFor(s);
  module = ((await (await apiFetch(s, `${FN}/hello`)).json()) as { spec: { module: string } }).spec.module;
  for (let i = 1; i <= 5; i++) await post(FN, fn(`p-${i}`, { tier: i % 2 ? 'odd' : 'even' }));
  await post('/apis/skiff.dev/v1/namespaces', { apiVersion: 'skiff.dev/v1', kind: 'Namespace', metadata: { name: 'team' } });
  await post('/apis/skiff.dev/v1/namespaces/team/functions', fn('t-1', { tier: 'odd' }, 'team'));
  // Ready columns settle once the controller has compiled each module.
  await waitFor(async () => {
    const list = (await (await apiFetch(s, '/apis/skiff.dev/v1/functions')).json()) as { items: Array<{ status?: { conditions?: Array<{ status: string }> } }> };
    // Ready, and reported on by the autoscaler (its REPLICAS column then holds until traffic decides).
    return list.items.length === 7 && list.items.every((f) => f.status?.conditions?.[0]?.status === 'True' && (f.status as { autoscaler?: unknown }).autoscaler !== undefined);
  }, 'functions ready', 30_000);
}, 60_000);
afterAll(async () => {
  await s?.stop();
});

describe.runIf(run)('kubectl get prints the server Table', () => {
  it('prints NAME, READY, REPLICAS, DIGEST and AGE, exactly as skiff get does', async () => {
    const r = await kubectl(['get', 'functions']);
    expect(r.code).toBe(0);
    const lines = rowsOf(r.stdout);
    expect(lines[0]).toMatch(/^NAME\s+READY\s+REPLICAS\s+DIGEST\s+AGE$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 4))).toEqual(['hello', 'p-1', 'p-2', 'p-3', 'p-4', 'p-5'].map((n) => [n, 'True', expect.stringMatching(/^\d+\/\d+$/), expect.stringMatching(/^[0-9a-f]{12}$/)]));
    const mine = await cli(['get', 'functions'], { skiff: s });
    expect(mine.code).toBe(0);
    // Same table, whatever second the AGE column shows.
    const noAge = (out: string) => out.replace(/\s+\d+[smhd]$/gm, '').replace(/\s+AGE$/m, '');
    expect(noAge(mine.stdout)).toBe(noAge(r.stdout));
  });

  it('adds the wide columns with -o wide, and NAMESPACE with -A', async () => {
    const wide = await kubectl(['get', 'fn', '-o', 'wide']);
    expect(rowsOf(wide.stdout)[0]).toMatch(/^NAME\s+READY\s+REPLICAS\s+DIGEST\s+AGE\s+SIZE\s+MODULE\s+REASON\s+CLASS$/);
    expect(rowsOf(wide.stdout)[2]).toMatch(/^p-1\s+True\s+\d+\/\d+\s+[0-9a-f]{12}\s+\S+\s+\d+\s+\S+/);
    const all = await kubectl(['get', 'fn', '-A']);
    expect(all.code).toBe(0);
    const lines = rowsOf(all.stdout);
    expect(lines[0]).toMatch(/^NAMESPACE\s+NAME\s+READY\s+REPLICAS\s+DIGEST\s+AGE$/);
    expect(lines.map((l) => l.split(/\s+/).slice(0, 2).join('/'))).toEqual(['NAMESPACE/NAME', 'default/hello', 'default/p-1', 'default/p-2', 'default/p-3', 'default/p-4', 'default/p-5', 'team/t-1']);
  });

  it('prints objects with -o yaml, json, name, jsonpath and custom-columns', async () => {
    const json = JSON.parse((await kubectl(['get', 'fn', '-o', 'json'])).stdout);
    expect(json).toMatchObject({ apiVersion: 'v1', kind: 'List' });
    expect(json.items.map((i: any) => `${i.kind}/${i.metadata.name}`)).toEqual(['Function/hello', 'Function/p-1', 'Function/p-2', 'Function/p-3', 'Function/p-4', 'Function/p-5']);
    const yaml = parseYaml((await kubectl(['get', 'fn', 'p-2', '-o', 'yaml'])).stdout);
    expect(yaml).toMatchObject({ apiVersion: 'skiff.dev/v1', kind: 'Function', metadata: { name: 'p-2', labels: { tier: 'even' } }, spec: { module } });
    expect((await kubectl(['get', 'fn', '-o', 'name'])).stdout).toBe(['hello', 'p-1', 'p-2', 'p-3', 'p-4', 'p-5'].map((n) => `function.skiff.dev/${n}\n`).join(''));
    expect((await kubectl(['get', 'fn', '-o', 'jsonpath={.items[*].metadata.name}'])).stdout).toBe('hello p-1 p-2 p-3 p-4 p-5');
    const cc = await kubectl(['get', 'fn', '-o', 'custom-columns=FN:.metadata.name,TIER:.metadata.labels.tier']);
    expect(rowsOf(cc.stdout).map((l) => l.split(/\s+/))).toEqual([['FN', 'TIER'], ['hello', '<none>'], ['p-1', 'odd'], ['p-2', 'even'], ['p-3', 'odd'], ['p-4', 'even'], ['p-5', 'odd']]);
  });

  it('selects with -l and --field-selector, and says so when nothing matches', async () => {
    const odd = await kubectl(['get', 'fn', '-l', 'tier=odd', '-o', 'name']);
    expect(odd.stdout).toBe('function.skiff.dev/p-1\nfunction.skiff.dev/p-3\nfunction.skiff.dev/p-5\n');
    const labelled = await kubectl(['get', 'fn', '-l', 'tier', '-o', 'name']);
    expect(labelled.stdout.split('\n').filter(Boolean)).toHaveLength(5);
    const one = await kubectl(['get', 'fn', '--field-selector', 'metadata.name=p-3']);
    expect(rowsOf(one.stdout).map((l) => l.split(/\s+/)[0])).toEqual(['NAME', 'p-3']);
    const none = await kubectl(['get', 'fn', '--field-selector', 'metadata.name=nope']);
    expect(none.code).toBe(0);
    expect(none.stderr).toBe('No resources found in default namespace.\n');
    const bad = await kubectl(['get', 'fn', '--field-selector', 'spec.module=x']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/field label not supported: spec\.module/);
  });

  it('lists in chunks with --chunk-size, following continue tokens', async () => {
    const r = await kubectl(['get', 'fn', '--chunk-size=2', '-v=6']);
    expect(r.code).toBe(0);
    expect(rowsOf(r.stdout).map((l) => l.split(/\s+/)[0])).toEqual(['NAME', 'hello', 'p-1', 'p-2', 'p-3', 'p-4', 'p-5']);
    const lists = r.stderr.split("\n").filter((l) => /GET https:\S+\/functions\?\S*limit=2/.test(l));
    expect(lists).toHaveLength(3);
    expect(lists.filter((l) => /continue=/.test(l))).toHaveLength(2);
  });

  it('lists events selected by their involved object', async () => {
    const ev = (name: string, obj: string, reason: string) => ({ apiVersion: 'skiff.dev/v1', kind: 'Event', metadata: { name, namespace: 'default' }, involvedObject: { kind: 'Function', name: obj, namespace: 'default' }, reason, type: 'Normal', message: `about ${obj}`, lastTimestamp: new Date().toISOString() });
    await post('/apis/skiff.dev/v1/namespaces/default/events', ev('p-1.aaa', 'p-1', 'Tested'));
    await post('/apis/skiff.dev/v1/namespaces/default/events', ev('p-2.bbb', 'p-2', 'Tested'));
    const r = await kubectl(['get', 'events', '--field-selector', 'involvedObject.name=p-2,reason=Tested']);
    expect(r.code).toBe(0);
    const lines = rowsOf(r.stdout);
    expect(lines[0]).toMatch(/^NAME\s+LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$/);
    expect(lines.slice(1)).toEqual([expect.stringMatching(/^p-2\.bbb\s+\d+s\s+Normal\s+Tested\s+function\/p-2\s+about p-2$/)]);
  });
});

describe.runIf(run)('kubectl watches', () => {
  const label = async (name: string, value: string) => {
    const res = await apiFetch(s, `${FN}/${name}`, { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' }, body: JSON.stringify({ metadata: { labels: { seen: value } } }) });
    expect(res.status).toBe(200);
  };

  it('get -w prints the list, then each change as it happens', async () => {
    const w = streamKubectl(['get', 'fn', '-w']);
    try {
      await waitFor(() => rowsOf(w.out()).length >= 7, 'the listed rows', 15_000);
      await label('p-4', 'w');
      await waitFor(() => rowsOf(w.out()).length >= 8, 'the changed row', 15_000);
      const lines = rowsOf(w.out());
      expect(lines[0]).toMatch(/^NAME\s+READY\s+REPLICAS\s+DIGEST\s+AGE$/);
      expect(lines[7]).toMatch(/^p-4\s+True\s+\d+\/\d+\s+[0-9a-f]{12}\s+\d+[smh]/);
    } finally {
      w.proc.kill('SIGTERM');
      await w.done;
    }
  });

  it('get --watch-only prints only changes, under the table header', async () => {
    const w = streamKubectl(['get', 'fn', '--watch-only', '-v=6']);
    try {
      // The watch request is sent once the list is read; a change before it would be missed.
      await waitFor(() => /watch=true/.test(w.err()), 'the watch request', 15_000);
      await label('p-5', 'w');
      await waitFor(() => rowsOf(w.out()).length >= 2, 'the changed row', 15_000);
      const lines = rowsOf(w.out());
      expect(lines[0]).toMatch(/^NAME\s+READY\s+REPLICAS\s+DIGEST\s+AGE$/);
      expect(lines[1]).toMatch(/^p-5\s+True\s/);
      expect(lines).toHaveLength(2);
    } finally {
      w.proc.kill('SIGTERM');
      await w.done;
    }
  });

  it('a watch from a compacted revision gets a 410 ERROR event, and kubectl wait lists again', async () => {
    const before = ((await (await apiFetch(s, FN)).json()) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    // kubectl wait lists p-1, then watches from that list's revision. (Not hello: --demo applies it again at start.)
    const w = streamKubectl(['wait', '--for=jsonpath={.metadata.labels.relisted}=yes', 'fn/p-1', '--timeout=60s', '-v=6']);
    await waitFor(() => /functions\?.*watch=true.* 200 OK/.test(w.err()), 'the watch of kubectl wait', 15_000);
    // client-go treats a watch that ends within a second as broken and lists again instead of resuming.
    await new Promise((r) => setTimeout(r, 1500));
    // Stop the server, change hello and compact the store behind its back, then start it again on the
    // same port: kubectl resumes its watch from a revision that is gone, and only a relist shows it the change.
    expect(await s.stop()).toBe(0);
    const store = new SqliteStore(join(s.dataDir, 'state.db'));
    const kv = (await store.get('/registry/functions/default/p-1'))!;
    const obj = JSON.parse(kv.value);
    obj.metadata.labels = { ...obj.metadata.labels, relisted: 'yes' };
    await store.put(kv.key, JSON.stringify(obj), { expectModRevision: kv.modRevision });
    await store.compact(await store.revision());
    await store.close();
    s = await startSkiff({ dataDir: s.dataDir, demo: true, args: ['--api', `127.0.0.1:${port}`] });
    const code = await w.done;
    expect(w.out(), w.err()).toBe('function.skiff.dev/p-1 condition met\n');
    expect(code).toBe(0);
    const requests = w.err().split('\n').filter((l) => /GET https:\S+\/functions\?\S+ 200 OK/.test(l));
    const watches = requests.filter((l) => /watch=true/.test(l));
    const lists = requests.filter((l) => !/watch=true/.test(l));
    // The watch resumed from the old revision (answered with the ERROR event), then the relist.
    expect(w.err()).toMatch(/watch of \S+ closed with: too old resource version: \d+ \(\d+\)/);
    expect(watches.length).toBeGreaterThanOrEqual(2);
    expect(lists.length).toBeGreaterThanOrEqual(2);
    // What that resumed watch received, seen through kubectl itself.
    const raw = await kubectl(['get', '--raw', `${FN}?watch=true&resourceVersion=${before}`]);
    expect(JSON.parse(raw.stdout.trim())).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
  }, 90_000);
});
