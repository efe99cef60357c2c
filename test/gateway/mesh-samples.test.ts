import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Gateway, InternalCA, MESH_SAMPLES_PATH, spiffeId, WorkloadIdentity } from '../../src/gateway/index.js';
import { UpstreamGuard } from '../../src/security/index.js';
import { MeshPeerSampler } from '../../src/server/peer-samples.js';

import { EchoInvoker } from './helpers.js';

const TD = 'samples.test';
const logger = pino({ level: 'silent' });
const SAMPLES = { 'default/busy': { rps: 12.5, concurrency: 0.75 } };

let dir: string;
let ca: InternalCA;
let otherCa: InternalCA;
const closers: Array<() => unknown> = [];

/** startNode is a node's gateway serving SAMPLES on its mesh listener (and a plain listener), presenting `id`. */
async function startNode(id: string): Promise<{ mesh: number; plain: number }> {
  const identity = await WorkloadIdentity.create(ca, id);
  const gw = new Gateway({ functions: new EchoInvoker(), logger, upstreams: UpstreamGuard.permissive(), accessLog: false });
  gw.useIdentity(identity);
  gw.useMesh({ trustDomain: TD, node: 'server', samples: () => SAMPLES });
  gw.update({ routes: [], services: [] });
  const { port: mesh } = await gw.listenSecure('127.0.0.1', 0, identity, { requireClientCert: true });
  const { port: plain } = await gw.listen('127.0.0.1', 0);
  closers.push(() => gw.close(100), () => identity.close());
  return { mesh, plain };
}

function meshGet(port: number, cert: { certPem: string; keyPem: string }, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: MESH_SAMPLES_PATH, method, ca: ca.certPem, servername: 'localhost', cert: cert.certPem, key: cert.keyPem, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skiff-mesh-samples-'));
  ca = await InternalCA.loadOrCreate({ trustDomain: TD, dir: join(dir, 'ca') });
  otherCa = await InternalCA.loadOrCreate({ trustDomain: TD, dir: join(dir, 'other-ca') });
});

afterAll(async () => {
  for (const c of closers.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

describe('autoscaler samples across nodes', () => {
  it('serves the samples on the mesh listener to node identities only', async () => {
    const { mesh, plain } = await startNode(spiffeId(TD, 'skiff-system', 'server', 'node'));
    const node = await WorkloadIdentity.create(ca, spiffeId(TD, 'skiff-system', 'other', 'node'));
    const workload = await WorkloadIdentity.create(ca, spiffeId(TD, 'default', 'fn'));
    const forged = await WorkloadIdentity.create(otherCa, spiffeId(TD, 'skiff-system', 'other', 'node'));
    closers.push(() => node.close(), () => workload.close(), () => forged.close());
    const ok = await meshGet(mesh, node.certificate);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ node: 'server', functions: SAMPLES });
    expect((await meshGet(mesh, node.certificate, 'POST')).status).toBe(405);
    // A workload of the same CA is not a node: no route matches the path for it.
    const w = await meshGet(mesh, workload.certificate);
    expect(w.status).toBe(404);
    expect(w.body).not.toContain('busy');
    // A node identity signed by another CA does not get through the handshake.
    await expect(meshGet(mesh, forged.certificate)).rejects.toThrow();
    // The plain gateway listener has no peer identity: the path is an ordinary (unrouted) one.
    const p = await fetch(`http://127.0.0.1:${plain}${MESH_SAMPLES_PATH}`);
    expect(p.status).toBe(404);
    expect(await p.text()).not.toContain('busy');
  });

  it('MeshPeerSampler gathers from nodes over mutual TLS and refuses a server that is not a node', async () => {
    const good = await startNode(spiffeId(TD, 'skiff-system', 'good', 'node'));
    const impostor = await startNode(spiffeId(TD, 'default', 'impostor'));
    const me = await WorkloadIdentity.create(ca, spiffeId(TD, 'skiff-system', 'me', 'node'));
    closers.push(() => me.close());
    const sampler = new MeshPeerSampler({
      peers: () => [
        { node: 'good', host: '127.0.0.1', port: good.mesh },
        { node: 'impostor', host: '127.0.0.1', port: impostor.mesh },
      ],
      tls: () => me.clientOptions(),
      trustDomain: TD,
      logger,
      timeoutMs: 2_000,
    });
    const got = await sampler.collect();
    expect(got).toEqual([{ node: 'good', functions: SAMPLES }]);
    expect(Object.fromEntries(sampler.failures())).toEqual({ impostor: 1 });
  });
});
