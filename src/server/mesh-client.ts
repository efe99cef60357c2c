import { request } from 'node:https';
import type { ConnectionOptions, PeerCertificate } from 'node:tls';

import { isNodeId, peerSpiffeId } from '../gateway/index.js';

/** MeshPeer is another node's mesh listener. */
export interface MeshPeer {
  node: string;
  host: string;
  port: number;
}

export interface MeshGetOptions {
  trustDomain: string;
  timeoutMs: number;
  /** A body larger than this is refused, and the connection dropped. */
  maxBytes: number;
}

/**
 * meshGet asks another node's mesh listener for `path`, presenting this node's certificate (`tls`)
 * and accepting only a server with a node identity of the trust domain. It resolves with the body of
 * a 200, undefined for a 404, and rejects on any other answer, a body over `maxBytes` or the deadline.
 * The peer-to-peer calls of the cluster (modules by digest, autoscaler samples) all go through here.
 */
export function meshGet(peer: MeshPeer, tls: ConnectionOptions, path: string, o: MeshGetOptions): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const checkServerIdentity = (_host: string, cert: PeerCertificate): Error | undefined => {
      const id = peerSpiffeId(cert.subjectaltname);
      return id !== undefined && isNodeId(id, o.trustDomain) ? undefined : new Error(`${peer.host}:${peer.port} presented ${id ?? 'no SPIFFE ID'}, not a node identity of ${o.trustDomain}`);
    };
    const req = request(
      { host: peer.host, port: peer.port, path, method: 'GET', cert: tls.cert, key: tls.key, ca: tls.ca, rejectUnauthorized: true, servername: 'localhost', checkServerIdentity, agent: false, timeout: o.timeoutMs },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return res.statusCode === 404 ? resolve(undefined) : reject(new Error(`node ${peer.node} answered ${res.statusCode}`));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > o.maxBytes) req.destroy(new Error(`node ${peer.node} sent more than ${o.maxBytes} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`node ${peer.node} did not answer within ${o.timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
