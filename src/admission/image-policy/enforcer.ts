import type { DecisionLogger } from '../../policy/index.js';

import { normalizeName } from './glob.js';
import { type Authority, type CompiledImagePolicy, conditionAllows, type Identity, matchingPolicies } from './policies.js';

/** VerifierAuthority is an authority with its key material resolved (Secrets read, TrustRoot looked up). */
export interface VerifierAuthority {
  name: string;
  key?: { pem: string; hashAlgorithm?: string };
  keyless?: { identities: Identity[]; trustedRoot: unknown };
  /** predicate types whose attestations must be verified and returned */
  attestations: string[];
}

/** AuthorityVerdict is what the verifier found for one artifact digest and one authority. */
export interface AuthorityVerdict {
  verified: boolean;
  /** why not, for a person: which signature was looked for and what was wrong with it */
  reason?: string;
  /** verified attestations of the requested predicate types */
  attestations: Array<{ predicateType: string; predicate: unknown }>;
}

/**
 * ArtifactVerifier is the supply chain as the enforcer sees it: resolve what a reference names now,
 * and check an artifact digest's signatures and attestations against one authority.
 */
export interface ArtifactVerifier {
  resolve(reference: string): Promise<string>;
  verify(req: { reference: string; digest: string; authority: VerifierAuthority }): Promise<AuthorityVerdict>;
}

/** AuthorityMaterial reads what authorities refer to by name. */
export interface AuthorityMaterial {
  /** the value of a Secret key (UTF-8), or undefined when the Secret or key does not exist */
  secret(namespace: string, name: string, key?: string): string | undefined;
  /** the TrustedRoot document of a TrustRoot object; undefined when it does not exist */
  trustRoot(name: string | undefined): unknown;
}

/** PolicyOutcome: one matching ImagePolicy and how the artifact fared against it. */
export interface PolicyOutcome {
  policy: string;
  mode: 'enforce' | 'warn';
  satisfied: boolean;
  /** the authority that satisfied it */
  authority?: string;
  /** why each authority did not, in order */
  failures: Array<{ authority: string; reason: string }>;
}

/** ImageDecision is the verdict on one artifact. */
export interface ImageDecision {
  reference: string;
  digest: string;
  allowed: boolean;
  policies: PolicyOutcome[];
  /** one line per unsatisfied enforcing policy: which artifact, which policy, each authority and why */
  messages: string[];
  /** the same for policies in warn mode */
  warnings: string[];
  /** verified attestation predicates by authority, for policies that go on to decide in Rego */
  attestations: Array<{ authority: string; predicateType: string; predicate: unknown }>;
}

/** EnforcerOptions: the policies in force (read at each call), the verifier and key material. */
export interface EnforcerOptions {
  policies: () => readonly CompiledImagePolicy[];
  verifier: ArtifactVerifier;
  material: AuthorityMaterial;
  decisionLog?: DecisionLogger;
  /** namespace Secrets without one are read from */
  defaultSecretNamespace?: string;
}

/** The decision-log query name of image verification. */
export const IMAGE_POLICY_QUERY = 'skiff.imagepolicy';

/**
 * ImagePolicyEnforcer decides whether an artifact may be used: every ImagePolicy whose globs match must
 * be satisfied by one of its authorities: a valid signature by it or, for an authority that lists
 * attestations, each listed attestation signed by it and allowed by its condition (an attestation is
 * itself a signature over the digest, so it stands in for one, as in policy-controller). Admission calls it with the reference as written (a tag is resolved
 * here), pulls call it again with the digest about to be used, so a tag moved after admission cannot
 * bring in anything unverified. Every decision that involved a policy goes to the decision log.
 */
export class ImagePolicyEnforcer {
  constructor(private readonly opts: EnforcerOptions) {}

  /** covers tells whether any policy applies to the reference (nothing to verify otherwise). */
  covers(reference: string): boolean {
    return matchingPolicies(this.opts.policies(), canonical(reference)).length > 0;
  }

  /**
   * check verifies one artifact. `digest` is the digest about to be used (pull time); without it the
   * reference is resolved (admission). An artifact no policy covers is allowed without a lookup.
   */
  async check(reference: string, digest?: string): Promise<ImageDecision> {
    const started = process.hrtime.bigint();
    const ref = canonical(reference);
    const policies = matchingPolicies(this.opts.policies(), ref);
    if (!policies.length) return { reference, digest: digest ?? '', allowed: true, policies: [], messages: [], warnings: [], attestations: [] };
    let resolved = digest ?? digestOf(ref);
    let resolveError: string | undefined;
    if (!resolved) {
      try {
        resolved = await this.opts.verifier.resolve(reference);
      } catch (err) {
        resolveError = (err as Error).message;
      }
    }
    const outcomes: PolicyOutcome[] = [];
    const attestations: ImageDecision['attestations'] = [];
    for (const policy of policies) {
      if (resolveError || !resolved) {
        outcomes.push({ policy: policy.name, mode: policy.mode, satisfied: false, failures: [{ authority: '*', reason: `the artifact cannot be resolved to a digest: ${resolveError ?? 'no digest'}` }] });
        continue;
      }
      outcomes.push(await this.checkPolicy(policy, reference, resolved, attestations));
    }
    const messages: string[] = [];
    const warnings: string[] = [];
    for (const o of outcomes) {
      if (o.satisfied) continue;
      const line = `artifact ${reference}${resolved && !reference.includes(resolved) ? ` (${resolved})` : ''} does not satisfy ImagePolicy "${o.policy}": ${o.failures.map((f) => `authority "${f.authority}": ${f.reason}`).join('; ')}`;
      (o.mode === 'warn' ? warnings : messages).push(line);
    }
    const decision: ImageDecision = { reference, digest: resolved ?? '', allowed: messages.length === 0, policies: outcomes, messages, warnings, attestations };
    this.opts.decisionLog?.record({
      query: IMAGE_POLICY_QUERY,
      input: { reference, digest: resolved, phase: digest ? 'pull' : 'admission' },
      result: { allowed: decision.allowed, policies: outcomes },
      durationUs: Number((process.hrtime.bigint() - started) / 1000n),
    });
    return decision;
  }

