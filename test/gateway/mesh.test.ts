import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ResourceObject } from '../../src/api/kinds/types.js';
import { type Authorizer, type Cancellation, type FunctionInvoker, Gateway, type GatewayRequest, InternalCA, type MeshPolicy, type RemoteFunctions, spiffeId, WorkloadIdentity } from '../../src/gateway/index.js';
import { MetricsExporter } from '../../src/observability/index.js';
import { UpstreamGuard } from '../../src/security/index.js';

import { route, startUpstream, type Upstream } from './helpers.js';

const TD = 'mesh.test';

/** NodeInvoker stands for one node's Wasm Functions: it serves only the Functions loaded "here" and says which node answered. */
class NodeInvoker implements FunctionInvoker {
  calls = 0;
  constructor(readonly node: string, readonly serves: Set<string>) {}
  has(ns: string, name: string): boolean {
    return this.serves.has(`${ns}/${name}`);
  }
  tryInline(): undefined {
    return undefined;
  }
  async invoke(ns: string, name: string, req: GatewayRequest, _c: Cancellation) {
    this.calls++;
    if (!this.has(ns, name)) throw Object.assign(new Error('not here'), { code: 'function_not_found' });
    const body = Buffer.from(JSON.stringify({ node: this.node, fn: `${ns}/${name}`, remoteAddress: req.remoteAddress, headers: req.headers, body: Buffer.from(req.body).toString() }));
    return { status: 200, headers: [['content-type', 'application/json'] as [string, string]], body };
  }
}

interface Node {
  name: string;
  gw: Gateway;
  invoker: NodeInvoker;
  remote: RemoteFunctions;
  identity: WorkloadIdentity;
  plain: number;
  mesh: number;
  inputs: Array<Record<string, any>>;
}

// Fast ejection so the tests see it; the shape is the default's.
const POLICY: MeshPolicy = { connectTimeoutMs: 1_000, consecutiveGatewayErrors: 2, consecutive5xx: 5, baseEjectionMs: 30_000, maxEjectionMs: 60_000, retries: 1 };

const routes: ResourceObject[] = [
  route('hello', { hosts: ['*'], http: [{ match: [{ uri: { prefix: '/hello' } }], route: [{ destination: { function: 'hello' } }] }, { match: [{ uri: { prefix: '/checked' } }], filters: [{ authz: { policy: 'data.t.allow' } }], route: [{ destination: { function: 'hello' } }] }] }),
];

let dir: string;
let ca: InternalCA;
const nodes: Node[] = [];
const upstreams: Upstream[] = [];

async function startNode(name: string, serves: string[], id = spiffeId(TD, 'skiff-system', name, 'node')): Promise<Node> {
  const identity = await WorkloadIdentity.create(ca, id);
  const invoker = new NodeInvoker(name, new Set(serves));
  const inputs: Array<Record<string, any>> = [];
  const authorizer: Authorizer = {
    check: async (input) => {
      inputs.push(input as Record<string, any>);
      return { allowed: true };
    },
  };
  const gw = new Gateway({ functions: invoker, logger: pino({ level: 'silent' }), upstreams: UpstreamGuard.permissive(), accessLog: false, authorizer });
  gw.useIdentity(identity);
  const remote = gw.useMesh({ trustDomain: TD, node: name, policy: POLICY });
  expect(gw.update({ routes, services: [] })).toEqual([]);
  const plain = (await gw.listen('127.0.0.1', 0)).port;
  const mesh = (await gw.listenSecure('127.0.0.1', 0, identity, { requireClientCert: true })).port;
  const n = { name, gw, invoker, remote, identity, plain, mesh, inputs };
  nodes.push(n);
  return n;
}

async function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<{ status: number; text: string; json: () => any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, body, signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

/** meshGet sends one request over mutual TLS to a mesh listener, presenting `cert`. */
function meshGet(port: number, path: string, cert: { certPem: string; keyPem: string } | undefined, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, headers: { host: 'x', ...headers }, ca: ca.certPem, servername: 'localhost', cert: cert?.certPem, key: cert?.keyPem, agent: false, timeout: 5_000 }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.end();
  });
}

