import { type ChildProcess,spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasBinary } from '../../test/helpers/system-deps.js';

import { EtcdStore, openStore, parseEtcdEndpoint, StoreUnavailableError } from './index.js';
import { runStoreSuite } from './store-suite.js';

const available = hasBinary('etcd');
let etcd: ChildProcess | undefined;
let client = '';
let dataDir = '';
let seq = 0;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

beforeAll(async () => {
  if (!available) return;
  dataDir = mkdtempSync(join(tmpdir(), 'skiff-etcd-'));
  const [cp, pp] = [await freePort(), await freePort()];
  client = `http://127.0.0.1:${cp}`;
  const peer = `http://127.0.0.1:${pp}`;
  etcd = spawn('etcd', ['--name', 't', '--data-dir', dataDir, '--listen-client-urls', client, '--advertise-client-urls', client, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `t=${peer}`, '--log-level', 'error'], { stdio: 'ignore' });
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
}, 30_000);

afterAll(async () => {
  etcd?.kill('SIGKILL');
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

// Each test gets its own key prefix on the one cluster, as separate Skiff instances would.
runStoreSuite('etcd', () => new EtcdStore({ endpoints: [client], prefix: `/t${++seq}` }).open(), { skip: !available });

describe.skipIf(!available)('etcd store specifics', () => {
  it('is chosen by the etcd:// scheme and keeps prefixes apart', async () => {
    const a = await openStore(`etcd://${client.slice(7)}/skiff-a`, '/unused');
    const b = await openStore(`etcd://${client.slice(7)}/skiff-b`, '/unused');
    await a.put('/k', 'from a');
    expect(await b.get('/k')).toBeUndefined();
    expect((await a.get('/k'))?.value).toBe('from a');
    await a.close();
    await b.close();
  });

  it('fails over to the next endpoint and reports an unreachable cluster without naming it', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const s = await new EtcdStore({ endpoints: [dead, client], prefix: '/fo' }).open();
    expect((await s.put('/x', '1')).ok).toBe(true);
    await s.close();
    const none = new EtcdStore({ endpoints: [dead], prefix: '/x', requestTimeoutMs: 2000 });
    const err = await none.open().catch((e) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(String(err.message)).not.toContain(dead);
  });
});

describe('etcd endpoint parsing', () => {
  it('reads hosts, scheme and prefix', () => {
    expect(parseEtcdEndpoint('etcd://127.0.0.1:2379,127.0.0.1:22379/team')).toEqual({ endpoints: ['http://127.0.0.1:2379', 'http://127.0.0.1:22379'], prefix: '/team' });
    expect(parseEtcdEndpoint('etcd+https://10.0.0.1:2379').endpoints).toEqual(['https://10.0.0.1:2379']);
    expect(parseEtcdEndpoint('etcd://h:1').prefix).toBe('/skiff');
  });
});
