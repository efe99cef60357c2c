import type { Envelope } from './payload.js';

/** The Sigstore packages, loaded together on first use (see `loadSigstore`). */
export interface SigstoreLibs {
  verify: typeof import('@sigstore/verify');
  bundle: typeof import('@sigstore/bundle');
  specs: typeof import('@sigstore/protobuf-specs');
}

/**
 * loadSigstore loads `@sigstore/verify`, `@sigstore/bundle` and `@sigstore/protobuf-specs` when a
 * bundle or a trusted root is first read. Checking a cosign `.sig` signature against a key needs none
 * of them, and every other command would pay their load time; Node caches them after the first call.
 */
export async function loadSigstore(): Promise<SigstoreLibs> {
  const [verify, bundle, specs] = await Promise.all([import('@sigstore/verify'), import('@sigstore/bundle'), import('@sigstore/protobuf-specs')]);
  return { verify, bundle, specs };
}

/** Media types of the bundle versions Skiff reads (v0.3 has had two spellings). */
export const BUNDLE_MEDIA_TYPES = {
  '0.1': 'application/vnd.dev.sigstore.bundle+json;version=0.1',
  '0.2': 'application/vnd.dev.sigstore.bundle+json;version=0.2',
  '0.3': 'application/vnd.dev.sigstore.bundle.v0.3+json',
} as const;
/** The older spelling of the v0.3 media type, still read. */
export const BUNDLE_V03_LEGACY_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle+json;version=0.3';

/** SerializedTlogEntry is a transparency log entry in a bundle's JSON (protobuf JSON: int64 as strings, bytes as base64). */
export interface SerializedTlogEntry {
  logIndex: string;
  logId: { keyId: string };
  kindVersion: { kind: string; version: string };
  integratedTime: string;
  inclusionPromise?: { signedEntryTimestamp: string };
  inclusionProof?: { logIndex: string; rootHash: string; treeSize: string; hashes: string[]; checkpoint: { envelope: string } };
  canonicalizedBody: string;
}

/** SerializedBundle is a Sigstore bundle's JSON form, as written to `.sigstore.json` files and referrers. */
export interface SerializedBundle {
  mediaType: string;
  verificationMaterial: {
    publicKey?: { hint: string };
    x509CertificateChain?: { certificates: Array<{ rawBytes: string }> };
    certificate?: { rawBytes: string };
    tlogEntries: SerializedTlogEntry[];
    timestampVerificationData?: { rfc3161Timestamps: Array<{ signedTimestamp: string }> };
  };
  messageSignature?: { messageDigest: { algorithm: string; digest: string }; signature: string };
  dsseEnvelope?: Envelope;
}

/** keyMessageBundle writes a v0.3 bundle holding a message signature made with a key (no log entry: key signing needs none). */
export function keyMessageBundle(hint: string, digest: Buffer, signature: Buffer): SerializedBundle {
  return {
    mediaType: BUNDLE_MEDIA_TYPES['0.3'],
    verificationMaterial: { publicKey: { hint }, tlogEntries: [], timestampVerificationData: { rfc3161Timestamps: [] } },
    messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: digest.toString('base64') }, signature: signature.toString('base64') },
  };
}

/** keyDsseBundle writes a v0.3 bundle holding a DSSE envelope signed with a key. */
export function keyDsseBundle(hint: string, payloadType: string, payload: Buffer, signature: Buffer): SerializedBundle {
  return {
    mediaType: BUNDLE_MEDIA_TYPES['0.3'],
    verificationMaterial: { publicKey: { hint }, tlogEntries: [], timestampVerificationData: { rfc3161Timestamps: [] } },
    dsseEnvelope: { payloadType, payload: payload.toString('base64'), signatures: [{ keyid: '', sig: signature.toString('base64') }] },
  };
}