const at = (n: Node, ready = 1) => ({ node: n.name, host: '127.0.0.1', port: n.mesh, ready });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skiff-mesh-'));
  ca = await InternalCA.loadOrCreate({ trustDomain: TD, dir: join(dir, 'ca') });
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.gw.close(200)));
  await Promise.all(upstreams.map((u) => u.close()));
  for (const n of nodes) n.identity.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('cross-node routing over the mesh', () => {
  it('forwards a Function this node does not serve to a node that does, carrying the client', async () => {
    const n1 = await startNode('a1', []);
    const n2 = await startNode('a2', ['default/hello']);
    n1.remote.set('default', 'hello', [at(n2)]);
    const r = await get(n1.plain, '/hello/x', { 'x-test': '1' });
    expect(r.status).toBe(200);
    const b = r.json();
    expect(b.node).toBe('a2');
    expect(b.remoteAddress).toBe('127.0.0.1');
    expect(b.headers['x-test']).toBe('1');
    // The mesh's own headers end at the receiving gateway.
    expect(Object.keys(b.headers).filter((k) => k.startsWith('x-skiff-forwarded'))).toEqual([]);
    expect(n1.gw.meshCounters()!.forwarded.get('a2 200')).toBe(1);
    // The client once in X-Forwarded-For, after what it sent itself.
    expect(b.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect((await get(n1.plain, '/hello', { 'x-forwarded-for': '198.51.100.1' })).json().headers['x-forwarded-for']).toBe('198.51.100.1, 127.0.0.1');
    // A body goes across too (read whole, so that a retry could replay it).
    const p = await get(n1.plain, '/hello', { 'content-type': 'text/plain' }, 'POST', 'payload');
    expect(p.json().body).toBe('payload');
  });

  it('prefers a local replica and forwards only when there is none', async () => {
    const n1 = await startNode('b1', ['default/hello']);
    const n2 = await startNode('b2', ['default/hello']);
    n1.remote.set('default', 'hello', [at(n2)]);
    for (let i = 0; i < 5; i++) expect((await get(n1.plain, '/hello')).json().node).toBe('b1');
    expect(n2.invoker.calls).toBe(0);
    expect(n1.gw.meshCounters()!.forwarded.size).toBe(0);
    n1.invoker.serves.clear();
    expect((await get(n1.plain, '/hello')).json().node).toBe('b2');
  });

  it('sends a container Function to its local replicas while one is healthy, else to another node', async () => {
    const n1 = await startNode('h1', []);
    const n2 = await startNode('h2', []);
    const mine = await startUpstream((_q, res) => res.end(JSON.stringify({ replica: 'h1' })));
    const theirs = await startUpstream((_q, res) => res.end(JSON.stringify({ replica: 'h2' })));
    const gone = await startUpstream((_q, res) => res.end());
    await gone.close();
    upstreams.push(mine, theirs);
    n1.gw.workloads.set('default', 'hello', [{ kind: 'tcp', host: '127.0.0.1', port: mine.port }]);
    n2.gw.workloads.set('default', 'hello', [{ kind: 'tcp', host: '127.0.0.1', port: theirs.port }]);
    n1.remote.set('default', 'hello', [at(n2)]);
    expect((await get(n1.plain, '/hello')).json().replica).toBe('h1');
    // No replica here any more: the other node's.
    n1.gw.workloads.set('default', 'hello', []);
    expect((await get(n1.plain, '/hello')).json().replica).toBe('h2');
    // A local replica that stopped answering is used until outlier detection ejects it, then the other node's.
    n1.gw.workloads.set('default', 'hello', [{ kind: 'tcp', host: '127.0.0.1', port: gone.port }]);
    const seen: Array<string | number> = [];
    for (let i = 0; i < 5; i++) {
      const r = await get(n1.plain, '/hello');
      seen.push(r.status === 200 ? r.json().replica : r.status);
    }
    expect(seen).toEqual([503, 503, 503, 'h2', 'h2']);
    // The receiving node has no replica either: 503, not sent back.
    n2.gw.workloads.set('default', 'hello', []);
    const r = await get(n1.plain, '/hello');
    expect(r.status).toBe(503);
    expect(r.text).toContain('no ready replica on node h2');
  });

  it('retries a refused connection on another node and ejects the dead node after consecutive failures', async () => {
    const n1 = await startNode('c1', []);
    const n2 = await startNode('c2', ['default/hello']);
    const dead = await startNode('c3', ['default/hello']);
    const deadPort = dead.mesh;
    await dead.gw.close(0);
    n1.remote.set('default', 'hello', [{ node: 'c3', host: '127.0.0.1', port: deadPort, ready: 1 }, at(n2)]);
    const statuses: number[] = [];
    // POSTs as well: a refused connection sent nothing, so even a non-idempotent request is retried.
    for (let i = 0; i < 30; i++) statuses.push((await get(n1.plain, '/hello', {}, i % 2 ? 'POST' : 'GET', i % 2 ? 'x' : undefined)).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const c = n1.gw.meshCounters()!;
    // Ejected at the second consecutive refusal: never tried again within the ejection time.
    expect(c.forwarded.get('c3 connect_error')).toBe(POLICY.consecutiveGatewayErrors);
    expect(c.ejections.get('c3')).toBe(1);
    expect(c.forwarded.get('c2 200')).toBe(30);
    // As Prometheus families.
    const text = await new MetricsExporter({ gateway: n1.gw, process: false }).render();
    expect(text).toContain('skiff_gateway_forwarded_requests_total{node="c2",code="200"} 30');
    expect(text).toContain(`skiff_gateway_forwarded_requests_total{node="c3",code="connect_error"} ${POLICY.consecutiveGatewayErrors}`);
    expect(text).toContain('skiff_gateway_node_ejections_total{node="c3"} 1');
  });

  it('retries a reset on another node for idempotent requests only', async () => {
    const n1 = await startNode('r1', []);
    const n2 = await startNode('r2', ['default/hello']);
    // A node (valid node certificate) whose connections die as soon as a request arrives.
    const id = await WorkloadIdentity.create(ca, spiffeId(TD, 'skiff-system', 'r3', 'node'));
    const resetter = createTlsServer(id.serverOptions(true), (sock) => sock.once('data', () => sock.destroy()));
    resetter.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', r));
    const resetPort = (resetter.address() as AddressInfo).port;
    try {
      n1.remote.set('default', 'hello', [{ node: 'r3', host: '127.0.0.1', port: resetPort, ready: 1000 }, at(n2)]);
      const c = n1.gw.meshCounters()!;
      // Weighted 1000:1 towards the resetting node, so the first pick is almost surely it.
      const gets: number[] = [];
      while ((c.forwarded.get('r3 reset') ?? 0) < 1) gets.push((await get(n1.plain, '/hello')).status);
      expect(gets.every((s) => s === 200)).toBe(true);
      // A POST may have been acted on before the reset: not sent again.
      const before = c.forwarded.get('r3 reset')!;
      let post = 0;
      while (c.forwarded.get('r3 reset') === before && (c.ejections.get('r3') ?? 0) === 0) post = (await get(n1.plain, '/hello', {}, 'POST', 'once')).status;
      expect(post).toBe(502);
    } finally {
      resetter.close();
      id.close();
    }
  });

  it('answers 503 for a forwarded request it cannot serve, and never forwards it again', async () => {
    const n1 = await startNode('d1', ['default/hello']);
    const n2 = await startNode('d2', []);
    // d2 believes d1 serves it (as it does): a plain request to d2 is forwarded there...
    n2.remote.set('default', 'hello', [at(n1)]);
    n1.remote.set('default', 'hello', [at(n2)]);
    expect((await get(n2.plain, '/hello')).json().node).toBe('d1');
    // ...but a request d1 forwards to d2 (stale view) is not sent back to d1.
    n1.invoker.serves.clear();
    const calls = n1.invoker.calls;
    const r = await get(n1.plain, '/hello');
    expect(r.status).toBe(503);
    expect(r.text).toContain('no ready replica on node d2');
    expect(r.text).toContain('not forwarded again');
    expect(n1.invoker.calls).toBe(calls);
    expect(n2.gw.meshCounters()!.forwarded.get('d1 200')).toBe(1);
    expect(n2.gw.meshCounters()!.forwarded.size).toBe(1);
  });

  it('ignores the forwarding headers from a plain-listener client and from a workload certificate', async () => {
    const n = await startNode('e1', ['default/hello', 'default/secret']);
    const spoof = { 'x-skiff-forwarded-function': 'default/secret', 'x-skiff-forwarded-client': '203.0.113.7', 'x-skiff-forwarded-principal': 'spiffe://mesh.test/ns/default/fn/admin' };
    const r = await get(n.plain, '/hello', spoof);
    const b = r.json();
    // Routed by its Route (to hello, not to the named Function), with the real client address.
    expect(b.fn).toBe('default/hello');
    expect(b.remoteAddress).toBe('127.0.0.1');
    expect(Object.keys(b.headers).filter((k) => k.startsWith('x-skiff-forwarded'))).toEqual([]);
    // The authz filter sees the real client and no principal.
    await get(n.plain, '/checked', spoof);
    const src = n.inputs.at(-1)!.attributes.source;
    expect(src.address.socketAddress.address).toBe('127.0.0.1');
    expect(src.principal).toBe('');
    expect(n.inputs.at(-1)!.attributes.request.http.headers['x-skiff-forwarded-client']).toBeUndefined();
    // A workload of the trust domain is not a node: same treatment on the mesh listener.
    const workload = await WorkloadIdentity.create(ca, spiffeId(TD, 'default', 'caller'));
    try {
      const w = await meshGet(n.mesh, '/checked', workload.certificate, spoof);
      expect(JSON.parse(w.text).fn).toBe('default/hello');
      const s = n.inputs.at(-1)!.attributes.source;
      expect(s.principal).toBe(spiffeId(TD, 'default', 'caller'));
      expect(s.address.socketAddress.address).toBe('127.0.0.1');
    } finally {
      workload.close();
    }
  });

  it('lets the authz filter see the forwarding node as the principal and the original client from a node peer', async () => {
    const n = await startNode('f1', ['default/hello']);
    const peer = await WorkloadIdentity.create(ca, spiffeId(TD, 'skiff-system', 'f0', 'node'));
    try {
      await meshGet(n.mesh, '/checked', peer.certificate, { 'x-skiff-forwarded-client': '203.0.113.7' });
      const src = n.inputs.at(-1)!.attributes.source;
      expect(src.principal).toBe(spiffeId(TD, 'skiff-system', 'f0', 'node'));
      expect(src.address.socketAddress.address).toBe('203.0.113.7');
    } finally {
      peer.close();
    }
  });

  it('refuses to forward to a peer that is not a node, and a client without a certificate of the CA', async () => {
    const n1 = await startNode('g1', []);
    // A listener with a valid certificate of the CA, but a workload's.
    const impostor = await startNode('g2', ['default/hello'], spiffeId(TD, 'default', 'impostor'));
    n1.remote.set('default', 'hello', [at(impostor)]);
    const r = await get(n1.plain, '/hello');
    // The handshake is refused on the client side: a bad gateway, never the impostor's answer.
    expect(r.status).toBe(502);
    expect(impostor.invoker.calls).toBe(0);
    // Another CA's node certificate does not get through the mesh listener's handshake.
    const other = await InternalCA.create(TD);
    const foreign = await WorkloadIdentity.create(other, spiffeId(TD, 'skiff-system', 'g9', 'node'));
    try {
      await expect(meshGet(impostor.mesh, '/hello', foreign.certificate, { 'x-skiff-forwarded-function': 'default/hello' })).rejects.toThrow();
      await expect(meshGet(impostor.mesh, '/hello', undefined)).rejects.toThrow();
    } finally {
      foreign.close();
    }
    expect(impostor.invoker.calls).toBe(0);
  });
});
