import type { AddressInfo } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';

import { describe, expect, it, vi } from 'vitest';

import { HostDirs } from '../../security/index.js';
import { upstreamTls } from '../upstream/tls.js';

import { InternalCA } from './ca.js';
import { IdentityClosedError, LazyIdentity, WorkloadIdentity } from './identity.js';
import { generateKeys, loadX509, pem, privateKeyPem } from './library.js';
import { peerSpiffeId, spiffeId } from './spiffe.js';

describe('workload identity over TLS', () => {
  it('does mutual TLS, exposes the peer identity and rotates without dropping connections', async () => {
    const ca = await InternalCA.create('skiff.local');
    const server = await WorkloadIdentity.create(ca, spiffeId('skiff.local', 'default', 'gateway', 'node'));
    const client = await WorkloadIdentity.create(ca, spiffeId('skiff.local', 'default', 'caller'));
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
      await server.rotate();
      first.sock.removeAllListeners('close');
      const again = await new Promise<string>((resolve) => {
        first.sock.once('data', (d) => resolve(d.toString()));
        first.sock.write('still here');
      });
      expect(again).toBe('still here');
      const second = await exchange(client.clientOptions());
      expect(second.sock.getPeerX509Certificate()!.serialNumber).not.toBe(serialBefore);
      expect(seen).toEqual(['spiffe://skiff.local/ns/default/fn/caller', 'spiffe://skiff.local/ns/default/fn/caller']);
    } finally {
      for (const c of clients) c.destroy();
      for (const s of sockets) s.destroy();
      server.close();
      client.close();
      await new Promise((r) => tls.close(r));
    }
  });
});

/** What one TLS attempt came to, as the client saw it. */
interface Attempt {
  /** the client finished its side of the handshake (so the TCP connection and server certificate were fine) */
  handshake: boolean;
  /** the echo, when the server served the connection */
  reply?: string;
  /** the client's error code (a TLS alert, a certificate check, a socket error) */
  clientError?: string;
}

/** attempt connects, sends a line and settles when the echo arrives or the connection ends (bounded). */
function attempt(port: number, opts: object): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const out: Attempt = { handshake: false };
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('timed out'));
    }, 3000);
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    const s = connect({ port, host: '127.0.0.1', servername: 'localhost', ...opts }, () => {
      out.handshake = true;
      s.write('ping');
    });
    s.once('data', (d) => {
      out.reply = d.toString();
      done();
    });
    s.on('error', (e: NodeJS.ErrnoException) => (out.clientError ??= e.code));
    s.once('close', done);
  });
}

/** settle polls a condition for up to a second (server-side events may trail the client's close). */
async function settle(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 50 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
}

