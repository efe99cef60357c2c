import type { Descriptor, ImageReference, Registry } from '../oci/types.js';

import { verifyBytes } from './keys.js';
import { Annotations, attestationTag, BUNDLE_ARTIFACT_TYPE, isNotFound, MediaTypes, repositoryOf, signatureTag } from './layout.js';
import { type Envelope, IN_TOTO_PAYLOAD_TYPE, pae, parseSimpleSigning, parseStatement, sha256Digest, SIGN_PREDICATE_TYPE, type SimpleSigning, type Statement, statementCovers } from './payload.js';
import { BUNDLE_MEDIA_TYPES, type SerializedBundle, type SerializedTlogEntry } from './sigstore.js';
import { type BundleCheck, parseBundle, type Signer, verifyBundle } from './verify-bundle.js';

/** Limits on what one verification reads, so a hostile repository cannot make it fetch without end. */
const MAX_LAYERS = 64;
const MAX_REFERRERS = 64;
const MAX_PAYLOAD_BYTES = 1 << 20;
const MAX_BUNDLE_BYTES = 4 << 20;

/** VerifiedSignature is one signature that verified, with the claim it makes. */
export interface VerifiedSignature {
  /** where it was found: `tag sha256-HEX.sig layer N` or `referrer sha256:...` */
  location: string;
  /** the simple-signing claim (for a bundle signature, the claim cosign prints for it) */
  payload: SimpleSigning;
  signer: Signer;
}

/** VerifiedAttestation is one in-toto statement that verified and names the artifact among its subjects. */
export interface VerifiedAttestation {
  location: string;
  predicateType: string;
  statement: Statement;
  signer: Signer;
}

/** ImageVerification is everything found for one artifact: what verified and why the rest did not. */
export interface ImageVerification {
  /** `HOST/REPO@DIGEST`: what was checked (a tag is resolved once, first) */
  reference: string;
  digest: string;
  signatures: VerifiedSignature[];
  attestations: VerifiedAttestation[];
  /** one line per candidate that did not verify, naming where it was found */
  reasons: string[];
  /** how many candidates were found at all (0 means the artifact is unsigned) */
  candidates: number;
}

/** What `verifyImage` looks for. */
export interface VerifyImageOptions {
  signatures?: boolean;
  attestations?: boolean;
  /** the digest `ref` was already resolved to (skips the resolve) */
  digest?: string;
}

interface Work {
  reference: string;
  repository: string;
  digest: string;
  check: BundleCheck;
  registry: Registry;
  ref: ImageReference;
  out: ImageVerification;
  wantSig: boolean;
  wantAtt: boolean;
  subjectBytes?: Promise<Uint8Array>;
}

/**
 * verifyImage finds and checks what signs `ref` with one check (a key, or keyless identities under a
 * trusted root): cosign's `sha256-HEX.sig` (and `.att`) tags and Sigstore bundle referrers. A
 * signature counts only if its payload names the resolved digest: a signature copied from another
 * artifact, or left behind when a tag moved, does not. It never throws for a signature that does not
 * verify: the caller decides on `signatures`, `attestations` and `reasons`.
 */
export async function verifyImage(registry: Registry, ref: ImageReference, check: BundleCheck, opts: VerifyImageOptions = {}): Promise<ImageVerification> {
  const digest = opts.digest ?? ref.digest ?? (await registry.resolve(ref)).digest;
  const repository = repositoryOf(ref);
  const reference = `${repository}@${digest}`;
  const out: ImageVerification = { reference, digest, signatures: [], attestations: [], reasons: [], candidates: 0 };
  const w: Work = { reference, repository, digest, check, registry, ref, out, wantSig: opts.signatures ?? true, wantAtt: opts.attestations ?? false };
  await Promise.all([
    w.wantSig ? fromTag(w, signatureTag(digest), MediaTypes.simpleSigning, (l, d, loc) => checkSigLayer(w, l, d, loc)) : undefined,
    w.wantAtt ? fromTag(w, attestationTag(digest), MediaTypes.dsseEnvelope, (l, d, loc) => checkAttLayer(w, l, d, loc)) : undefined,
    fromReferrers(w),
  ]);
  return out;
}

async function fromTag(w: Work, tag: string, mediaType: string, each: (layer: Descriptor, bytes: Uint8Array, location: string) => Promise<void>): Promise<void> {
  let layers: Descriptor[];
  try {
    const m = await w.registry.getManifest({ registry: w.ref.registry, repository: w.ref.repository, tag });
    layers = 'layers' in m.manifest ? m.manifest.layers : [];
  } catch (err) {
    if (isNotFound(err)) return;
    w.out.reasons.push(`tag ${tag}: cannot be read: ${(err as Error).message}`);
    return;
  }
  const ours = layers.filter((l) => l.mediaType === mediaType).slice(0, MAX_LAYERS);
  w.out.candidates += ours.length;
  await Promise.all(
    ours.map(async (layer) => {
      const location = `tag ${tag} layer ${layers.indexOf(layer)}`;
      try {
        const bytes = await w.registry.getBlob(w.ref, layer.digest, { maxBytes: MAX_PAYLOAD_BYTES });
        await each(layer, bytes, location);
      } catch (err) {
        w.out.reasons.push(reasonAt(location, err));
      }
    }),
  );
}

