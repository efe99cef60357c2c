import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { apiFetch, cli, REPO, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';
import { hasBinary } from '../helpers/system-deps.js';

/**
 * Two `skiff up` nodes on one etcd: load sent only to the node that does not lead must scale the
 * Function up, which only the leader decides; the samples it needs come over the mesh, and nowhere else.
 */

const available = hasBinary('etcd');

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

let etcd: ChildProcess | undefined;
let root: string;
let store = '';
const nodes: RunningSkiff[] = [];

beforeAll(async () => {
  if (!available) return;
  root = mkdtempSync(join(tmpdir(), 'skiff-scale-it-'));
  const [c, p] = [await freePort(), await freePort()];
  const client = `http://127.0.0.1:${c}`;
  const peer = `http://127.0.0.1:${p}`;
  etcd = spawn('etcd', ['--name', 's', '--data-dir', join(root, 'etcd'), '--listen-client-urls', client, '--advertise-client-urls', client, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `s=${peer}`, '--log-level', 'error'], { stdio: 'ignore' });
  await waitFor(async () => (await fetch(`${client}/health`).catch(() => undefined))?.ok, 'etcd', 15_000);
  store = `etcd://127.0.0.1:${c}/scale-it`;
  const n1 = await startSkiff({ dataDir: join(root, 'n1'), args: ['--store', store, '--cluster-init', '--node-name', 'n1'], timeoutMs: 40_000 });
  nodes.push(n1);
  const token = readFileSync(join(n1.dataDir, 'node-token'), 'utf8').trim();
  nodes.push(await startSkiff({ dataDir: join(root, 'n2'), args: ['--store', store, '--join', n1.api.replace(/^http:/, 'https:'), '--token', token, '--node-name', 'n2'], timeoutMs: 40_000 }));
}, 90_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
  etcd?.kill('SIGKILL');
  if (root) rmSync(root, { recursive: true, force: true });
});

const meshPort = (n: RunningSkiff) => Number(/mesh=https:\/\/[^:]+:(\d+)/.exec(n.readyLine)![1]);

async function leaderName(n: RunningSkiff): Promise<string> {
  const leases = await cli(['get', 'leases', '-n', 'skiff-system'], { skiff: n });
  const m = /\nskiff-leader\s+(\S+)\s/.exec(leases.stdout);
  if (!m) throw new Error(`no leader lease in:\n${leases.stdout}${leases.stderr}`);
  return m[1]!;
}

async function desiredReplicas(n: RunningSkiff, name: string): Promise<number> {
  const res = await apiFetch(n, `/apis/skiff.dev/v1/namespaces/default/functions/${name}`);
  const fn = (await res.json()) as { status?: { desiredReplicas?: number } };
  return fn.status?.desiredReplicas ?? 0;
}

