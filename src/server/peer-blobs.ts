import { request } from 'node:https';
import type { ConnectionOptions, PeerCertificate } from 'node:tls';

import type { Logger } from 'pino';

import { isNodeId, MESH_BLOB_PATH, peerSpiffeId } from '../gateway/index.js';

/** MeshPeer is another node's mesh listener. */
export interface MeshPeer {
  node: string;
  host: string;
  port: number;
}

export interface PeerBlobOptions {
  /** The other nodes to ask, in order. */
  peers: () => MeshPeer[];
  /** This node's identity as TLS client options (certificate, key, the cluster CA). */
  tls: () => ConnectionOptions | Promise<ConnectionOptions>;
  trustDomain: string;
  logger: Logger;
  /** Per node asked (default 30 s). */
  timeoutMs?: number;
}

/**
 * fetchBlobFromPeers asks the other nodes, one after the other, for an uploaded module by digest
 * over the mesh: this node presents its node certificate and accepts only a server with a node
 * identity of the trust domain. It resolves with the first node's bytes (the caller stores them
 * through the blob store, which checks the digest), or undefined when none has it.
 */
export async function fetchBlobFromPeers(o: PeerBlobOptions, hex: string, maxBytes: number): Promise<Uint8Array | undefined> {
  const tls = await o.tls();
  for (const peer of o.peers()) {
    try {
      const bytes = await getBlob(peer, tls, o.trustDomain, hex, maxBytes, o.timeoutMs ?? 30_000);
      if (bytes) {
        o.logger.info({ blob: hex, from: peer.node, bytes: bytes.byteLength }, 'fetched an uploaded module from another node');
        return bytes;
      }
    } catch (err) {
      o.logger.warn({ blob: hex, node: peer.node, err: (err as Error).message }, 'fetching an uploaded module from another node failed');
    }
  }
  return undefined;
}

function getBlob(peer: MeshPeer, tls: ConnectionOptions, trustDomain: string, hex: string, maxBytes: number, timeoutMs: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    const checkServerIdentity = (_host: string, cert: PeerCertificate): Error | undefined => {
      const id = peerSpiffeId(cert.subjectaltname);
      return id !== undefined && isNodeId(id, trustDomain) ? undefined : new Error(`${peer.host}:${peer.port} presented ${id ?? 'no SPIFFE ID'}, not a node identity of ${trustDomain}`);
    };
    const req = request(
      { host: peer.host, port: peer.port, path: `${MESH_BLOB_PATH}${hex}`, method: 'GET', cert: tls.cert, key: tls.key, ca: tls.ca, rejectUnauthorized: true, servername: 'localhost', checkServerIdentity, agent: false, timeout: timeoutMs },
      (res) => {
        if (res.statusCode === 404) {
          res.resume();
          return resolve(undefined);
        }
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`node ${peer.node} answered ${res.statusCode}`));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) req.destroy(new Error(`node ${peer.node} sent more than ${maxBytes} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`node ${peer.node} did not answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
