import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';

import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { builtinKinds } from '../../src/api/kinds/index.js';
import { ResourceService } from '../../src/api/resources.js';
import { ApiServer } from '../../src/api/server.js';
import { chainsTo, ClusterAuthority, clusterMount, FailureLimiter, formatNodeToken, joinCluster, JoinError, NodePeerCheck, renewNodeCertificate } from '../../src/cluster/index.js';
import { createCsr, InternalCA, spiffeId } from '../../src/gateway/index.js';
import { MemoryStore } from '../../src/store/index.js';

const logger = pino({ level: 'silent' });
const TD = 'skiff.local';

interface Node {
  resources: ResourceService;
  authority: ClusterAuthority;
  server: ApiServer;
  url: string;
  token: string;
  limiter: FailureLimiter;
  posts: number;
}

async function startNode(opts: { store?: MemoryStore; limiter?: FailureLimiter; now?: () => number } = {}): Promise<Node> {
  const resources = new ResourceService(opts.store ?? new MemoryStore(), builtinKinds());
  const authority = await ClusterAuthority.open({ resources, logger, trustDomain: TD, mode: 'init', pollMs: 0, now: opts.now });
  const limiter = opts.limiter ?? new FailureLimiter({ baseMs: 300, maxMs: 1000 });
  const mount = clusterMount({ authority, resources, logger, trustDomain: TD, limiter, nodeIsLive: async (name) => name === 'busy' });
  const node = { resources, authority, limiter, posts: 0 } as Node;
  const counting = { ...mount, handle: (...a: Parameters<typeof mount.handle>) => ((node.posts += a[0].method === 'POST' ? 1 : 0), mount.handle(...a)) };
  node.server = new ApiServer({ resources, logger, version: 't', token: authority.token, mounts: [counting] });
  const cert = await authority.issueServing({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const { port } = await node.server.listen('127.0.0.1', 0, cert);
  node.url = `https://127.0.0.1:${port}`;
  node.token = formatNodeToken(authority.certPem, authority.joinSecret!);
  return node;
}

function post(url: string, path: string, body: unknown, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${url}${path}`, { method: 'POST', ca, headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function expectJoinError(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(JoinError);
  expect((err as JoinError).code).toBe(code);
  expect((err as Error).message).toMatch(message);
}

describe('joining a cluster', () => {
  let a: Node;
  let mitm: Node;
  beforeAll(async () => {
    a = await startNode();
    mitm = await startNode();
  });
  afterAll(async () => {
    await a?.server.close();
    await mitm?.server.close();
  });

  it('initialises the store once: CA, tokens, and the join secret only as a hash', async () => {
    const secret = await a.resources.get(a.resources.kind('Secret'), 'skiff-system', 'skiff-cluster-bootstrap');
    const text = JSON.stringify(secret);
    expect(text).not.toContain(a.authority.joinSecret!);
    expect(Buffer.from(String((secret.data as Record<string, string>)['join-secret-hash']), 'base64').toString()).toMatch(/^scrypt\$/);
    expect(a.authority.created).toBe(true);
    // A second node on the same store reads the same cluster.
    const again = await ClusterAuthority.open({ resources: a.resources, logger, trustDomain: TD, mode: 'init', pollMs: 0 });
    expect(again.created).toBe(false);
    expect(again.token).toBe(a.authority.token);
    expect(again.certPem).toBe(a.authority.certPem);
    expect(again.joinSecret).toBeUndefined();
  });

  it('two nodes initialising an empty store at once end up with one cluster', async () => {
    const store = new MemoryStore();
    const open = () => ClusterAuthority.open({ resources: new ResourceService(store, builtinKinds()), logger, trustDomain: TD, mode: 'plain', pollMs: 0 });
    const [x, y] = await Promise.all([open(), open()]);
    expect(x.token).toBe(y.token);
    expect(x.certPem).toBe(y.certPem);
    expect([x.created, y.created].filter(Boolean)).toHaveLength(1);
  });

  it('--cluster-init --token sets the join secret; a different one on an initialised store is refused', async () => {
    const resources = new ResourceService(new MemoryStore(), builtinKinds());
    const chosen = 'operator-chosen-secret-1';
    const first = await ClusterAuthority.open({ resources, logger, trustDomain: TD, mode: 'init', joinSecret: chosen, pollMs: 0 });
    expect(first.joinSecret).toBe(chosen);
    expect(await first.checkJoinSecret(chosen)).toBe(true);
    expect(await first.checkJoinSecret(chosen + 'x')).toBe(false);
    const same = await ClusterAuthority.open({ resources, logger, trustDomain: TD, mode: 'init', joinSecret: chosen, pollMs: 0 });
    expect(same.token).toBe(first.token);
    await expect(ClusterAuthority.open({ resources, logger, trustDomain: TD, mode: 'init', joinSecret: 'another-secret-entirely', pollMs: 0 })).rejects.toThrow(/join secret is not the one --token gives/);
  });

  it('a joining node finding no bootstrap in its store is refused', async () => {
    await expect(ClusterAuthority.open({ resources: new ResourceService(new MemoryStore(), builtinKinds()), logger, trustDomain: TD, mode: 'join', pollMs: 0 })).rejects.toThrow(/holds no cluster bootstrap/);
  });

  it('joins with a good token: a node certificate from the cluster CA and the cluster-wide tokens', async () => {
    const joined = await joinCluster({ url: a.url, token: a.token, nodeName: 'n2', trustDomain: TD });
    expect(joined.token).toBe(a.authority.token);
    expect(joined.controllerToken).toBe(a.authority.controllerToken);
    expect(joined.trustBundle).toBe(a.authority.certPem);
    expect(chainsTo(joined.certPem, a.authority.certPem)).toBe(true);
    expect(chainsTo(joined.certPem, mitm.authority.certPem)).toBe(false);
    expect(joined.keyPem).toContain('PRIVATE KEY');
    const life = joined.notAfter.getTime() - joined.notBefore.getTime();
    expect(life).toBeGreaterThan(23 * 3600_000);
    expect(life).toBeLessThan(25 * 3600_000);
  });

  it('a wrong secret gets one uniform 401, then the address is slowed down (429, even for the right secret)', async () => {
    const limiter = new FailureLimiter({ baseMs: 400, maxMs: 400 });
    const b = await startNode({ limiter });
    try {
      const wrong = b.token.replace(/:[^:]+$/, ':' + 'x'.repeat(43));
      await expectJoinError(joinCluster({ url: b.url, token: wrong, nodeName: 'n3', trustDomain: TD }), 'join_token', /refused the token/);
      await expectJoinError(joinCluster({ url: b.url, token: b.token, nodeName: 'n3', trustDomain: TD }), 'join_refused', /too many failed attempts/);
      // Garbage bodies are failures too, and answer exactly like a wrong secret.
      await new Promise((r) => setTimeout(r, 450));
      const r1 = await post(b.url, '/cluster/v1/join', { nope: 1 }, b.authority.certPem);
      await new Promise((r) => setTimeout(r, 450));
      const r2 = await post(b.url, '/cluster/v1/join', { secret: 'y'.repeat(43), nodeName: 'n3', csr: 'x' }, b.authority.certPem);
      expect(r1.status).toBe(401);
      expect(r2.status).toBe(401);
      expect(JSON.parse(r1.body).message).toBe(JSON.parse(r2.body).message);
      await new Promise((r) => setTimeout(r, 450));
      const ok = await joinCluster({ url: b.url, token: b.token, nodeName: 'n3', trustDomain: TD });
      expect(chainsTo(ok.certPem, b.authority.certPem)).toBe(true);
    } finally {
      await b.server.close();
    }
  });

  it('refuses a CA that does not match the token (a man in the middle) and sends it nothing', async () => {
    const before = mitm.posts;
    await expectJoinError(joinCluster({ url: mitm.url, token: a.token, nodeName: 'n4', trustDomain: TD }), 'join_ca_mismatch', /does not match the hash in the token/);
    expect(mitm.posts).toBe(before);
    await expectJoinError(joinCluster({ url: a.url, token: 'K10abc::node:secret', nodeName: 'n4', trustDomain: TD }), 'join_token', /not a Skiff node token/);
  });

  it('signs only the node identity of the name asked for, and not for a live node of that name', async () => {
    const other = await createCsr(spiffeId(TD, 'skiff-system', 'someone-else', 'node'));
    const r = await post(a.url, '/cluster/v1/join', { secret: a.authority.joinSecret, nodeName: 'n5', csr: other.csrPem }, a.authority.certPem);
    expect(r.status).toBe(400);
    expect(r.body).toContain('may only ask for spiffe://skiff.local/ns/skiff-system/node/n5');
    const workload = await createCsr(spiffeId(TD, 'default', 'n5'));
    expect((await post(a.url, '/cluster/v1/join', { secret: a.authority.joinSecret, nodeName: 'n5', csr: workload.csrPem }, a.authority.certPem)).status).toBe(400);
    await expectJoinError(joinCluster({ url: a.url, token: a.token, nodeName: 'busy', trustDomain: TD }), 'join_refused', /held by a live node/);
  });

  it('renews a member node certificate with the node token; a non-member is refused', async () => {
    await expectJoinError(renewNodeCertificate({ url: a.url, token: a.token, nodeName: 'ghost', trustDomain: TD, trustBundle: a.authority.certPem }), 'join_refused', /not a member/);
    await a.resources.create(a.resources.kind('Node'), undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'member' } });
    const renewed = await renewNodeCertificate({ url: a.url, token: a.token, nodeName: 'member', trustDomain: TD, trustBundle: a.authority.certPem });
    expect(chainsTo(renewed.certPem, a.authority.certPem)).toBe(true);
  });

  it('serves cacerts without a token, and the rotation only with the API token', async () => {
    const res = await fetchInsecure(`${a.url}/cluster/v1/cacerts`);
    expect(res).toBe(a.authority.certPem);
    expect((await post(a.url, '/cluster/v1/rotate-ca', { overlapMs: 1000 }, a.authority.certPem)).status).toBe(401);
  });
});

function fetchInsecure(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get(url, { rejectUnauthorized: false, agent: false }, (res) => {
      let t = '';
      res.on('data', (d) => (t += d));
      res.on('end', () => resolve(t));
    }).on('error', reject);
  });
}

/** handshake tells whether a server trusting `ca` (as a node's mesh does) accepts a client certificate. */
async function handshake(ca: string, client: { certPem: string; keyPem: string }, server: { certPem: string; keyPem: string }): Promise<boolean> {
  const srv = tls.createServer({ cert: server.certPem, key: server.keyPem, ca, requestCert: true, rejectUnauthorized: true }, (s) => s.end('ok'));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  try {
    return await new Promise<boolean>((resolve) => {
      const s = tls.connect({ port, host: '127.0.0.1', cert: client.certPem, key: client.keyPem, rejectUnauthorized: false }, () => undefined);
      s.on('data', () => {
        resolve(true);
        s.destroy();
      });
      s.on('error', () => resolve(false));
      s.on('close', () => resolve(false));
    });
  } finally {
    srv.close();
  }
}

describe('CA rotation', () => {
  it('trusts the old CA during the overlap and not after; new certificates come from the new CA', async () => {
    let now = Date.now();
    const resources = new ResourceService(new MemoryStore(), builtinKinds());
    const authority = await ClusterAuthority.open({ resources, logger, trustDomain: TD, mode: 'init', pollMs: 0, now: () => now });
    const other = await ClusterAuthority.open({ resources, logger, trustDomain: TD, mode: 'plain', pollMs: 0, now: () => now });
    let changes = 0;
    other.onChange(() => changes++);
    const id = spiffeId(TD, 'skiff-system', 'n1', 'node');
    const old = await authority.issue(id, { ttlMs: 3600_000 });
    const serverOld = await authority.issue(spiffeId(TD, 'skiff-system', 'srv', 'node'), { ttlMs: 3600_000 });
    const hashBefore = authority.caHash;
    await authority.rotate(60_000);
    expect(authority.caHash).not.toBe(hashBefore);
    const fresh = await authority.issue(id, { ttlMs: 3600_000 });
    // Another node sees the rotation on its next read of the bootstrap, without a restart.
    await other.refresh();
    expect(changes).toBe(1);
    expect(other.certPem).toBe(authority.certPem);
    expect(other.signingCertPem).toBe(authority.signingCertPem);
    const serverNew = await other.issue(spiffeId(TD, 'skiff-system', 'srv', 'node'), { ttlMs: 3600_000 });
    expect(chainsTo(fresh.certPem, authority.signingCertPem)).toBe(true);
    expect(chainsTo(old.certPem, authority.signingCertPem)).toBe(false);
    // During the overlap, both generations are accepted in a real handshake.
    expect(await handshake(other.certPem, old, serverNew)).toBe(true);
    expect(await handshake(other.certPem, fresh, serverOld)).toBe(true);
    now += 61_000;
    await other.refresh();
    expect(changes).toBe(2);
    expect(await handshake(other.certPem, old, serverNew)).toBe(false);
    expect(await handshake(other.certPem, fresh, serverNew)).toBe(true);
  });
});

describe('NodePeerCheck', () => {
  it('accepts current nodes only: not workloads, not deleted nodes, not certificates older than the Node', async () => {
    const ca = await InternalCA.create(TD);
    const created = new Date(Date.now() - 3600_000).toISOString();
    const nodes = new Map([['n1', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', creationTimestamp: created } }]]);
    const check = new NodePeerCheck(TD, (name) => nodes.get(name));
    const peer = (c: { certPem: string }) => {
      const x = new X509Certificate(c.certPem);
      return { subjectaltname: x.subjectAltName as string, valid_from: x.validFrom as string };
    };
    const n1 = await ca.issue(spiffeId(TD, 'skiff-system', 'n1', 'node'));
    expect(check.reason(peer(n1))).toBeUndefined();
    expect(check.reason(peer(await ca.issue(spiffeId(TD, 'skiff-system', 'n1', 'fn'))))).toMatch(/not a node identity/);
    expect(check.reason(peer(await ca.issue(spiffeId(TD, 'default', 'n1', 'node'))))).toMatch(/not a node identity/);
    expect(check.reason(peer(await ca.issue(spiffeId(TD, 'skiff-system', 'n2', 'node'))))).toMatch(/no Node n2/);
    const stale = await ca.issue(spiffeId(TD, 'skiff-system', 'n1', 'node'), { now: new Date(Date.now() - 2 * 3600_000) });
    expect(check.reason(peer(stale))).toMatch(/made before its Node/);
    nodes.delete('n1');
    expect(check.accepts(peer(n1))).toBe(false);
  });
});
