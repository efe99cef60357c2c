import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { InternalCA, peerSpiffeId, spiffeId } from './ca.js';
import { WorkloadIdentity } from './identity.js';

describe('internal CA', () => {
  it('issues leaf certificates with SPIFFE IDs that verify against the root', () => {
    const ca = InternalCA.create('skiff.local');
    const root = new X509Certificate(ca.certPem);
    expect(root.ca).toBe(true);
    expect(root.verify(root.publicKey)).toBe(true);
    const id = spiffeId('skiff.local', 'default', 'hello');
    expect(id).toBe('spiffe://skiff.local/ns/default/fn/hello');
    const leaf = ca.issue(id, { ttlMs: 60_000 });
    const x = new X509Certificate(leaf.certPem);
    expect(x.ca).toBe(false);
    expect(x.verify(root.publicKey)).toBe(true);
    expect(x.checkIssued(root)).toBe(true);
    expect(peerSpiffeId(x.subjectAltName)).toBe(id);
    expect(new Date(x.validTo).getTime() - Date.now()).toBeLessThanOrEqual(61_000);
  });

  it('refuses identities outside its trust domain', () => {
    const ca = InternalCA.create('skiff.local');
    expect(() => ca.issue('spiffe://other.domain/ns/a/fn/b')).toThrow(/trust domain/);
    expect(() => spiffeId('Bad Domain', 'a', 'b')).toThrow(/SPIFFE/);
  });

  it('is created once in its directory and reloaded afterwards', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-ca-'));
    try {
      const a = InternalCA.loadOrCreate({ trustDomain: 'skiff.local', dir: join(dir, 'ca') });
      const b = InternalCA.loadOrCreate({ trustDomain: 'skiff.local', dir: join(dir, 'ca') });
      expect(b.certPem).toBe(a.certPem);
      expect(statSync(join(dir, 'ca', 'ca.key')).mode & 0o777).toBe(0o600);
      const leaf = b.issue(spiffeId('skiff.local', 'ns1', 'f'));
      expect(new X509Certificate(leaf.certPem).verify(new X509Certificate(a.certPem).publicKey)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('workload identity over TLS', () => {
  it('does mutual TLS, exposes the peer identity and rotates without dropping connections', async () => {
    const ca = InternalCA.create('skiff.local');
    const server = new WorkloadIdentity(ca, spiffeId('skiff.local', 'default', 'gateway', 'node'));
    const client = new WorkloadIdentity(ca, spiffeId('skiff.local', 'default', 'caller'));
    const seen: string[] = [];
    const sockets = new Set<TLSSocket>();
    const tls = createServer(server.serverOptions(true), (sock) => {
      sockets.add(sock);
      seen.push(peerSpiffeId(sock.getPeerCertificate().subjectaltname) ?? '');
      sock.on('data', (d) => sock.write(d));
    });
    tls.on('tlsClientError', () => undefined);
    server.onRotate(() => tls.setSecureContext({ cert: server.certificate.certPem, key: server.certificate.keyPem, ca: ca.certPem }));
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    const port = (tls.address() as AddressInfo).port;
    const clients: TLSSocket[] = [];
    /** exchange connects with the given TLS options, sends a line and resolves with the echo (or rejects). */
    const exchange = (opts: object, existing?: TLSSocket) =>
      new Promise<{ sock: TLSSocket; echo: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timed out')), 3000);
        const use = (s: TLSSocket) => {
          s.once('data', (d) => {
            clearTimeout(timer);
            resolve({ sock: s, echo: d.toString() });
          });
          s.once('error', (e) => {
            clearTimeout(timer);
            reject(e);
          });
          s.once('close', () => {
            clearTimeout(timer);
            reject(new Error('closed'));
          });
          s.write('ping');
        };
        if (existing) return use(existing);
        const s = connect({ port, host: '127.0.0.1', servername: 'localhost', ...opts }, () => use(s));
        clients.push(s);
        s.on('error', () => undefined);
      });
    try {
      const first = await exchange(client.clientOptions());
      expect(first.echo).toBe('ping');
      const serialBefore = first.sock.getPeerX509Certificate()!.serialNumber;
      server.rotate();
      first.sock.removeAllListeners('close');
      const again = await new Promise<string>((resolve) => {
        first.sock.once('data', (d) => resolve(d.toString()));
        first.sock.write('still here');
      });
      expect(again).toBe('still here');
      const second = await exchange(client.clientOptions());
      expect(second.sock.getPeerX509Certificate()!.serialNumber).not.toBe(serialBefore);
      expect(seen).toEqual(['spiffe://skiff.local/ns/default/fn/caller', 'spiffe://skiff.local/ns/default/fn/caller']);
      // A client whose certificate comes from another CA is refused.
      const stranger = new WorkloadIdentity(InternalCA.create('skiff.local'), spiffeId('skiff.local', 'default', 'stranger'));
      await expect(exchange({ ...stranger.clientOptions(), ca: ca.certPem })).rejects.toBeDefined();
      stranger.close();
    } finally {
      for (const c of clients) c.destroy();
      for (const s of sockets) s.destroy();
      server.close();
      client.close();
      await new Promise((r) => tls.close(r));
    }
  });
});
