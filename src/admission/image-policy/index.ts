export { ImagePolicyAdmission, imagePolicyValidator, artifactsOf, IMAGE_VERIFICATION_PROVIDER, type ArtifactField, type CheckedArtifact, type ImagePolicyAdmissionOptions } from './admission.js';
export {
  ImagePolicyEnforcer,
  IMAGE_POLICY_QUERY,
  canonical,
  type ArtifactVerifier,
  type AuthorityVerdict,
  type VerifierAuthority,
  type ImageDecision,
  type PolicyOutcome,
} from './enforcer.js';
export { compileGlob, normalizeName } from './glob.js';
export { compileImagePolicy, type CompiledImagePolicy, type Identity } from './policies.js';