async function checkSigLayer(w: Work, layer: Descriptor, payloadBytes: Uint8Array, location: string): Promise<void> {
  const fail = (why: string) => w.out.reasons.push(`${location}: ${why}`);
  const payload = parseSimpleSigning(payloadBytes);
  if (typeof payload === 'string') return void fail(payload);
  const signed = payload.critical.image['docker-manifest-digest'];
  if (signed !== w.digest) return void fail(`signs ${signed}, not ${w.digest} (a signature of another artifact: the tag may have moved)`);
  const sig = layer.annotations?.[Annotations.signature];
  if (!sig) return void fail(`has no ${Annotations.signature} annotation`);
  if (w.check.kind === 'key') {
    if (!verifyBytes(w.check.key, payloadBytes, Buffer.from(sig, 'base64'))) return void fail('the signature does not verify with the key');
    w.out.signatures.push({ location, payload, signer: { kind: 'key' } });
    return;
  }
  const bundle = legacyBundle(layer, { messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: Buffer.from(sha256Digest(payloadBytes).slice(7), 'hex').toString('base64') }, signature: sig } });
  if (typeof bundle === 'string') return void fail(bundle);
  const result = await verifyBundle(await parseBundle(bundle, location), w.check, payloadBytes);
  w.out.signatures.push({ location, payload: { ...payload, optional: { ...(payload.optional ?? {}), Issuer: result.signer.issuer, Subject: result.signer.subject } }, signer: result.signer });
}

async function checkAttLayer(w: Work, layer: Descriptor, bytes: Uint8Array, location: string): Promise<void> {
  const fail = (why: string) => w.out.reasons.push(`${location}: ${why}`);
  let env: Envelope;
  try {
    env = JSON.parse(Buffer.from(bytes).toString('utf8')) as Envelope;
  } catch (err) {
    return void fail(`the DSSE envelope is not JSON (${(err as Error).message})`);
  }
  if (typeof env?.payload !== 'string' || !Array.isArray(env.signatures) || env.signatures.length === 0) return void fail('not a DSSE envelope with a payload and a signature');
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) return void fail(`payload type "${env.payloadType}" is not ${IN_TOTO_PAYLOAD_TYPE}`);
  const payload = Buffer.from(env.payload, 'base64');
  let signer: Signer;
  if (w.check.kind === 'key') {
    const key = w.check.key;
    if (!env.signatures.some((s) => verifyBytes(key, pae(env.payloadType, payload), Buffer.from(s.sig ?? '', 'base64')))) return void fail('no signature on the envelope verifies with the key');
    signer = { kind: 'key' };
  } else {
    const bundle = legacyBundle(layer, { dsseEnvelope: { payloadType: env.payloadType, payload: env.payload, signatures: [env.signatures[0]!] } });
    if (typeof bundle === 'string') return void fail(bundle);
    signer = (await verifyBundle(await parseBundle(bundle, location), w.check)).signer;
  }
  acceptStatement(w, payload, location, signer);
}

function acceptStatement(w: Work, payload: Buffer, location: string, signer: Signer): void {
  const statement = parseStatement(payload);
  if (typeof statement === 'string') return void w.out.reasons.push(`${location}: ${statement}`);
  if (!statementCovers(statement, w.digest)) {
    const named = statement.subject.map((s) => Object.entries(s.digest ?? {}).map(([a, h]) => `${a}:${h}`).join(',')).join(' ');
    return void w.out.reasons.push(`${location}: the statement is about ${named || 'nothing'}, not ${w.digest} (the tag may have moved)`);
  }
  if (statement.predicateType === SIGN_PREDICATE_TYPE) {
    if (w.wantSig) w.out.signatures.push({ location, payload: claimFor(w), signer });
  } else if (w.wantAtt) {
    w.out.attestations.push({ location, predicateType: statement.predicateType, statement, signer });
  }
}

/** claimFor is the simple-signing claim cosign prints for a bundle signature of the artifact. */
function claimFor(w: Work): SimpleSigning {
  return { critical: { identity: { 'docker-reference': w.repository }, image: { 'docker-manifest-digest': w.digest }, type: SIGN_PREDICATE_TYPE }, optional: {} };
}

async function fromReferrers(w: Work): Promise<void> {
  let found: Descriptor[];
  try {
    found = (await w.registry.referrers(w.ref, w.digest)).filter((d) => BUNDLE_ARTIFACT_TYPE.test(d.artifactType ?? ''));
  } catch (err) {
    if (isNotFound(err)) return;
    w.out.reasons.push(`referrers of ${w.digest}: cannot be listed: ${(err as Error).message}`);
    return;
  }
  const predicate = (d: Descriptor) => d.annotations?.[Annotations.bundlePredicateType];
  // The index's annotations are a hint only (the bundle itself is what is checked), but they let a
  // signature check skip attestation bundles and the other way round without fetching them.
  const wanted = found.filter((d) => {
    const p = predicate(d);
    if (p === undefined) return true;
    return p === SIGN_PREDICATE_TYPE ? w.wantSig : w.wantAtt;
  });
  const ours = wanted.slice(0, MAX_REFERRERS);
  w.out.candidates += ours.length;
  await Promise.all(ours.map((d) => checkReferrer(w, d)));
}

