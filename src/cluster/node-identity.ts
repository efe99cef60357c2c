import type { Informer } from '../controllers/runtime/index.js';
import type { IssuedCertificate, LazyIdentity } from '../gateway/index.js';

import { chainsTo,type ClusterAuthority } from './bootstrap.js';
import { NODE_CERT_GRACE_MS } from './node-peers.js';

/** How long after a CA rotation a node moves its own certificate to the new root: a few bundle polls. */
export const CA_SPREAD_MS = 5_000;

export interface FollowCaOptions {
  authority: ClusterAuthority;
  identity: LazyIdentity;
  /** Makes a new API serving certificate with the authority and serves it. */
  renewApiCertificate: () => Promise<void>;
  /** Told the new trust bundle (the kubeconfig's CA is rewritten with it). */
  bundleChanged: (bundlePem: string) => void;
  onError: (err: Error) => void;
  spreadMs?: number;
}

/**
 * followCaRotation makes a node follow its cluster's CA without a restart. A changed bundle is
 * trusted at once. The node's own certificate moves to a new signing root only `spreadMs` later, when
 * every node has read the bundle, so no peer is shown a root it does not trust yet (at once if the root
 * of the current certificate has already left the bundle). The API keeps its certificate until its root
 * leaves the bundle, so kubeconfigs written before a rotation keep working for the overlap.
 */
export function followCaRotation(opts: FollowCaOptions): () => void {
  const { authority, identity, onError } = opts;
  let apiRoot = authority.signingCertPem;
  let signer = authority.signingCertPem;
  let moving: NodeJS.Timeout | undefined;
  let stopped = false;
  const stale = () => {
    const cert = identity.current?.certificate;
    return cert !== undefined && !chainsTo(cert.certPem, authority.certPem);
  };
  authority.onChange(() => {
    if (stopped) return;
    const id = identity.current;
    id?.refreshTrust();
    if (authority.signingCertPem !== signer || stale()) {
      signer = authority.signingCertPem;
      clearTimeout(moving);
      moving = setTimeout(() => id?.rotate().catch(onError), stale() ? 0 : (opts.spreadMs ?? CA_SPREAD_MS));
      moving.unref();
    }
    opts.bundleChanged(authority.certPem);
    if (authority.certPem.includes(apiRoot)) return;
    apiRoot = authority.signingCertPem;
    opts.renewApiCertificate().catch(onError);
  });
  return () => {
    stopped = true;
    clearTimeout(moving);
  };
}

/**
 * renewWhenNodeRecreated gives the node a new certificate when its own Node is created anew (deleted,
 * then registered again by its agent): the other nodes refuse certificates older than the Node.
 */
export function renewWhenNodeRecreated(nodes: Informer, nodeName: string, identity: LazyIdentity, onError: (err: Error) => void): void {
  const predates = (cert: IssuedCertificate, created: string | undefined) => cert.notBefore.getTime() < Date.parse(created ?? '') - NODE_CERT_GRACE_MS / 2;
  nodes.addHandlers({
    onAdd: (node) => {
      const cert = identity.current?.certificate;
      if (node.metadata.name === nodeName && cert && predates(cert, node.metadata.creationTimestamp)) identity.current?.rotate().catch(onError);
    },
  });
}
