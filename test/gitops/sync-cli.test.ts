import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ApiServer } from '../../src/api/server.js';
import { runCli } from '../helpers/run-cli.js';

import { fn, SyncHarness } from './sync-harness.js';

let h: SyncHarness;
let server: ApiServer;
let base = '';

beforeAll(async () => {
  h = new SyncHarness();
  await h.start();
  server = new ApiServer({ resources: h.resources, logger: pino({ level: 'silent' }), version: 't', token: 'tok' });
  const { port } = await server.listen('127.0.0.1', 0);
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await server?.close();
  await h?.stop();
});

describe('skiff sync and skiff get syncs', () => {
  it('reconciles now, prints what was applied, and lists revision, readiness and drift', async () => {
    await h.publish('web', 'main@sha1:aaaa', { 'a.yaml': fn('web-a'), 'b.yaml': fn('web-b') });
    await h.createSync('web', { prune: true, interval: '1h' });
    await expect.poll(async () => (await h.getSync('web')).status?.lastAppliedRevision, { timeout: 10_000, interval: 20 }).toBe('main@sha1:aaaa');
    // A new revision is published; with a one-hour interval only the source's artifact change or `skiff sync` brings it.
    await h.publish('web', 'main@sha1:bbbb', { 'a.yaml': fn('web-a') });
    const res = await runCli('sync', 'web', '--server', base, '--token', 'tok', '--timeout', '20s');
    expect(res.err).toBe('');
    // The artifact change may already have applied (and pruned) the revision before the CLI's request: then this attempt prunes nothing.
    expect(res.out).toMatch(/^sync\/web applied main@sha1:bbbb \(1 objects, [01] pruned\)\n$/);
    expect(await h.get('Function', 'default', 'web-b')).toBeUndefined();
    expect(res.code).toBe(0);
    const sync = await h.getSync('web');
    expect(sync.metadata.annotations?.['skiff.dev/reconcile-at']).toBeTruthy();
    expect(sync.status.lastHandledReconcileAt).toBe(sync.metadata.annotations?.['skiff.dev/reconcile-at']);

    const get = await runCli('get', 'syncs', '--server', base, '--token', 'tok');
    expect(get.code).toBe(0);
    const [head, row] = get.out.trim().split('\n');
    expect(head).toMatch(/^NAME\s+SOURCE\s+REVISION\s+READY\s+DRIFT\s+AGE$/);
    expect(row).toMatch(/^web\s+GitRepository\/web\s+main@sha1:bbbb\s+True\s+0\s+\d+s$/);
    const wide = await runCli('get', 'syncs', '-o', 'wide', '--server', base, '--token', 'tok');
    expect(wide.out).toMatch(/PATH\s+MESSAGE/);
    expect(wide.out).toContain('applied revision main@sha1:bbbb');
  });

  it('exits 1 naming the reason when the revision fails', async () => {
    await h.publish('bad', 'main@sha1:0001', { 'a.yaml': 'apiVersion: skiff.dev/v1\nkind: Function\nmetadata: { name: x }\nspec: { module: 7, nope: true }\n' });
    await h.createSync('bad', { interval: '1h' });
    const res = await runCli('sync', 'bad', '--server', base, '--token', 'tok', '--timeout', '20s');
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/^sync\/bad failed at main@sha1:0001: ApplyFailed: .*Function default\/x \(a\.yaml:1\) was refused/);
    const missing = await runCli('sync', 'nothing', '--server', base, '--token', 'tok');
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('sync/nothing not found');
  });
});
