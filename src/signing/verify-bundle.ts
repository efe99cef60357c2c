import { createHash, verify as nodeVerify,X509Certificate as NodeX509 } from 'node:crypto';

import type { Bundle } from '@sigstore/bundle';
import type { SignedEntity, TrustMaterial } from '@sigstore/verify';

import { BundleFormatError, VerificationFailedError } from './errors.js';
import type { IdentityMatcher } from './identity.js';
import type { PublicKey } from './keys.js';
import { BUNDLE_MEDIA_TYPES, BUNDLE_V03_LEGACY_MEDIA_TYPE, loadSigstore, type SerializedBundle } from './sigstore.js';
import { emptyTrustMaterial, type TrustedRoot } from './trusted-root.js';

/** BundleVersion is a Sigstore bundle format version Skiff reads. */
export type BundleVersion = '0.1' | '0.2' | '0.3';

/** ParsedBundle is a bundle read and checked for its version's required fields, not yet verified. */
export interface ParsedBundle {
  version: BundleVersion;
  bundle: Bundle;
  json: SerializedBundle;
  /** where the bundle came from (a file, a referrer digest), for messages */
  source: string;
  content: 'message-signature' | 'dsse-envelope';
}

/** KeyCheck verifies a bundle against a public key; log entries and timestamps are checked only when a trusted root is given. */
export interface KeyCheck {
  kind: 'key';
  key: PublicKey;
  trustedRoot?: TrustedRoot;
}

/** KeylessCheck verifies a bundle's certificate chain, log entry, timestamps and signer identity against a trusted root. */
export interface KeylessCheck {
  kind: 'keyless';
  trustedRoot: TrustedRoot;
  /** the signer must match at least one */
  identities: IdentityMatcher[];
  /** accept a certificate without an embedded SCT (cosign's --insecure-ignore-sct) */
  ignoreSct?: boolean;
  /** accept a bundle without a transparency log entry if it has a timestamp (cosign's --insecure-ignore-tlog) */
  ignoreTlog?: boolean;
}

/** BundleCheck is how a bundle must verify: by key or keyless. */
export type BundleCheck = KeyCheck | KeylessCheck;

/** Signer is who a verified bundle was signed by. */
export interface Signer {
  kind: 'key' | 'keyless';
  /** keyless: the certificate's SAN (email or URI) */
  subject?: string;
  /** keyless: the OIDC issuer from Fulcio's certificate extension */
  issuer?: string;
  /** keyless: the signing certificate, PEM */
  certificate?: string;
}

/** BundleResult is what a verified bundle proves. */
export interface BundleResult {
  signer: Signer;
  /** verified times: transparency log integration times and RFC 3161 timestamps */
  times: Date[];
  /** the DSSE envelope's payload, when the bundle holds one */
  dsse?: { payloadType: string; payload: Buffer };
}

function versionOf(mediaType: unknown): BundleVersion | undefined {
  if (mediaType === BUNDLE_MEDIA_TYPES['0.1']) return '0.1';
  if (mediaType === BUNDLE_MEDIA_TYPES['0.2']) return '0.2';
  if (mediaType === BUNDLE_MEDIA_TYPES['0.3'] || mediaType === BUNDLE_V03_LEGACY_MEDIA_TYPE) return '0.3';
  return undefined;
}

/**
 * parseBundle reads a bundle's JSON and checks the fields its version requires (v0.1: an inclusion
 * promise on each log entry; v0.2: an inclusion proof; v0.3: an inclusion proof and a single
 * certificate rather than a chain), through `@sigstore/bundle`.
 */
export async function parseBundle(json: unknown, source: string): Promise<ParsedBundle> {
  const { bundle: lib } = await loadSigstore();
  const mediaType = (json as { mediaType?: unknown } | null)?.mediaType;
  const version = versionOf(mediaType);
  if (!version) {
    throw new BundleFormatError(`${source}: mediaType ${JSON.stringify(mediaType)} is not a Sigstore bundle v0.1, v0.2 or v0.3 (expected ${Object.values(BUNDLE_MEDIA_TYPES).join(', ')})`);
  }
  let bundle: Bundle;
  try {
    bundle = lib.bundleFromJSON(json);
    const assert: (b: Bundle) => void = version === '0.1' ? lib.assertBundleV01 : version === '0.2' ? lib.assertBundleV02 : lib.assertBundleLatest;
    assert(bundle);
  } catch (err) {
    const fields = (err as { fields?: string[] }).fields;
    throw new BundleFormatError(`${source}: not a valid v${version} bundle${fields?.length ? `: missing or empty ${fields.join(', ')}` : `: ${(err as Error).message}`}`, { cause: err });
  }
  return { version, bundle, json: json as SerializedBundle, source, content: bundle.content.$case === 'dsseEnvelope' ? 'dsse-envelope' : 'message-signature' };
}

const HASHES: Record<number, string> = { 0: 'sha256', 1: 'sha256', 2: 'sha384', 3: 'sha512' };

function reasonOf(err: unknown): string {
  const e = err as Error & { code?: string; cause?: unknown };
  const cause = e.cause instanceof Error && e.cause.message !== e.message ? `: ${e.cause.message}` : '';
  return `${e.message}${cause}${e.code ? ` (${e.code})` : ''}`;
}

