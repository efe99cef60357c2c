import type { ConnectionOptions } from 'node:tls';

import type { Logger } from 'pino';

import { MESH_BLOB_PATH } from '../gateway/index.js';

import { meshGet,type MeshPeer } from './mesh-client.js';

export type { MeshPeer } from './mesh-client.js';

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
  return meshGet(peer, tls, `${MESH_BLOB_PATH}${hex}`, { trustDomain, timeoutMs, maxBytes });
}