describe('workload identity refusals', () => {
  it('refuses each bad client certificate for its own reason, and the client refuses a foreign server', async () => {
    const ca = await InternalCA.create('skiff.local');
    const server = await WorkloadIdentity.create(ca, spiffeId('skiff.local', 'default', 'gateway', 'node'));
    const good = await ca.issue(spiffeId('skiff.local', 'default', 'caller'));
    const stranger = await (await InternalCA.create('skiff.local')).issue(spiffeId('skiff.local', 'default', 'caller'));
    const expired = await ca.issue(spiffeId('skiff.local', 'default', 'caller'), { now: new Date(Date.now() - 2 * 3_600_000), ttlMs: 3_600_000 });
    const creds = (c: { certPem: string; keyPem: string }) => ({ cert: c.certPem, key: c.keyPem, ca: ca.certPem });

    // Required client certificates (the mesh listener): Node verifies the chain after the handshake.
    const handshakeErrors: string[] = [];
    const required = createServer(server.serverOptions(true), (sock) => sock.on('data', (d) => sock.write(d)));
    required.on('tlsClientError', (e: NodeJS.ErrnoException) => handshakeErrors.push(e.code ?? e.message));
    // Optional client certificates (the gateway's TLS listener): served, with the verdict on the socket.
    const verdicts: Array<{ authorized: boolean; error: string | null }> = [];
    const optional = createServer(server.serverOptions(false), (sock) => {
      verdicts.push({ authorized: sock.authorized, error: sock.authorized ? null : String(sock.authorizationError) });
      sock.on('data', (d) => sock.write(d));
    });
    optional.on('tlsClientError', () => undefined);
    await Promise.all([required, optional].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
    const reqPort = (required.address() as AddressInfo).port;
    const optPort = (optional.address() as AddressInfo).port;
    try {
      // The valid certificate is served by both, so every refusal below is about the certificate.
      expect(await attempt(reqPort, creds(good))).toEqual({ handshake: true, reply: 'ping' });
      expect(await attempt(optPort, creds(good))).toEqual({ handshake: true, reply: 'ping' });
      expect(verdicts.splice(0)).toEqual([{ authorized: true, error: null }]);

      // Missing certificate: the server ends the TLS 1.3 handshake with a certificate_required alert.
      expect(await attempt(reqPort, { ca: ca.certPem })).toEqual({ handshake: true, clientError: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' });
      await settle(() => handshakeErrors.length > 0);
      expect(handshakeErrors.splice(0)).toContain('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');

      // Unknown CA and expired certificate: the handshake completes from the client's side, then the
      // server closes without serving a byte. The optional listener shows the verification error of
      // the same certificate against the same trust anchor, which is why it was closed.
      for (const [cert, why] of [
        [stranger, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
        [expired, 'CERT_HAS_EXPIRED'],
      ] as const) {
        expect(await attempt(reqPort, creds(cert))).toEqual({ handshake: true });
        expect(await attempt(optPort, creds(cert))).toEqual({ handshake: true, reply: 'ping' });
        expect(verdicts.splice(0)).toEqual([{ authorized: false, error: why }]);
      }

      // The client side refuses a server whose certificate is not from its trust anchor.
      const other = await WorkloadIdentity.create(await InternalCA.create('skiff.local'), spiffeId('skiff.local', 'default', 'caller'));
      expect(await attempt(reqPort, other.clientOptions())).toEqual({ handshake: false, clientError: 'SELF_SIGNED_CERT_IN_CHAIN' });
      other.close();
    } finally {
      server.close();
      await Promise.all([required, optional].map((s) => new Promise((r) => s.close(r))));
    }
  });
});

describe('ISTIO_MUTUAL peer identity', () => {
  it('refuses a server certificate from the internal CA that carries no SPIFFE ID', async () => {
    // A root whose key the test holds, so it can also sign a leaf outside the CA's profile (no SPIFFE ID).
    const x = await loadX509();
    const rootKeys = await generateKeys();
    const root = await x.X509CertificateGenerator.createSelfSigned({
      name: 'O=Skiff, CN=Skiff CA skiff.local',
      keys: rootKeys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x.BasicConstraintsExtension(true, 0, true), new x.KeyUsagesExtension(x.KeyUsageFlags.keyCertSign, true)],
    });
    const ca = await InternalCA.load('skiff.local', pem('CERTIFICATE', root.rawData), await privateKeyPem(rootKeys.privateKey));
    const leafKeys = await generateKeys();
    const anonymous = await x.X509CertificateGenerator.create({
      subject: 'CN=localhost',
      issuer: root.subjectName,
      publicKey: leafKeys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }])],
    });
    const named = await ca.issue(spiffeId('skiff.local', 'default', 'backend'), { dnsNames: ['localhost'] });
    const node = await WorkloadIdentity.create(ca, spiffeId('skiff.local', 'skiff-system', 'node', 'node'));
    const options = upstreamTls({ mode: 'ISTIO_MUTUAL' }, { hostDirs: HostDirs.none(), identity: () => node.clientOptions() })() as object;
    const servers = [
      { cert: pem('CERTIFICATE', anonymous.rawData), key: await privateKeyPem(leafKeys.privateKey) },
      { cert: named.certPem, key: named.keyPem },
    ].map((c) => createServer({ ...c, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (sock) => sock.on('data', (d) => sock.write(d))));
    await Promise.all(servers.map((srv) => new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))));
    try {
      const [anonymousPort, namedPort] = servers.map((srv) => (srv.address() as AddressInfo).port);
      // Both chain to the internal CA; the first is refused because it names no SPIFFE ID, the second is served.
      const refused = await new Promise<Error>((resolve, reject) => {
        const s = connect({ ...options, port: anonymousPort, host: '127.0.0.1' }, () => reject(new Error('connected')));
        s.on('error', resolve);
      });
      expect(refused.message).toBe('the upstream presented a certificate without a SPIFFE ID');
      expect((refused as { code?: string }).code).toBe('upstream_tls');
      expect(await attempt(namedPort!, options)).toEqual({ handshake: true, reply: 'ping' });
    } finally {
      node.close();
      await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
    }
  });
});

