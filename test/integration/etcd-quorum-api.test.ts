/**
 * The API of a node on a 3-member etcd while etcd loses quorum: writes answer 503 ServiceUnavailable
 * within 10 s, naming the store and what to do; reads of existing objects still answer; once the
 * members return, writes work again. Store-level details are in test/store/etcd-quorum.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type EtcdCluster, startEtcdCluster } from '../helpers/etcd.js';
import { apiFetch, type RunningSkiff, startSkiff } from '../helpers/skiff-process.js';
import { hasBinary } from '../helpers/system-deps.js';

const available = hasBinary('etcd');
let cluster: EtcdCluster;
let node: RunningSkiff;

beforeAll(async () => {
  if (!available) return;
  cluster = await startEtcdCluster({ size: 3 });
  node = await startSkiff({ args: ['--store', cluster.storeUrl('/api-quorum'), '--node-name', 'quorum-node'] });
}, 60_000);

afterAll(async () => {
  await node?.stop('SIGKILL');
  await cluster?.stop();
});

const createNamespace = (name: string) => apiFetch(node, '/api/v1/namespaces', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }) });

describe.skipIf(!available)('the API with etcd quorum lost', () => {
  it('answers writes 503 within 10 s and reads from what etcd still has, then recovers', async () => {
    expect((await createNamespace('before')).status).toBe(201);
    const leader = (await cluster.leader()) ?? 0;
    // Two of three down, etcd's leader among them.
    await cluster.members[leader]!.kill();
    await cluster.members[(leader + 1) % 3]!.kill();

    const t0 = Date.now();
    const res = await createNamespace('during');
    const ms = Date.now() - t0;
    expect(res.status).toBe(503);
    const body = (await res.json()) as { reason: string; message: string };
    expect(body.reason, body.message).toBe('ServiceUnavailable');
    expect(body.message, body.message).toMatch(/etcd store/);
    expect(body.message).toMatch(/quorum/);
    expect(ms).toBeLessThan(10_000);

    const r0 = Date.now();
    const read = await apiFetch(node, '/api/v1/namespaces/before');
    expect(read.status).toBe(200);
    expect(((await read.json()) as { metadata: { name: string } }).metadata.name).toBe('before');
    const list = await apiFetch(node, '/api/v1/namespaces');
    expect(list.status).toBe(200);
    expect(Date.now() - r0).toBeLessThan(5_000);

    await cluster.members[leader]!.restart();
    await cluster.members[(leader + 1) % 3]!.restart();
    await expect
      .poll(async () => (await createNamespace('after')).status, { timeout: 30_000, interval: 500 })
      .toBe(201);
  }, 60_000);
});
