import type { Descriptor, ImageReference, Registry } from '../oci/types.js';

import { keyHint, type PrivateKey, signBytes } from './keys.js';
import { Annotations, appendLayer, attachBundle, attestationTag, MediaTypes, repositoryOf, signatureTag } from './layout.js';
import { buildSimpleSigning, buildStatement, type Envelope, IN_TOTO_PAYLOAD_TYPE, pae, sha256Digest, SIGN_PREDICATE_TYPE } from './payload.js';
import { keyDsseBundle, keyMessageBundle, type SerializedBundle } from './sigstore.js';

/** SignOptions says how `signImage` and `attestImage` sign and where they store the result. */
export interface SignOptions {
  key: PrivateKey;
  /** write a Sigstore bundle referrer (cosign's --new-bundle-format) instead of the `.sig`/`.att` tag */
  newBundleFormat?: boolean;
  /** extra claims for the simple-signing payload's `optional` section (cosign's -a KEY=VALUE) */
  annotations?: Record<string, string>;
}

/** SignResult says what was signed and where the signature went. */
export interface SignResult {
  /** the signed manifest's digest */
  digest: string;
  /** `HOST/REPO@DIGEST` */
  reference: string;
  /** the cosign tag written (`sha256-HEX.sig` or `.att`), legacy layout */
  tag?: string;
  /** the bundle referrer's manifest digest, new bundle format */
  referrer?: string;
}

async function subjectOf(registry: Registry, ref: ImageReference): Promise<Descriptor> {
  return registry.resolve(ref);
}

/**
 * signImage signs what `ref` names now (a tag is resolved to its digest first, and the digest is
 * what gets signed) as `cosign sign --key` does: a simple-signing payload appended to the
 * `sha256-HEX.sig` manifest in the same repository, or with `newBundleFormat` a DSSE in-toto
 * statement (predicate `https://sigstore.dev/cosign/sign/v1`) in a v0.3 bundle attached as a referrer.
 *
 * @example
 * const key = loadPrivateKey(readFileSync('cosign.key', 'utf8'), 'cosign.key');
 * const { digest } = await signImage(registry, parseReference('127.0.0.1:5000/app:v1'), { key });
 */
export async function signImage(registry: Registry, ref: ImageReference, opts: SignOptions): Promise<SignResult> {
  const subject = await subjectOf(registry, ref);
  const repository = repositoryOf(ref);
  const reference = `${repository}@${subject.digest}`;
  if (opts.newBundleFormat) {
    const statement = buildStatement(repository, subject.digest, SIGN_PREDICATE_TYPE, {});
    const bundle = keyDsseBundle(keyHint(opts.key.publicKey), IN_TOTO_PAYLOAD_TYPE, statement, signBytes(opts.key, pae(IN_TOTO_PAYLOAD_TYPE, statement)));
    const referrer = await attachBundle(registry, ref, subject, bundle, SIGN_PREDICATE_TYPE);
    return { digest: subject.digest, reference, referrer: referrer.digest };
  }
  const payload = buildSimpleSigning(repository, subject.digest, opts.annotations);
  const signature = signBytes(opts.key, payload).toString('base64');
  const tag = signatureTag(subject.digest);
  await appendLayer(registry, ref, tag, { bytes: payload, mediaType: MediaTypes.simpleSigning, annotations: { [Annotations.signature]: signature } });
  return { digest: subject.digest, reference, tag };
}

/** AttestOptions adds the attestation's predicate to `SignOptions`. */
export interface AttestOptions extends SignOptions {
  /** the predicate type URI (see `predicateTypeOf` for cosign's --type shorthands) */
  predicateType: string;
  /** the predicate (SLSA provenance, an SBOM, ...) */
  predicate: unknown;
}

/** dsseEnvelope signs an in-toto statement into a DSSE envelope (JSON form). */
export function dsseEnvelope(key: PrivateKey, statement: Buffer): Envelope {
  return { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: statement.toString('base64'), signatures: [{ keyid: '', sig: signBytes(key, pae(IN_TOTO_PAYLOAD_TYPE, statement)).toString('base64') }] };
}

/**
 * attestImage signs an in-toto statement about what `ref` names, as `cosign attest --key` does: a
 * DSSE envelope appended to the `sha256-HEX.att` manifest (annotated with its predicate type), or
 * with `newBundleFormat` a v0.3 DSSE bundle attached as a referrer.
 */
export async function attestImage(registry: Registry, ref: ImageReference, opts: AttestOptions): Promise<SignResult> {
  const subject = await subjectOf(registry, ref);
  const repository = repositoryOf(ref);
  const reference = `${repository}@${subject.digest}`;
  const statement = buildStatement(repository, subject.digest, opts.predicateType, opts.predicate);
  const envelope = dsseEnvelope(opts.key, statement);
  if (opts.newBundleFormat) {
    const bundle = keyDsseBundle(keyHint(opts.key.publicKey), IN_TOTO_PAYLOAD_TYPE, statement, Buffer.from(envelope.signatures[0]!.sig, 'base64'));
    const referrer = await attachBundle(registry, ref, subject, bundle, opts.predicateType);
    return { digest: subject.digest, reference, referrer: referrer.digest };
  }
  const tag = attestationTag(subject.digest);
  await appendLayer(registry, ref, tag, {
    bytes: Buffer.from(JSON.stringify(envelope)),
    mediaType: MediaTypes.dsseEnvelope,
    annotations: { [Annotations.signature]: '', [Annotations.predicateType]: opts.predicateType },
  });
  return { digest: subject.digest, reference, tag };
}

/**
 * signBlob signs a file's bytes with a key as `cosign sign-blob --key --bundle` does: a v0.3
 * bundle holding the message signature and the key's hint, with no log entry.
 */
export function signBlob(key: PrivateKey, artifact: Uint8Array): SerializedBundle {
  const digest = Buffer.from(sha256Digest(artifact).slice('sha256:'.length), 'hex');
  return keyMessageBundle(keyHint(key.publicKey), digest, signBytes(key, artifact));
}