describe('workload identity renewal', () => {
  it('keeps the current certificate when a renewal fails, reports it and tries again', async () => {
    const ca = await InternalCA.create('skiff.local');
    const errors: string[] = [];
    // Renewal is due a little after a second (the backdated notBefore counts in the lifetime); a failed
    // one is tried again after a second.
    const id = await WorkloadIdentity.create(ca, spiffeId('skiff.local', 'default', 'renewed'), { ttlMs: 2_000, renewAt: 0.99, onError: (e) => errors.push(e.message) });
    const first = id.certificate;
    const issue = vi.spyOn(ca, 'issue').mockRejectedValueOnce(new Error('disk full'));
    const rotated = new Promise<void>((resolve) => id.onRotate(() => resolve()));
    try {
      await rotated;
      expect(errors).toEqual(['disk full']);
      expect(issue).toHaveBeenCalledTimes(2);
      expect(id.certificate.certPem).not.toBe(first.certPem);
      expect(id.certificate.notAfter.getTime()).toBeGreaterThan(first.notAfter.getTime());
    } finally {
      id.close();
    }
  });

  it('joins a rotation already under way and leaves the certificate in place when one fails', async () => {
    const ca = await InternalCA.create('skiff.local');
    const id = await WorkloadIdentity.create(ca, spiffeId('skiff.local', 'default', 'joined'));
    const issue = vi.spyOn(ca, 'issue');
    try {
      const before = id.clientOptions();
      await Promise.all([id.rotate(), id.rotate()]);
      expect(issue).toHaveBeenCalledTimes(1);
      const after = id.clientOptions();
      expect(after).not.toBe(before);
      issue.mockRejectedValueOnce(new Error('signing failed'));
      await expect(id.rotate()).rejects.toThrow('signing failed');
      expect(id.clientOptions()).toBe(after);
    } finally {
      id.close();
    }
  });
});

describe('lazy identity', () => {
  it('is made once, on first use, and a failed attempt is tried again', async () => {
    const ca = await InternalCA.create('skiff.local');
    let calls = 0;
    const lazy = new LazyIdentity(async () => {
      calls++;
      if (calls === 1) throw new Error('CA directory not writable');
      return WorkloadIdentity.create(ca, spiffeId('skiff.local', 'skiff-system', 'node-a', 'node'));
    });
    try {
      expect(lazy.current).toBeUndefined();
      expect(calls).toBe(0);
      await expect(lazy.get()).rejects.toThrow('CA directory not writable');
      // Concurrent first uses share one attempt; options are a promise until the identity exists, then the object itself.
      const pending = lazy.clientOptions();
      expect(pending).toBeInstanceOf(Promise);
      const [a, b, opts] = await Promise.all([lazy.get(), lazy.get(), pending]);
      expect(calls).toBe(2);
      expect(a).toBe(b);
      expect(lazy.current).toBe(a);
      expect(lazy.clientOptions()).toBe(a.clientOptions());
      expect(opts).toBe(a.clientOptions());
    } finally {
      lazy.close();
    }
  });

  it('closes an identity that is still being made when it is closed, and makes none afterwards', async () => {
    const ca = await InternalCA.create('skiff.local');
    let made: WorkloadIdentity | undefined;
    const lazy = new LazyIdentity(async () => (made = await WorkloadIdentity.create(ca, spiffeId('skiff.local', 'skiff-system', 'node-b', 'node'))));
    const pending = lazy.get();
    lazy.close();
    await expect(pending).rejects.toBeInstanceOf(IdentityClosedError);
    // The identity made meanwhile was closed: a rotation issues a certificate but no longer installs it.
    const cert = made!.certificate;
    await made!.rotate();
    expect(made!.certificate).toBe(cert);
    await expect(lazy.get()).rejects.toBeInstanceOf(IdentityClosedError);
    expect(lazy.current).toBeUndefined();
  });
});
