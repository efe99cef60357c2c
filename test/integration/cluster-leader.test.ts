/**
 * Two `skiff up` nodes on one etcd: one leads the once-per-cluster controllers, the other follows,
 * answers the GitOps webhook by asking the leader, and takes over when the leader stops. The
 * multi-node failure tests (kill -9, SIGSTOP, partitions) live in the chaos suite.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { apiFetch, cli, type RunningSkiff, startSkiff } from '../helpers/skiff-process.js';
import { hasBinary } from '../helpers/system-deps.js';

const available = hasBinary('etcd');
let etcd: ChildProcess | undefined;
let etcdDir = '';
let store = '';
const nodes: RunningSkiff[] = [];

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

beforeAll(async () => {
  if (!available) return;
  etcdDir = mkdtempSync(join(tmpdir(), 'skiff-etcd-'));
  const [cp, pp] = [await freePort(), await freePort()];
  const client = `http://127.0.0.1:${cp}`;
  const peer = `http://127.0.0.1:${pp}`;
  etcd = spawn('etcd', ['--name', 'e1', '--data-dir', etcdDir, '--listen-client-urls', client, '--advertise-client-urls', client, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `e1=${peer}`, '--log-level', 'error'], { stdio: 'ignore' });
  const end = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fetch(`${client}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) throw new Error('etcd did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  store = `etcd://127.0.0.1:${cp}/skiff-it`;
  // One after the other, so that the first is the leader.
  nodes.push(await startSkiff({ args: ['--store', store, '--node-name', 'node-a'] }));
  nodes.push(await startSkiff({ args: ['--store', store, '--node-name', 'node-b'] }));
}, 60_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
  etcd?.kill('SIGKILL');
  if (etcdDir) rmSync(etcdDir, { recursive: true, force: true });
  for (const n of nodes) rmSync(n.dataDir, { recursive: true, force: true });
});

const metric = async (n: RunningSkiff, name: string) => {
  const text = await (await apiFetch(n, '/metrics')).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
};
const controllersOn = async (n: RunningSkiff) => [...(await (await apiFetch(n, '/metrics')).text()).matchAll(/^skiff_controller_queue_depth\{controller="([^"]+)"\}/gm)].map((m) => m[1]);
const POLL = { timeout: 10_000, interval: 100 };

describe.skipIf(!available)('leader election across two nodes on etcd', () => {
  it('runs the once-per-cluster controllers on the first node only', async () => {
    const [a, b] = nodes as [RunningSkiff, RunningSkiff];
    for (const n of [a, b]) {
      const leases = await cli(['get', 'leases', '-A'], { skiff: n });
      expect(leases.stdout).toMatch(/\nskiff-system\s+skiff-leader\s+node-a\s/);
    }
    expect(await metric(a, 'skiff_leader_is_leader')).toBe(1);
    expect(await metric(b, 'skiff_leader_is_leader')).toBe(0);
    expect(await controllersOn(a)).toEqual(expect.arrayContaining(['functions', 'gitrepositories', 'syncs', 'rollouts', 'node-lifecycle']));
    const onB = await controllersOn(b);
    expect(onB).toContain('functions');
    expect(onB).not.toContain('gitrepositories');
    expect(onB).not.toContain('node-lifecycle');
  });

  it('answers the GitOps webhook on a follower by asking the leader to fetch', async () => {
    const [a, b] = nodes as [RunningSkiff, RunningSkiff];
    const repo = `apiVersion: skiff.dev/v1
kind: GitRepository
metadata: { name: hooked, namespace: default }
spec: { url: 'https://git.example.invalid/team/app.git', ref: { branch: main }, interval: 1h }
`;
    expect((await cli(['apply', '-f', '-'], { skiff: a, input: repo })).code).toBe(0);
    const get = async () => (await (await apiFetch(a, '/apis/skiff.dev/v1/namespaces/default/gitrepositories/hooked')).json()) as { metadata: { annotations?: Record<string, string> }; status?: { lastHandledReconcileAt?: string } };
    // The follower's informer has seen it once the webhook no longer answers 404.
    let hook: Response | undefined;
    await expect
      .poll(async () => {
        hook = await apiFetch(b, '/hooks/git/default/hooked', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
        return hook.status;
      }, POLL)
      .toBe(202);
    const asked = (await get()).metadata.annotations?.['skiff.dev/reconcile-at'];
    expect(asked).toMatch(/^\d{4}-\d\d-\d\dT/);
    // The leader's source controller honours the request (the fetch itself fails: no such host).
    await expect.poll(async () => (await get()).status?.lastHandledReconcileAt, POLL).toBe(asked);
    // Unknown repositories are still 404 on a follower.
    const missing = await apiFetch(b, '/hooks/git/default/nope', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(missing.status).toBe(404);
  });

  it('hands the controllers to the follower when the leader stops', async () => {
    const [a, b] = nodes as [RunningSkiff, RunningSkiff];
    const t0 = Date.now();
    expect(await a.stop('SIGTERM')).toBe(0);
    // The leader gives the lease up on the way out: the follower takes it at its next attempt (2 s), not after the lease duration.
    await expect.poll(() => metric(b, 'skiff_leader_is_leader'), POLL).toBe(1);
    expect(Date.now() - t0).toBeLessThan(8_000);
    const leases = await cli(['get', 'leases', '-A'], { skiff: b });
    expect(leases.stdout).toMatch(/\nskiff-system\s+skiff-leader\s+node-b\s/);
    await expect.poll(() => controllersOn(b), POLL).toEqual(expect.arrayContaining(['gitrepositories', 'syncs', 'rollouts', 'node-lifecycle']));
    expect(await metric(b, 'skiff_leader_transitions_total')).toBe(1);
  });
});