async function checkReferrer(w: Work, d: Descriptor): Promise<void> {
  const location = `referrer ${d.digest}`;
  try {
    const m = await w.registry.getManifest({ registry: w.ref.registry, repository: w.ref.repository, digest: d.digest });
    if (!('layers' in m.manifest)) throw new Error('is an index, not a bundle manifest');
    if (m.manifest.subject?.digest !== w.digest) throw new Error(`its subject is ${m.manifest.subject?.digest ?? 'missing'}, not ${w.digest}`);
    const layer = m.manifest.layers.find((l) => BUNDLE_ARTIFACT_TYPE.test(l.mediaType));
    if (!layer) throw new Error('has no Sigstore bundle layer');
    const bytes = await w.registry.getBlob(w.ref, layer.digest, { maxBytes: MAX_BUNDLE_BYTES });
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch (err) {
      throw new Error(`the bundle is not JSON (${(err as Error).message})`);
    }
    const parsed = await parseBundle(json, location);
    if (parsed.content === 'message-signature') {
      if (!w.wantSig) return;
      // A message-signature bundle signs the manifest bytes themselves: their digest is the artifact's.
      w.subjectBytes ??= w.registry.getManifest({ registry: w.ref.registry, repository: w.ref.repository, digest: w.digest }).then((s) => s.bytes);
      const result = await verifyBundle(parsed, w.check, await w.subjectBytes);
      w.out.signatures.push({ location, payload: claimFor(w), signer: result.signer });
      return;
    }
    const result = await verifyBundle(parsed, w.check);
    if (result.dsse!.payloadType !== IN_TOTO_PAYLOAD_TYPE) throw new Error(`DSSE payload type "${result.dsse!.payloadType}" is not ${IN_TOTO_PAYLOAD_TYPE}`);
    acceptStatement(w, result.dsse!.payload, location, result.signer);
  } catch (err) {
    w.out.reasons.push(reasonAt(location, err));
  }
}

function reasonAt(location: string, err: unknown): string {
  const msg = (err as Error).message;
  return msg.startsWith(location) ? msg : `${location}: ${msg}`;
}

/**
 * legacyBundle rebuilds, from a keyless cosign layer's annotations (certificate, chain, Rekor bundle
 * with its signed entry timestamp, RFC 3161 timestamp), the v0.1 bundle they amount to, so that one
 * verifier checks both layouts.
 */
function legacyBundle(layer: Descriptor, content: Pick<SerializedBundle, 'messageSignature' | 'dsseEnvelope'>): SerializedBundle | string {
  const a = layer.annotations ?? {};
  const cert = a[Annotations.certificate];
  if (!cert) return `has no ${Annotations.certificate} annotation: a keyless signature carries its signing certificate (was it signed with a key?)`;
  const ders = [cert, a[Annotations.chain] ?? ''].flatMap((pem) => [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map((m) => m[1]!.replace(/\s+/g, '')));
  const tlogEntries: SerializedTlogEntry[] = [];
  const rekor = a[Annotations.rekorBundle];
  if (rekor) {
    try {
      const r = JSON.parse(rekor) as { SignedEntryTimestamp: string; Payload: { body: string; integratedTime: number; logIndex: number; logID: string } };
      const body = JSON.parse(Buffer.from(r.Payload.body, 'base64').toString('utf8')) as { kind: string; apiVersion: string };
      tlogEntries.push({
        logIndex: String(r.Payload.logIndex),
        logId: { keyId: Buffer.from(r.Payload.logID, 'hex').toString('base64') },
        kindVersion: { kind: body.kind, version: body.apiVersion },
        integratedTime: String(r.Payload.integratedTime),
        inclusionPromise: { signedEntryTimestamp: r.SignedEntryTimestamp },
        canonicalizedBody: r.Payload.body,
      });
    } catch (err) {
      return `the ${Annotations.rekorBundle} annotation is not a Rekor bundle (${(err as Error).message})`;
    }
  }
  const ts = a[Annotations.rfc3161];
  let rfc3161Timestamps: Array<{ signedTimestamp: string }> = [];
  if (ts) {
    try {
      rfc3161Timestamps = [{ signedTimestamp: (JSON.parse(ts) as { SignedRFC3161Timestamp: string }).SignedRFC3161Timestamp }];
    } catch (err) {
      return `the ${Annotations.rfc3161} annotation is not JSON (${(err as Error).message})`;
    }
  }
  return {
    mediaType: BUNDLE_MEDIA_TYPES['0.1'],
    verificationMaterial: { x509CertificateChain: { certificates: ders.map((rawBytes) => ({ rawBytes })) }, tlogEntries, timestampVerificationData: { rfc3161Timestamps } },
    ...content,
  };
}
