import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ModuleSource } from '../../src/functions/index.js';
import { Gateway, InternalCA, MESH_BLOB_PATH, spiffeId, WorkloadIdentity } from '../../src/gateway/index.js';
import { HostDirs, UpstreamGuard } from '../../src/security/index.js';
import { fetchBlobFromPeers } from '../../src/server/peer-blobs.js';
import { BlobStore } from '../../src/store/index.js';

import { EchoInvoker } from './helpers.js';

const TD = 'blobs.test';
const logger = pino({ level: 'silent' });
const MODULE = Buffer.from('\0asm\x01\0\0\0 pretend module bytes');
const HEX = createHash('sha256').update(MODULE).digest('hex');

let dir: string;
let ca: InternalCA;
const closers: Array<() => unknown> = [];

/** startServer is a node's gateway whose mesh listener serves the blobs of `store`, presenting `id`. */
async function startServer(id: string, store: BlobStore): Promise<number> {
  const identity = await WorkloadIdentity.create(ca, id);
  const gw = new Gateway({ functions: new EchoInvoker(), logger, upstreams: UpstreamGuard.permissive(), accessLog: false });
  gw.useIdentity(identity);
  gw.useMesh({ trustDomain: TD, node: 'server', blobs: (hex) => store.get(hex).catch(() => undefined) });
  gw.update({ routes: [], services: [] });
  const { port } = await gw.listenSecure('127.0.0.1', 0, identity, { requireClientCert: true });
  closers.push(() => gw.close(100), () => identity.close());
  return port;
}

function meshGet(port: number, path: string, cert: { certPem: string; keyPem: string }): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, ca: ca.certPem, servername: 'localhost', cert: cert.certPem, key: cert.keyPem, agent: false, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skiff-mesh-blobs-'));
  ca = await InternalCA.loadOrCreate({ trustDomain: TD, dir: join(dir, 'ca') });
});

afterAll(async () => {
  for (const c of closers.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

describe('uploaded modules across nodes', () => {
  it('serves a blob by digest to node identities only', async () => {
    const store = new BlobStore({ dir: join(dir, 's1') });
    await store.put(HEX, MODULE);
    const port = await startServer(spiffeId(TD, 'skiff-system', 'server', 'node'), store);
    const node = await WorkloadIdentity.create(ca, spiffeId(TD, 'skiff-system', 'other', 'node'));
    const workload = await WorkloadIdentity.create(ca, spiffeId(TD, 'default', 'fn'));
    closers.push(() => node.close(), () => workload.close());
    const ok = await meshGet(port, MESH_BLOB_PATH + HEX, node.certificate);
    expect(ok.status).toBe(200);
    expect(ok.body.equals(MODULE)).toBe(true);
    expect((await meshGet(port, MESH_BLOB_PATH + 'a'.repeat(64), node.certificate)).status).toBe(404);
    expect((await meshGet(port, MESH_BLOB_PATH + 'not-a-digest', node.certificate)).status).toBe(400);
    // A workload of the same CA is not a node: the path is not special for it (no route matches).
    const w = await meshGet(port, MESH_BLOB_PATH + HEX, workload.certificate);
    expect(w.status).toBe(404);
    expect(w.body.includes(MODULE)).toBe(false);
  });

  it('loads a module it lacks from a peer node, stores it, and refuses a peer that is not a node or sends other bytes', async () => {
    const has = new BlobStore({ dir: join(dir, 'has') });
    await has.put(HEX, MODULE);
    const good = await startServer(spiffeId(TD, 'skiff-system', 'good', 'node'), has);
    const impostor = await startServer(spiffeId(TD, 'default', 'impostor'), has);
    const me = await WorkloadIdentity.create(ca, spiffeId(TD, 'skiff-system', 'me', 'node'));
    closers.push(() => me.close());
    const local = new BlobStore({ dir: join(dir, 'local') });
    const peers = [{ node: 'impostor', host: '127.0.0.1', port: impostor }, { node: 'good', host: '127.0.0.1', port: good }];
    const fetchBlob = (hex: string, max: number) => fetchBlobFromPeers({ peers: () => peers, tls: () => me.clientOptions(), trustDomain: TD, logger }, hex, max);
    // The impostor is asked first and refused at the handshake; the node answers.
    const source = new ModuleSource({ blobs: local, hostDirs: HostDirs.none(), upstreams: UpstreamGuard.from([]), peerBlobs: fetchBlob });
    const loaded = await source.load(`blob:sha256:${HEX}`);
    expect(Buffer.from(loaded.bytes).equals(MODULE)).toBe(true);
    expect(existsSync(local.pathOf(HEX))).toBe(true);
    // Only the impostor: nobody to fetch from.
    peers.splice(1, 1);
    const other = createHash('sha256').update('other').digest('hex');
    await expect(new ModuleSource({ blobs: new BlobStore({ dir: join(dir, 'l2') }), hostDirs: HostDirs.none(), upstreams: UpstreamGuard.from([]), peerBlobs: fetchBlob }).load(`blob:sha256:${HEX}`)).rejects.toMatchObject({ reason: 'ModuleNotFound' });
    // A peer that sends bytes of another digest: refused, nothing stored.
    const l3 = new BlobStore({ dir: join(dir, 'l3') });
    const liar = new ModuleSource({ blobs: l3, hostDirs: HostDirs.none(), upstreams: UpstreamGuard.from([]), peerBlobs: async () => MODULE });
    await expect(liar.load(`blob:sha256:${other}`)).rejects.toMatchObject({ reason: 'ModuleCorrupt' });
    expect(existsSync(l3.pathOf(other))).toBe(false);
  });
});
