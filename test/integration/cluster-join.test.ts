import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BIN, cli, REPO, type RunningSkiff, startSkiff, waitFor } from '../helpers/skiff-process.js';
import { hasBinary } from '../helpers/system-deps.js';

const available = hasBinary('etcd');
let etcd: ChildProcess | undefined;
let etcdDir = '';
let store = '';
const nodes: RunningSkiff[] = [];
const dirs: string[] = [];

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** up runs `skiff up` expecting it to fail: its exit code and stderr. */
function upFails(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, 'up', '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

const httpsUrl = (s: RunningSkiff) => s.api.replace(/^http:/, 'https:');
const meshPort = (s: RunningSkiff) => Number(/mesh=https:\/\/127\.0\.0\.1:(\d+)/.exec(s.readyLine)![1]);

function getText(url: string, ca?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get(url, { agent: false, ...(ca ? { ca } : { rejectUnauthorized: false }) }, (res) => {
      let t = '';
      res.on('data', (d) => (t += d));
      res.on('end', () => resolve(t));
    }).on('error', reject);
  });
}

/** meshCall makes a request to a node's mesh listener with a client certificate: the status, or the connection error. */
function meshCall(port: number, ca: string, cert?: { certPem: string; keyPem: string }): Promise<number | string> {
  return new Promise((resolve) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', agent: false, ca, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}), checkServerIdentity: () => undefined, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** serverCertificate reads the certificate a TLS listener presents. */
function serverCertificate(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const der = s.getPeerCertificate().raw;
      s.destroy();
      resolve(new X509Certificate(der).toString());
    });
    s.on('error', reject);
  });
}

function chains(certPem: string, bundle: string): boolean {
  const cert = new X509Certificate(certPem);
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? []).some((r) => {
    const ca = new X509Certificate(r);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  });
}

