/**
 * The signing area: cosign-compatible key signatures and attestations in a registry, Sigstore bundle
 * verification (key and keyless) against a trusted root, and `verifyArtifact`, the verdict admission
 * asks for. Registries are reached only through `Registry` (`src/oci/types.ts`).
 */
export { type ArtifactVerdict, type AttestationChecker, type AuthorityResult, type AttestationRequirement, type AttestationVerdict, type Authority, VerdictCache, verifyArtifact, type VerifyArtifactOptions } from './artifact.js';
export { BundleFormatError, KeyError, TrustedRootError, VerificationFailedError } from './errors.js';
export { compileIdentity, type Identity, IdentityError, type IdentityMatcher } from './identity.js';
export { generateKeyPair, type KeyAlgorithm, keyHint, loadPrivateKey, loadPublicKey, type PrivateKey, type PublicKey, publicKeyPem, signBytes, verifyBytes } from './keys.js';
export { Annotations, appendLayer, attachBundle, attestationTag, describe, MediaTypes, signatureTag } from './layout.js';
export { buildSimpleSigning, buildStatement, type Envelope, IN_TOTO_PAYLOAD_TYPE, pae, parseSimpleSigning, parseStatement, predicateTypeOf, sha256Digest, SIGN_PREDICATE_TYPE, type SimpleSigning, type Statement, statementCovers } from './payload.js';
export { type AttestOptions, attestImage, dsseEnvelope, signBlob, signImage, type SignOptions, type SignResult } from './sign.js';
export { BUNDLE_MEDIA_TYPES, keyDsseBundle, keyMessageBundle, type SerializedBundle, type SerializedTlogEntry } from './sigstore.js';
export { parseTrustedRoot, type TrustedRoot } from './trusted-root.js';
export { type BundleCheck, type BundleResult, type BundleVersion, type KeyCheck, type KeylessCheck, type ParsedBundle, parseBundle, type Signer, verifyBundle } from './verify-bundle.js';
export { type ImageVerification, type VerifiedAttestation, type VerifiedSignature, verifyImage, type VerifyImageOptions } from './verify-image.js';
export { type PolicyAuthority, type PolicyVerdict, SigstoreVerifier } from './policy-verifier.js';
