/**
 * The etcd store over TLS with client certificates, against a real etcd started with
 * `--client-cert-auth`: the right CA and client certificate work (reads, writes, watches); no client
 * certificate, one from another CA, or no trust in the members' CA are refused with an error that
 * names the TLS flags rather than an outage. `skiff up` takes the same files.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { EtcdStore, EtcdUnreachableError, openStore, StoreConfigError, type WatchEvent } from '../../src/store/index.js';
import { type EtcdCluster, startEtcdCluster } from '../helpers/etcd.js';
import { cli, startSkiff } from '../helpers/skiff-process.js';
import { hasBinary } from '../helpers/system-deps.js';
import { makeTestCa } from '../helpers/test-pki.js';

const available = hasBinary('etcd');
let dir = '';
let cluster: EtcdCluster;
let url = '';
const tls: { ca: string; cert: string; key: string } = { ca: '', cert: '', key: '' };
let rogue: { cert: string; key: string };

beforeAll(async () => {
  if (!available) return;
  dir = mkdtempSync(join(tmpdir(), 'skiff-etcd-tls-'));
  const ca = await makeTestCa('etcd test CA');
  const server = await ca.issue({ commonName: 'etcd', ips: ['127.0.0.1'], usage: 'server' });
  const client = await ca.issue({ commonName: 'skiff-node', usage: 'client' });
  const other = await makeTestCa('someone else');
  const forged = await other.issue({ commonName: 'skiff-node', usage: 'client' });
  Object.assign(tls, { ca: ca.certPem, cert: client.certPem, key: client.keyPem });
  rogue = { cert: forged.certPem, key: forged.keyPem };
  const files = { 'ca.pem': ca.certPem, 'server.pem': server.certPem, 'server-key.pem': server.keyPem, 'client.pem': client.certPem, 'client-key.pem': client.keyPem };
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text, { mode: 0o600 });
  cluster = await startEtcdCluster({
    size: 1,
    https: true,
    args: ['--client-cert-auth', '--trusted-ca-file', join(dir, 'ca.pem'), '--cert-file', join(dir, 'server.pem'), '--key-file', join(dir, 'server-key.pem')],
    health: async (u) => {
      const s = new EtcdStore({ endpoints: [u], prefix: '/health', tls, requestTimeoutMs: 1_000 });
      try {
        await s.open();
        return true;
      } finally {
        await s.close();
      }
    },
  });
  url = cluster.storeUrl('/tls');
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!available)('etcd store over TLS with client certificates', () => {
  it('reads, writes and watches with the members\' CA and a client certificate they trust', async () => {
    const store = await openStore(url, '/unused', { tls });
    const seen: WatchEvent[] = [];
    const w = await store.watch('/w/', { onEvent: (e) => seen.push(e) });
    expect((await store.put('/w/a', 'over tls')).ok).toBe(true);
    expect((await store.get('/w/a'))?.value).toBe('over tls');
    await expect.poll(() => seen.map((e) => e.kv.value), { timeout: 5_000 }).toEqual(['over tls']);
    w.close();
    await store.close();
  });

  it('is refused without a client certificate, or with one from another CA, naming the TLS flags', async () => {
    for (const bad of [{ ca: tls.ca }, { ca: tls.ca, ...rogue }]) {
      const err = await openStore(url, '/unused', { tls: bad }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EtcdUnreachableError);
      expect((err as Error).message).toMatch(/TLS/);
      expect((err as Error).message).toContain('--store-certfile');
      // Never the endpoint: it may carry credentials.
      expect((err as Error).message).not.toContain(url.slice('etcd+https://'.length, url.lastIndexOf('/')));
    }
  });

  it('refuses members whose certificate it cannot verify, naming --store-cafile', async () => {
    const err = await openStore(url, '/unused', { tls: { cert: tls.cert, key: tls.key } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdUnreachableError);
    expect((err as Error).message).toContain('--store-cafile');
  });

  it('takes TLS files only for an etcd+https store', async () => {
    await expect(openStore(url.replace('etcd+https', 'etcd'), '/unused', { tls })).rejects.toBeInstanceOf(StoreConfigError);
    const r = await cli(['up', '--store', 'sqlite:///tmp/x.db', '--store-cafile', join(dir, 'ca.pem'), '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--store-cafile need an etcd store over TLS');
    const half = await cli(['up', '--store', url, '--store-certfile', join(dir, 'client.pem'), '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0']);
    expect(half.code).toBe(2);
    expect(half.stderr).toContain('--store-certfile and --store-keyfile go together');
  });

  it('starts skiff up on it with --store-cafile, --store-certfile and --store-keyfile', async () => {
    const node = await startSkiff({ args: ['--store', url, '--store-cafile', join(dir, 'ca.pem'), '--store-certfile', join(dir, 'client.pem'), '--store-keyfile', join(dir, 'client-key.pem'), '--node-name', 'tls-node'] });
    try {
      const leases = await cli(['get', 'leases', '-A'], { skiff: node });
      expect(leases.stdout).toMatch(/\nskiff-system\s+skiff-leader\s+tls-node\s/);
    } finally {
      await node.stop();
      rmSync(node.dataDir, { recursive: true, force: true });
    }
    const refused = await cli(['up', '--store', url, '--store-cafile', join(dir, 'ca.pem'), '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0', '--data-dir', join(dir, 'refused')]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('--store-certfile');
  }, 40_000);
});