describe.skipIf(!available)('cluster-wide autoscaling inputs', () => {
  it('scales a Wasm Function up on load that enters only the follower\'s gateway', async () => {
    const [n1, n2] = nodes as [RunningSkiff, RunningSkiff];
    const leads = await waitFor(async () => leaderName(n1).catch(() => undefined), 'a leader', 15_000);
    const [leader, follower] = leads === 'n1' ? [n1, n2] : [n2, n1];
    const dir = join(root, 'fn');
    mkdirSync(dir);
    copyFileSync(join(REPO, 'examples', 'hello', 'hello.wasm'), join(dir, 'hello.wasm'));
    writeFileSync(
      join(dir, 'fn.yaml'),
      [
        'apiVersion: skiff.dev/v1',
        'kind: Function',
        'metadata: { name: busy, namespace: default }',
        'spec:',
        '  module: ./hello.wasm',
        // Low enough that a modest load from one client needs several replicas; above one only through the sum.
        '  scale: { minScale: 1, maxScale: 8, metric: rps, target: 5, stableWindow: 6s }',
        '---',
        'apiVersion: skiff.dev/v1',
        'kind: Route',
        'metadata: { name: busy, namespace: default }',
        'spec:',
        '  hosts: ["*"]',
        '  http: [{ match: [{ uri: { prefix: /busy } }], route: [{ destination: { function: busy } }] }]',
        '',
      ].join('\n'),
    );
    const applied = await cli(['apply', '-f', join(dir, 'fn.yaml')], { skiff: follower });
    expect(applied.code, applied.stderr).toBe(0);
    // Both nodes load it (the leader too: it fetches the module from the follower by digest).
    for (const n of [follower, leader]) await waitFor(async () => (await fetch(`${n.gateway}/busy`)).status === 200, `${n === leader ? 'leader' : 'follower'} serving the Function`, 30_000);
    await waitFor(async () => (await desiredReplicas(leader, 'busy')) === 1, 'the Function idle at one replica', 20_000);

    // Load on the follower's gateway only, until the leader's decision shows it (bounded).
    let stop = false;
    let sent = 0;
    const load = (async () => {
      while (!stop) {
        await Promise.all(Array.from({ length: 4 }, () => fetch(`${follower.gateway}/busy`).then((r) => r.arrayBuffer(), () => undefined)));
        sent += 4;
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const started = Date.now();
    try {
      await waitFor(async () => (await desiredReplicas(leader, 'busy')) > 1, 'the leader scaling up on the follower\'s traffic', 20_000);
    } catch (err) {
      const st = await (await apiFetch(leader, '/apis/skiff.dev/v1/namespaces/default/functions/busy')).text();
      throw new Error(`${(err as Error).message}; ${sent} requests sent; status ${st}; leader log:\n${leader.stderr().split('\n').filter((l) => /sample|autoscal|scaled/i.test(l)).slice(-10).join('\n')}`);
    } finally {
      stop = true;
      await load;
    }
    const elapsed = Date.now() - started;
    const fn = (await (await apiFetch(leader, '/apis/skiff.dev/v1/namespaces/default/functions/busy')).json()) as { status: { desiredReplicas: number; autoscaler: { metric: { value: number } } } };
    console.log(`cluster autoscaling: desiredReplicas ${fn.status.desiredReplicas} after ${elapsed} ms of load on the follower (${sent} requests; metric ${fn.status.autoscaler.metric.value} req/s)`);
    expect(fn.status.desiredReplicas).toBeGreaterThan(1);
  }, 90_000);

  it('serves the samples on the mesh listener to node identities only, never on the gateway or the API', async () => {
    const [n1] = nodes as [RunningSkiff, RunningSkiff];
    const path = '/_skiff/autoscaler/samples';
    expect((await fetch(`${n1.gateway}${path}`)).status).toBe(404);
    const api = await fetch(`${n1.api}${path}`, { headers: { authorization: `Bearer ${n1.token}` } }).catch(() => undefined);
    expect(api?.status === 200).toBe(false);
    // Without a client certificate the mesh listener does not complete the request.
    const outcome = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: meshPort(n1), rejectUnauthorized: false, servername: 'localhost' }, () => {
        s.write(`GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
      });
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('error', (e) => resolve(`error ${e.message}`));
      s.on('close', () => resolve(got.length > 0 ? got.split('\r\n')[0]! : 'closed'));
      s.setTimeout(5_000, () => s.destroy(new Error('timeout')));
    });
    expect(outcome).not.toMatch(/^HTTP\/1\.1 200/);
    expect(outcome).not.toContain('functions');
  }, 30_000);

  it('counts a follower that stops answering, and the leader keeps deciding', async () => {
    const [n1, n2] = nodes as [RunningSkiff, RunningSkiff];
    const leads = await leaderName(n1);
    const [leader, follower] = leads === 'n1' ? [n1, n2] : [n2, n1];
    const name = leads === 'n1' ? 'n2' : 'n1';
    const warned = () => leader.stderr().match(/a node gave no autoscaler samples/g)?.length ?? 0;
    const before = warned();
    // Stopped, not killed: it stays Ready until its heartbeat expires, so the leader still asks it.
    follower.proc.kill('SIGSTOP');
    try {
      const failures = await waitFor(async () => {
        const m = new RegExp(`^skiff_autoscaler_peer_sample_failures_total\\{node="${name}"\\} (\\d+)$`, 'm').exec(await (await apiFetch(leader, '/metrics')).text());
        return m && Number(m[1]) >= 2 ? Number(m[1]) : undefined;
      }, 'the leader counting the silent follower', 15_000);
      expect(failures).toBeGreaterThanOrEqual(2);
      // Logged once for the outage, not on every tick.
      expect(warned() - before).toBe(1);
    } finally {
      follower.proc.kill('SIGCONT');
    }
  }, 30_000);
});