/**
 * verifyBundle checks a parsed bundle with `@sigstore/verify` (signature, certificate chain at the
 * verified times, SCT, log inclusion proof or signed entry timestamp, log body against the signature,
 * RFC 3161 timestamps) and then the signer's identity. `artifact` is the signed bytes for a
 * message-signature bundle (a DSSE bundle carries its payload). Throws `VerificationFailedError`
 * whose message is the reason.
 */
export async function verifyBundle(parsed: ParsedBundle, check: BundleCheck, artifact?: Uint8Array): Promise<BundleResult> {
  const { verify: lib } = await loadSigstore();
  const { bundle, source } = parsed;
  const fail = (why: string): never => {
    throw new VerificationFailedError(`${source}: ${why}`);
  };
  const data = artifact ? Buffer.from(artifact) : undefined;
  if (bundle.content.$case === 'messageSignature') {
    if (!data) fail('the bundle holds a message signature but no artifact was given to check it against');
    const md = bundle.content.messageSignature.messageDigest;
    const alg = HASHES[md.algorithm] ?? 'sha256';
    if (!createHash(alg).update(data!).digest().equals(Buffer.from(md.digest))) fail(`the bundle's message digest is not the ${alg} of the artifact: it was signed for other content`);
  }
  const material = bundle.verificationMaterial.content;
  let entity: SignedEntity;
  try {
    entity = lib.toSignedEntity(bundle, data);
  } catch (err) {
    return fail(`cannot read the bundle: ${reasonOf(err)}`);
  }
  if (bundle.content.$case === 'messageSignature') entity.signature = ed25519Aware(entity.signature, data!);
  let trust: TrustMaterial;
  let options;
  if (check.kind === 'key') {
    entity.key = { $case: 'public-key', hint: material.$case === 'publicKey' ? material.publicKey.hint : '' };
    if (!check.trustedRoot) {
      // Key signing needs no log: without a trusted root there is nothing to check log entries against.
      entity.tlogEntries = [];
      entity.timestamps = [];
    }
    const key = check.key.key;
    trust = { ...(check.trustedRoot?.material ?? emptyTrustMaterial()), publicKey: () => ({ publicKey: key, validFor: () => true }) };
    options = { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 };
  } else {
    if (material.$case === 'publicKey') fail(`the bundle was signed with a key (hint "${material.publicKey.hint}"), not a certificate: verify it with --key`);
    trust = check.trustedRoot.material;
    options = { tlogThreshold: check.ignoreTlog ? 0 : 1, ctlogThreshold: check.ignoreSct ? 0 : 1, timestampThreshold: 1 };
  }
  let signer;
  try {
    signer = new lib.Verifier(trust, options).verify(entity);
  } catch (err) {
    return fail(reasonOf(err));
  }
  const result: BundleResult = { signer: { kind: check.kind }, times: timesOf(entity) };
  if (bundle.content.$case === 'dsseEnvelope') {
    result.dsse = { payloadType: bundle.content.dsseEnvelope.payloadType, payload: Buffer.from(bundle.content.dsseEnvelope.payload) };
  }
  if (check.kind === 'keyless') {
    const subject = signer.identity?.subjectAlternativeName;
    const issuer = signer.identity?.extensions?.issuer;
    const misses = check.identities.map((m) => m.match(subject, issuer));
    if (!misses.some((m) => m === undefined)) {
      fail(`the certificate's identity does not match: ${misses.map((m, i) => `${m} (wanted ${check.identities[i]!.describe()})`).join('; ')}`);
    }
    const raw = material.$case === 'certificate' ? material.certificate.rawBytes : material.$case === 'x509CertificateChain' ? material.x509CertificateChain.certificates[0]!.rawBytes : undefined;
    result.signer = { kind: 'keyless', subject, issuer, certificate: raw ? new NodeX509(Buffer.from(raw)).toString() : undefined };
  }
  return result;
}

/**
 * ed25519Aware wraps a message signature's check so that Ed25519 keys verify the message itself: the
 * library passes a digest name, which Node refuses for Ed25519 (pure EdDSA has no separate hash).
 */
function ed25519Aware(content: SignedEntity['signature'], data: Buffer): SignedEntity['signature'] {
  return {
    signature: content.signature,
    compareSignature: (s) => content.compareSignature(s),
    compareDigest: (d) => content.compareDigest(d),
    verifySignature: (key) => {
      if (key.asymmetricKeyType !== 'ed25519') return content.verifySignature(key);
      try {
        return nodeVerify(null, data, key, content.signature);
      } catch {
        return false;
      }
    },
  };
}

/** timesOf lists the times the verifier relied on: a log entry's time counts only with its signed promise. */
function timesOf(entity: SignedEntity): Date[] {
  return entity.timestamps.flatMap((t) => {
    if (t.$case === 'timestamp-authority') return [t.timestamp.signingTime];
    return t.tlogEntry.inclusionPromise ? [new Date(Number(t.tlogEntry.integratedTime) * 1000)] : [];
  });
}
