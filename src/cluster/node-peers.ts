import type { PeerCertificate } from 'node:tls';

import type { ResourceObject } from '../api/kinds/types.js';
import { peerSpiffeId } from '../gateway/index.js';

/**
 * How much older than its Node a node certificate may be. A node makes its certificate before it
 * registers its Node (the mesh address goes into the Node), and certificates are backdated a minute
 * for clock skew; two minutes covers both on a normal start.
 */
export const NODE_CERT_GRACE_MS = 120_000;

/**
 * NodePeerCheck decides which chain-verified client certificates the mesh listener of a cluster
 * accepts: only node identities (`spiffe://TRUST_DOMAIN/ns/skiff-system/node/NAME`), only while a Node
 * of that name exists, and only certificates made for that Node, not before it: a certificate whose
 * notBefore is more than a grace period older than the Node's creationTimestamp belonged to an
 * earlier holder of the name (a node removed, then a node of the same name joined again), so it is
 * refused. This needs no revocation list that every node would have to share and keep: deleting the
 * Node revokes every certificate of that node at once, and a new Node makes the older ones useless.
 * Workload identities from the same CA are refused whatever they name.
 */
export class NodePeerCheck {
  private readonly prefix: string;

  constructor(
    trustDomain: string,
    /** The Node of that name, from an informer's cache. */
    private readonly node: (name: string) => ResourceObject | undefined,
    private readonly graceMs = NODE_CERT_GRACE_MS,
  ) {
    this.prefix = `spiffe://${trustDomain}/ns/skiff-system/node/`;
  }

  /** accepts answers for one peer certificate whose chain already verified. */
  accepts(cert: Pick<PeerCertificate, 'subjectaltname' | 'valid_from'>): boolean {
    return this.reason(cert) === undefined;
  }

  /** reason says why a peer is refused (undefined: accepted); the mesh logs it. */
  reason(cert: Pick<PeerCertificate, 'subjectaltname' | 'valid_from'>): string | undefined {
    const id = peerSpiffeId(cert.subjectaltname);
    if (!id?.startsWith(this.prefix)) return `${id ?? 'a certificate without a SPIFFE ID'} is not a node identity`;
    const name = id.slice(this.prefix.length);
    if (name.includes('/')) return `${id} is not a node identity`;
    const node = this.node(name);
    if (!node) return `no Node ${name} exists`;
    const created = Date.parse(node.metadata.creationTimestamp ?? '');
    const notBefore = Date.parse(cert.valid_from);
    if (!Number.isFinite(created) || !Number.isFinite(notBefore)) return `the certificate or Node ${name} has no readable time`;
    if (notBefore < created - this.graceMs) return `the certificate of ${name} was made before its Node (an earlier holder of the name)`;
    return undefined;
  }
}
