import type { ConnectionOptions, PeerCertificate } from 'node:tls';

import type { HostDirs } from '../../security/index.js';
import { SkiffError } from '../../util/errors.js';
import { isNodeId, peerSpiffeId } from '../mtls/spiffe.js';

import type { UpstreamTlsSpec } from './service-spec.js';

/** The largest PEM file read for upstream TLS (a CA bundle, a certificate chain, a key). */
const MAX_PEM_BYTES = 1024 * 1024;

/** UpstreamTlsError: a Service's TLS settings cannot be put together (no identity, a file refused). */
export class UpstreamTlsError extends SkiffError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('upstream_tls', message, options);
  }
}

/** UpstreamTlsDeps are what building a Service's TLS settings may use. */
export interface UpstreamTlsDeps {
  /** Where `caFile`, `clientCertificate` and `privateKey` may be read from. */
  hostDirs: HostDirs;
  /**
   * This node's mesh identity (internal-CA certificate and trust anchor), when it has one; a promise
   * while the identity is still being made (the first ISTIO_MUTUAL connection of a node without a
   * mesh listener).
   */
  identity?: () => ConnectionOptions | Promise<ConnectionOptions> | undefined;
}

/**
 * upstreamTls returns, for one Service's `spec.tls`, a supplier of TLS options for its new
 * connections. Files are read through the host-dir grants on first use and kept (a failed read is
 * tried again on the next connection); the node identity is asked for each time, so a rotated
 * certificate applies to new connections. Only ISTIO_MUTUAL ever presents the node identity, and
 * its supplier answers with a promise while that identity is still being made.
 */
export function upstreamTls(tls: UpstreamTlsSpec, deps: UpstreamTlsDeps): () => ConnectionOptions | Promise<ConnectionOptions> {
  const servername = tls.servername;
  if (tls.mode === 'ISTIO_MUTUAL') {
    let last: { from: ConnectionOptions; opts: ConnectionOptions } | undefined;
    // The same identity object yields the same options object, so connections reuse their TLS sessions.
    const options = (id: ConnectionOptions): ConnectionOptions => {
      if (last?.from !== id) last = { from: id, opts: { ...id, rejectUnauthorized: true, servername, checkServerIdentity: tls.nodesOf === undefined ? meshPeer : nodePeer(tls.nodesOf) } };
      return last.opts;
    };
    return () => {
      const id = deps.identity?.();
      if (!id) throw new UpstreamTlsError('spec.tls.mode ISTIO_MUTUAL needs this node\'s mesh identity, and this gateway has none');
      if (!(id instanceof Promise)) return options(id);
      return id.then(options, (err: Error) => {
        throw new UpstreamTlsError(`spec.tls.mode ISTIO_MUTUAL needs this node's mesh identity, which could not be made: ${err.message}`, { cause: err });
      });
    };
  }
  let cached: ConnectionOptions | undefined;
  return () => {
    if (cached) return cached;
    const opts: ConnectionOptions = { rejectUnauthorized: true, servername };
    // Without caFile the system CAs apply (Node's default), as Istio's SIMPLE does.
    if (tls.caFile) opts.ca = readPem(deps.hostDirs, tls.caFile, 'spec.tls.caFile');
    if (tls.mode === 'MUTUAL') {
      opts.cert = readPem(deps.hostDirs, tls.clientCertificate!, 'spec.tls.clientCertificate');
      opts.key = readPem(deps.hostDirs, tls.privateKey!, 'spec.tls.privateKey');
    }
    cached = opts;
    return opts;
  };
}

function readPem(hostDirs: HostDirs, path: string, field: string): Buffer {
  try {
    return hostDirs.readFile(path, { maxBytes: MAX_PEM_BYTES, field });
  } catch (err) {
    // HostDirs' messages name the field, the path and the flag, never the file's contents.
    throw new UpstreamTlsError((err as Error).message, { cause: err });
  }
}

/**
 * meshPeer replaces the host-name check for ISTIO_MUTUAL as Istio does: the chain is already verified
 * against the internal CA, and what identifies the server is its SPIFFE ID, not a DNS name.
 */
function meshPeer(_host: string, cert: PeerCertificate): Error | undefined {
  return peerSpiffeId(cert.subjectaltname) ? undefined : new UpstreamTlsError('the upstream presented a certificate without a SPIFFE ID');
}

/** nodePeer accepts only a server presenting a node identity of `trustDomain`: the mesh talks to nodes, not to workloads. */
function nodePeer(trustDomain: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const id = peerSpiffeId(cert.subjectaltname);
    return id !== undefined && isNodeId(id, trustDomain) ? undefined : new UpstreamTlsError(`the peer presented ${id ?? 'no SPIFFE ID'}, not a node identity of ${trustDomain}`);
  };
}
