import { describe, it, expect } from 'vitest';
import https from 'node:https';
import { join } from 'node:path';
import { startSkiff, cli, waitFor } from '../helpers/skiff-process.js';
import { InternalCA, spiffeId } from '../../src/gateway/index.js';

function get(url: string, tls: { cert?: string; key?: string; ca: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ...tls, servername: 'localhost', agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
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
      const ca = InternalCA.loadOrCreate({ trustDomain: 'edge.test', dir: join(s.dataDir, 'ca') });
      const peer = ca.issue(spiffeId('edge.test', 'default', 'caller'));
      const ok = await get(`${mesh}/hello`, { cert: peer.certPem, key: peer.keyPem, ca: ca.certPem });
      expect(ok.status).toBe(200);
      expect(ok.body).toContain('Hello');
      await expect(get(`${mesh}/hello`, { ca: ca.certPem })).rejects.toThrow();
      const stranger = InternalCA.create('edge.test').issue(spiffeId('edge.test', 'default', 'caller'));
      await expect(get(`${mesh}/hello`, { cert: stranger.certPem, key: stranger.keyPem, ca: ca.certPem })).rejects.toThrow();

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
      expect(cli(['apply', '-f', '-'], { skiff: s, input: manifest }).code).toBe(0);
      await waitFor(async () => (await fetch(`${s.gateway}/hello`)).status === 403, 'plain requests denied by the peer policy');
      expect((await get(`${mesh}/hello`, { cert: peer.certPem, key: peer.keyPem, ca: ca.certPem })).status).toBe(200);
    } finally {
      await s.stop();
    }
  });
});