describe.skipIf(!available)('skiff up --cluster-init / --join on etcd', () => {
  let n1: RunningSkiff;
  let nodeToken = '';
  let bundle = '';

  beforeAll(async () => {
    etcdDir = tmp('skiff-join-etcd-');
    const [cp, pp] = [await freePort(), await freePort()];
    const client = `http://127.0.0.1:${cp}`;
    const peer = `http://127.0.0.1:${pp}`;
    etcd = spawn('etcd', ['--name', 'j', '--data-dir', etcdDir, '--listen-client-urls', client, '--advertise-client-urls', client, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `j=${peer}`, '--log-level', 'error'], { stdio: 'ignore' });
    await waitFor(async () => (await fetch(`${client}/health`)).ok, 'etcd', 20_000);
    store = `etcd://127.0.0.1:${cp}/join-test`;
    n1 = await startSkiff({ dataDir: tmp('skiff-n1-'), args: ['--store', store, '--cluster-init', '--node-name', 'n1'], timeoutMs: 40_000 });
    nodes.push(n1);
    nodeToken = readFileSync(join(n1.dataDir, 'node-token'), 'utf8').trim();
    bundle = await getText(`${httpsUrl(n1)}/cluster/v1/cacerts`);
  }, 70_000);

  afterAll(async () => {
    for (const n of nodes) await n.stop();
    etcd?.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('the first node writes a K3s-style node token (0600) pinning the CA it serves', () => {
    expect(nodeToken).toMatch(/^K10[0-9a-f]{64}::node:\S+$/);
    expect(readFileSync(join(n1.dataDir, 'node-token')).length).toBeGreaterThan(0);
    const { mode } = statSync(join(n1.dataDir, 'node-token'));
    expect(mode & 0o777).toBe(0o600);
    expect(nodeToken.slice(3, 67)).toBe(createHash('sha256').update(bundle).digest('hex'));
  });

  it('a wrong token: non-zero exit, a clear message, nothing written', async () => {
    const dataDir = join(tmp('skiff-bad-'), 'data');
    const wrong = nodeToken.replace(/:[^:]+$/, ':' + 'w'.repeat(43));
    const r = await upFails(['--data-dir', dataDir, '--store', store, '--join', httpsUrl(n1), '--token', wrong, '--node-name', 'bad']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/refused the token/);
    expect(existsSync(dataDir)).toBe(false);
  }, 30_000);

  it('a token whose CA hash does not match what the node serves: refused as a man in the middle', async () => {
    const dataDir = join(tmp('skiff-mitm-'), 'data');
    const tampered = `K10${'0'.repeat(64)}${nodeToken.slice(67)}`;
    const r = await upFails(['--data-dir', dataDir, '--store', store, '--join', httpsUrl(n1), '--token', tampered, '--node-name', 'mitm']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/does not match the hash in the token/);
    expect(existsSync(dataDir)).toBe(false);
  }, 30_000);

  it('joins with the good token: same API token, certificates from the cluster CA, both nodes listed', async () => {
    const n2 = await startSkiff({ dataDir: tmp('skiff-n2-'), args: ['--store', store, '--join', httpsUrl(n1), '--token', nodeToken, '--node-name', 'n2'], timeoutMs: 40_000 });
    nodes.push(n2);
    expect(n2.token).toBe(n1.token);
    expect(readFileSync(join(n2.dataDir, 'controller-token'), 'utf8')).toBe(readFileSync(join(n1.dataDir, 'controller-token'), 'utf8'));
    expect(readFileSync(join(n2.dataDir, 'node-token'), 'utf8').trim()).toBe(nodeToken);
    // The mesh listener presents the node certificate, the API a serving certificate: both from the cluster CA.
    const meshCert = await serverCertificate(meshPort(n2));
    expect(chains(meshCert, bundle)).toBe(true);
    expect(new X509Certificate(meshCert).subjectAltName).toContain('URI:spiffe://skiff.local/ns/skiff-system/node/n2');
    const life = Date.parse(new X509Certificate(meshCert).validTo) - Date.parse(new X509Certificate(meshCert).validFrom);
    expect(life).toBeLessThanOrEqual(24 * 3600_000 + 60_000);
    expect(chains(await serverCertificate(Number(new URL(n2.api).port)), bundle)).toBe(true);
    // One kubeconfig CA verifies every node's API.
    expect(await getText(`${httpsUrl(n2)}/cluster/v1/cacerts`, bundle)).toBe(bundle);
    expect(await getText(`${httpsUrl(n1)}/cluster/v1/cacerts`, bundle)).toBe(bundle);
    const listed = await waitFor(async () => {
      const r = await cli(['get', 'nodes'], { skiff: n2 });
      return r.code === 0 && /\bn1\b/.test(r.stdout) && /\bn2\b/.test(r.stdout) ? r.stdout : undefined;
    }, 'both nodes in skiff get nodes', 20_000);
    expect(listed).toMatch(/NAME\s+STATUS/);
  }, 60_000);

  it('the mesh accepts only certificates of current nodes: a deleted Node is refused', async () => {
    const { createCsr } = await import('../../src/gateway/index.js');
    const secret = nodeToken.slice(nodeToken.lastIndexOf(':') + 1);
    const csr = await createCsr('spiffe://skiff.local/ns/skiff-system/node/n9');
    const res = await fetch(`${n1.api}/cluster/v1/join`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ secret, nodeName: 'n9', csr: csr.csrPem }) });
    expect(res.status).toBe(200);
    const cert = { certPem: ((await res.json()) as { certificate: string }).certificate, keyPem: csr.keyPem };
    const port = meshPort(n1);
    // A valid chain, but no Node n9: refused.
    expect(typeof (await meshCall(port, bundle, cert))).toBe('string');
    expect(typeof (await meshCall(port, bundle))).toBe('string');
    const nodeObj = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n9' } };
    const created = await fetch(`${n1.api}/api/v1/nodes`, { method: 'POST', headers: { authorization: `Bearer ${n1.token}`, 'content-type': 'application/json' }, body: JSON.stringify(nodeObj) });
    expect(created.status).toBe(201);
    await waitFor(async () => typeof (await meshCall(port, bundle, cert)) === 'number', 'n9 accepted on the mesh once its Node exists', 15_000);
    const deleted = await fetch(`${n1.api}/api/v1/nodes/n9`, { method: 'DELETE', headers: { authorization: `Bearer ${n1.token}` } });
    expect(deleted.status).toBe(200);
    await waitFor(async () => typeof (await meshCall(port, bundle, cert)) === 'string', 'n9 refused once its Node is deleted', 15_000);
  }, 60_000);

  it('skiff cluster rotate-ca: every node takes the new CA without a restart; the old one is trusted for the overlap only', async () => {
    const n2 = nodes[1]!;
    const { createCsr } = await import('../../src/gateway/index.js');
    const secret = nodeToken.slice(nodeToken.lastIndexOf(':') + 1);
    const csr = await createCsr('spiffe://skiff.local/ns/skiff-system/node/n8');
    const res = await fetch(`${n1.api}/cluster/v1/join`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ secret, nodeName: 'n8', csr: csr.csrPem }) });
    const old = { certPem: ((await res.json()) as { certificate: string }).certificate, keyPem: csr.keyPem };
    await fetch(`${n1.api}/api/v1/nodes`, { method: 'POST', headers: { authorization: `Bearer ${n1.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n8' } }) });
    const port = meshPort(n2);
    await waitFor(async () => (await meshCall(port, bundle, old)) === 404, 'n8 accepted on n2', 15_000);

    const rotated = await cli(['cluster', 'rotate-ca', '--overlap', '15s'], { skiff: n1 });
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toMatch(/cluster CA rotated/);
    // n2 reads the bootstrap again on its own: a two-root bundle, then a node certificate from the new root.
    const both: string = await waitFor(async () => {
      const b = await getText(`${httpsUrl(n2)}/cluster/v1/cacerts`, bundle);
      return (b.match(/BEGIN CERTIFICATE/g) ?? []).length === 2 ? b : '';
    }, 'n2 serving the two-root bundle', 15_000);
    const newRoot = both.slice(0, both.indexOf('-----END CERTIFICATE-----') + 26);
    // During the overlap the old root's certificate is still accepted.
    expect(await meshCall(port, both, old)).toBe(404);
    await waitFor(async () => chains(await serverCertificate(port), newRoot), 'n2 presenting a certificate from the new CA', 15_000);
    // A kubeconfig from before the rotation still verifies the API during the overlap.
    expect(chains(await serverCertificate(Number(new URL(n2.api).port)), bundle)).toBe(true);
    // The node token follows the bundle's hash, on the node that made it and the one that joined.
    await waitFor(() => readFileSync(join(n2.dataDir, 'node-token'), 'utf8').trim().slice(3, 67) === createHash('sha256').update(both).digest('hex'), "n2's node token pinning the new bundle", 15_000);
    // After it, refused.
    await waitFor(async () => typeof (await meshCall(port, both, old)) === 'string', 'the old CA refused after the overlap', 20_000);
    // Once the old root is gone, the API is served with a certificate from the new one.
    await waitFor(async () => chains(await serverCertificate(Number(new URL(n2.api).port)), newRoot), 'n2 serving the API with the new CA', 15_000);
    expect(await getText(`${httpsUrl(n2)}/cluster/v1/cacerts`, newRoot)).toBe(newRoot);
  }, 60_000);

  it('restarts reuse the cluster: --cluster-init on an initialised store and --join with a kept node token', async () => {
    const [first, second] = [nodes[0]!, nodes[1]!];
    const secretOf = (t: string) => t.slice(t.lastIndexOf(':') + 1);
    const before = readFileSync(join(first.dataDir, 'node-token'), 'utf8').trim();
    await Promise.all([first.stop(), second.stop()]);
    const again1 = await startSkiff({ dataDir: first.dataDir, args: ['--store', store, '--cluster-init', '--node-name', 'n1'], timeoutMs: 40_000 });
    nodes.push(again1);
    expect(again1.token).toBe(first.token);
    // The same secret, pinning the bundle the node serves now.
    const kept = readFileSync(join(first.dataDir, 'node-token'), 'utf8').trim();
    expect(secretOf(kept)).toBe(secretOf(before));
    expect(kept.slice(3, 67)).toBe(createHash('sha256').update(await getText(`${httpsUrl(again1)}/cluster/v1/cacerts`)).digest('hex'));
    // The joined node restarts with the flags it was started with: no second join, the same cluster.
    const again2 = await startSkiff({ dataDir: second.dataDir, args: ['--store', store, '--join', httpsUrl(again1), '--token', nodeToken, '--node-name', 'n2'], timeoutMs: 40_000 });
    nodes.push(again2);
    expect(again2.token).toBe(first.token);
    expect(secretOf(readFileSync(join(second.dataDir, 'node-token'), 'utf8').trim())).toBe(secretOf(nodeToken));
  }, 90_000);
});
