import { SkiffError } from '../../util/errors.js';

// This file must stay free of the certificate library: the gateway reads peer identities with it on
// every mTLS request, and the CLI reaches it through the gateway's index without ever issuing a certificate.

const SPIFFE = /^spiffe:\/\/[a-z0-9.-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/;

/** spiffeId builds the identity Skiff gives a workload: `spiffe://TRUST_DOMAIN/ns/NAMESPACE/fn/NAME`. */
export function spiffeId(trustDomain: string, namespace: string, name: string, kind: 'fn' | 'node' = 'fn'): string {
  const id = `spiffe://${trustDomain}/ns/${namespace}/${kind}/${name}`;
  if (!SPIFFE.test(id)) throw new SkiffError('invalid_identity', `"${id}" is not a valid SPIFFE ID: use a lower-case trust domain and names without spaces`);
  return id;
}

/** isSpiffeId tells whether `id` is a well-formed SPIFFE ID (`spiffe://TRUST_DOMAIN/PATH`). */
export function isSpiffeId(id: string): boolean {
  return SPIFFE.test(id);
}

/** inTrustDomain tells whether `id` is a well-formed SPIFFE ID of `trustDomain`. */
export function inTrustDomain(id: string, trustDomain: string): boolean {
  return SPIFFE.test(id) && id.startsWith(`spiffe://${trustDomain}/`);
}

/** peerSpiffeId reads the SPIFFE ID from a peer certificate's subjectaltname string (`URI:spiffe://...`). */
export function peerSpiffeId(subjectaltname: string | undefined): string | undefined {
  if (!subjectaltname) return undefined;
  for (const part of subjectaltname.split(', ')) if (part.startsWith('URI:spiffe://')) return part.slice(4);
  return undefined;
}

/**
 * isNodeId tells whether `id` names a node of `trustDomain` (`spiffe://TD/ns/skiff-system/node/NAME`),
 * the only identity a mesh listener trusts to forward requests on a client's behalf.
 */
export function isNodeId(id: string, trustDomain: string): boolean {
  const prefix = `spiffe://${trustDomain}/ns/skiff-system/node/`;
  return id.startsWith(prefix) && id.length > prefix.length && !id.includes('/', prefix.length) && SPIFFE.test(id);
}

/** nodeOf is the node name in a node identity of `trustDomain`, else undefined. */
export function nodeOf(id: string, trustDomain: string): string | undefined {
  return isNodeId(id, trustDomain) ? id.slice(`spiffe://${trustDomain}/ns/skiff-system/node/`.length) : undefined;
}