  private async checkPolicy(policy: CompiledImagePolicy, reference: string, digest: string, found: ImageDecision['attestations']): Promise<PolicyOutcome> {
    const failures: PolicyOutcome['failures'] = [];
    for (const authority of policy.authorities) {
      const material = this.material(authority);
      if (typeof material === 'string') {
        failures.push({ authority: authority.name, reason: material });
        continue;
      }
      let verdict: AuthorityVerdict;
      try {
        verdict = await this.opts.verifier.verify({ reference, digest, authority: material });
      } catch (err) {
        failures.push({ authority: authority.name, reason: `verification failed: ${(err as Error).message}` });
        continue;
      }
      if (!verdict.verified) {
        failures.push({ authority: authority.name, reason: verdict.reason ?? 'no valid signature' });
        continue;
      }
      const why = attestationFailure(authority, verdict, digest);
      if (why) {
        failures.push({ authority: authority.name, reason: why });
        continue;
      }
      for (const a of verdict.attestations) found.push({ authority: authority.name, ...a });
      return { policy: policy.name, mode: policy.mode, satisfied: true, authority: authority.name, failures };
    }
    return { policy: policy.name, mode: policy.mode, satisfied: false, failures };
  }

  /** material resolves an authority's key and trust root; a string says what is missing. */
  private material(a: Authority): VerifierAuthority | string {
    const attestations = a.attestations.map((x) => x.predicateType);
    if (a.key) {
      let pem = a.key.data;
      if (!pem && a.key.secretRef) {
        const ns = a.key.secretRef.namespace ?? this.opts.defaultSecretNamespace ?? 'skiff-system';
        pem = this.opts.material.secret(ns, a.key.secretRef.name, a.key.secretRef.key);
        if (pem === undefined) return `its key's Secret ${ns}/${a.key.secretRef.name}${a.key.secretRef.key ? ` (key ${a.key.secretRef.key})` : ''} does not exist; create it or fix secretRef`;
      }
      if (!pem) return 'it has no key data';
      return { name: a.name, key: { pem, hashAlgorithm: a.key.hashAlgorithm }, attestations };
    }
    if (a.keyless) {
      const trustedRoot = this.opts.material.trustRoot(a.keyless.trustRootRef);
      if (trustedRoot === undefined) return a.keyless.trustRootRef ? `its TrustRoot "${a.keyless.trustRootRef}" does not exist; create it or fix trustRootRef` : 'it names no trustRootRef and the server has no default trust root; create a TrustRoot and name it';
      return { name: a.name, keyless: { identities: a.keyless.identities, trustedRoot }, attestations };
    }
    return 'it names neither a key nor keyless signers';
  }
}

/** attestationFailure checks that every required attestation was verified and passes its condition. */
function attestationFailure(a: Authority, verdict: AuthorityVerdict, digest: string): string | undefined {
  for (const req of a.attestations) {
    const candidates = verdict.attestations.filter((x) => x.predicateType === req.predicateType);
    if (!candidates.length) return `no verified attestation of type ${req.predicateType} (attestation "${req.name}")`;
    if (!req.condition) continue;
    const reasons: string[] = [];
    const ok = candidates.some((c) => {
      const r = conditionAllows(req.condition!, { predicateType: c.predicateType, predicate: c.predicate, digest });
      if (!r.allowed && r.reason) reasons.push(r.reason);
      return r.allowed;
    });
    if (!ok) return `attestation "${req.name}" (${req.predicateType}) is verified but ${reasons[0] ?? 'its condition does not allow it'}`;
  }
  return undefined;
}

/** canonical normalizes a reference's name (Docker Hub defaults) and keeps its tag or digest; `oci://` is dropped. */
export function canonical(reference: string): string {
  const ref = reference.replace(/^oci:\/\//, '');
  const at = ref.indexOf('@');
  const base = at >= 0 ? ref.slice(0, at) : ref;
  const suffix = at >= 0 ? ref.slice(at) : '';
  const colon = base.lastIndexOf(':');
  const tagged = colon > base.lastIndexOf('/');
  const name = tagged ? base.slice(0, colon) : base;
  return normalizeName(name) + (tagged ? base.slice(colon) : '') + suffix;
}

function digestOf(ref: string): string | undefined {
  const m = /@(sha256:[0-9a-f]{64})$/.exec(ref);
  return m?.[1];
}
