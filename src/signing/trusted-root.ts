import type { TrustMaterial } from '@sigstore/verify';

import { TrustedRootError } from './errors.js';
import { loadSigstore } from './sigstore.js';

/**
 * TrustedRoot is a parsed `trusted_root.json` (Sigstore's TrustedRoot: Fulcio CAs, Rekor log keys,
 * timestamp authorities, CT logs), turned into the trust material `@sigstore/verify` checks against.
 * Parse it once and reuse it: the certificates are read here, not per verification.
 */
export interface TrustedRoot {
  /** where it came from (a file name or a field), for messages */
  source: string;
  material: TrustMaterial;
  counts: { certificateAuthorities: number; tlogs: number; ctlogs: number; timestampAuthorities: number };
}

const MEDIA_TYPE = /^application\/vnd\.dev\.sigstore\.trustedroot(\.v\d+\.\d+)?\+json(;version=\d+\.\d+)?$/;

/** parseTrustedRoot reads Sigstore's TrustedRoot JSON (already parsed from text) and checks its keys and certificates load. */
export async function parseTrustedRoot(json: unknown, source: string): Promise<TrustedRoot> {
  const { specs, verify } = await loadSigstore();
  const obj = json as { mediaType?: unknown } | null;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new TrustedRootError(`${source}: a trusted root is a JSON object (Sigstore's trusted_root.json)`);
  if (typeof obj.mediaType !== 'string' || !MEDIA_TYPE.test(obj.mediaType)) {
    throw new TrustedRootError(`${source}: mediaType "${String(obj.mediaType)}" is not a Sigstore trusted root (application/vnd.dev.sigstore.trustedroot+json;version=0.1 or .v0.2+json)`);
  }
  let material: TrustMaterial;
  let root;
  try {
    root = specs.TrustedRoot.fromJSON(obj);
    material = verify.toTrustMaterial(root);
  } catch (err) {
    throw new TrustedRootError(`${source}: cannot read the trusted root: ${(err as Error).message}`, { cause: err });
  }
  const counts = {
    certificateAuthorities: root.certificateAuthorities.length,
    tlogs: root.tlogs.length,
    ctlogs: root.ctlogs.length,
    timestampAuthorities: root.timestampAuthorities.length,
  };
  if (counts.certificateAuthorities + counts.tlogs + counts.timestampAuthorities === 0) {
    throw new TrustedRootError(`${source}: the trusted root lists no certificate authority, transparency log or timestamp authority`);
  }
  return { source, material, counts };
}

/** emptyTrustMaterial trusts nothing but the key the finder returns: key verification without a trusted root. */
export function emptyTrustMaterial(): TrustMaterial {
  return {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    publicKey: (hint) => {
      throw new Error(`no key for hint ${hint}`);
    },
  };
}
