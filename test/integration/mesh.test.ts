import https from 'node:https';
import { join } from 'node:path';

import { describe, expect,it } from 'vitest';

import { InternalCA, spiffeId } from '../../src/gateway/index.js';
import { cli, startSkiff, waitFor } from '../helpers/skiff-process.js';

function get(url: string, tls: { cert?: string; key?: string; ca: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ...tls, servername: 'localhost', agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * refusal makes a request that must be refused and reports how: whether the client's side of the TLS
 * handshake completed (so the port and the server certificate were fine) and the error code.
 */
function refusal(url: string, tls: { cert?: string; key?: string; ca: string }): Promise<{ handshake: boolean; code?: string }> {
  return new Promise((resolve, reject) => {
    let handshake = false;
    const req = https.request(url, { ...tls, servername: 'localhost', agent: false, timeout: 5000 }, (res) => {
      res.resume();
      reject(new Error(`served with status ${res.statusCode}`));
    });
    req.on('socket', (s) => s.once('secureConnect', () => (handshake = true)));
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ handshake, code: e.code }));
    req.end();
  });
}

describe('mTLS between nodes', () => {
  it('serves peers with internal-CA certificates, refuses others, and lets policies match the peer identity', async () => {
    const s = await startSkiff({ demo: true, args: ['--mesh', '127.0.0.1:0', '--trust-domain', 'edge.test'] });
    try {
      const mesh = /mesh=(https:\/\/\S+)/.exec(s.readyLine)?.[1];
      expect(mesh).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      // Another node's identity, issued by the same CA (which lives in the data dir).
      const ca = await InternalCA.loadOrCreate({ trustDomain: 'edge.test', dir: join(s.dataDir, 'ca') });
      const peer = await ca.issue(spiffeId('edge.test', 'default', 'caller'));
      const ok = await get(`${mesh}/hello`, { cert: peer.certPem, key: peer.keyPem, ca: ca.certPem });
      expect(ok.status).toBe(200);
      expect(ok.body).toContain('Hello');
      // No client certificate: the TLS 1.3 handshake ends with the certificate_required alert.
      expect(await refusal(`${mesh}/hello`, { ca: ca.certPem })).toEqual({ handshake: true, code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' });
      const stranger = await (await InternalCA.create('edge.test')).issue(spiffeId('edge.test', 'default', 'caller'));
      // A certificate from another CA: the client's handshake completes, then the node closes the
      // connection before reading the request (Node sends no alert for a failed client chain).
      expect(await refusal(`${mesh}/hello`, { cert: stranger.certPem, key: stranger.keyPem, ca: ca.certPem })).toEqual({ handshake: true, code: 'ECONNRESET' });
      const expired = await ca.issue(spiffeId('edge.test', 'default', 'caller'), { now: new Date(Date.now() - 2 * 3_600_000), ttlMs: 3_600_000 });
      expect(await refusal(`${mesh}/hello`, { cert: expired.certPem, key: expired.keyPem, ca: ca.certPem })).toEqual({ handshake: true, code: 'ECONNRESET' });
      // Valid certificates (whatever their SPIFFE ID) are still served, so the refusals were about the certificates.
      const other = await ca.issue(spiffeId('edge.test', 'default', 'intruder'));
      expect((await get(`${mesh}/hello`, { cert: other.certPem, key: other.keyPem, ca: ca.certPem })).status).toBe(200);
      expect((await get(`${mesh}/hello`, { cert: peer.certPem, key: peer.keyPem, ca: ca.certPem })).status).toBe(200);

      const manifest = `apiVersion: skiff.dev/v1
kind: Policy
metadata: { name: peers }
spec:
  rego: |
    package mesh
    default allow := false
    allow if input.attributes.source.principal == "spiffe://edge.test/ns/default/fn/caller"
---
apiVersion: skiff.dev/v1
kind: Route
metadata: { name: hello }
spec:
  filters: [{ authz: { policy: data.mesh.allow } }]
  http:
    - match: [{ uri: { prefix: /hello } }]
      route: [{ destination: { function: hello } }]
`;
      expect((await cli(['apply', '-f', '-'], { skiff: s, input: manifest })).code).toBe(0);
      await waitFor(async () => (await fetch(`${s.gateway}/hello`)).status === 403, 'plain requests denied by the peer policy');
      expect((await get(`${mesh}/hello`, { cert: peer.certPem, key: peer.keyPem, ca: ca.certPem })).status).toBe(200);
      // A valid internal-CA certificate with another SPIFFE ID: served until the policy, then refused by it.
      expect((await get(`${mesh}/hello`, { cert: other.certPem, key: other.keyPem, ca: ca.certPem })).status).toBe(403);
    } finally {
      await s.stop();
    }
  });
});
