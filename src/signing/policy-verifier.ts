import { createHash } from 'node:crypto';

import { parseReference } from '../oci/index.js';
import type { Registry } from '../oci/types.js';

import { type AuthorityResult, VerdictCache } from './artifact.js';
import { compileIdentity, type Identity } from './identity.js';
import { loadPublicKey } from './keys.js';
import { parseTrustedRoot, type TrustedRoot } from './trusted-root.js';
import type { BundleCheck } from './verify-bundle.js';
import { verifyImage } from './verify-image.js';

/** PolicyAuthority is an ImagePolicy authority with its material resolved (the admission enforcer's `VerifierAuthority`). */
export interface PolicyAuthority {
  name: string;
  key?: { pem: string; hashAlgorithm?: string };
  keyless?: { identities: Identity[]; trustedRoot: unknown; insecureIgnoreSCT?: boolean };
  /** predicate types whose verified attestations must come back */
  attestations: string[];
}

/** PolicyVerdict is one authority's answer for one digest (the enforcer's `AuthorityVerdict`). */
export interface PolicyVerdict {
  verified: boolean;
  reason?: string;
  attestations: Array<{ predicateType: string; predicate: unknown }>;
}

/**
 * SigstoreVerifier is the signing area as the ImagePolicy enforcer sees it (its `ArtifactVerifier`):
 * `resolve` a reference to the digest it names now, and `verify` one digest against one authority.
 * Verdicts are cached per (digest, authority) in its `VerdictCache`; trusted roots arrive as JSON
 * documents (TrustRoot objects) and are parsed once per distinct document.
 *
 * An authority is satisfied by a verified signature, or, when it lists attestations, by verified
 * attestations of every listed type (as Sigstore policy-controller: an attestation is itself signed
 * by the authority). The enforcer then judges the predicates with their conditions.
 */
export class SigstoreVerifier {
  readonly cache: VerdictCache;
  private readonly roots = new Map<string, Promise<TrustedRoot>>();

  constructor(private readonly opts: { registry: Registry; cache?: VerdictCache; maxTrustedRoots?: number }) {
    this.cache = opts.cache ?? new VerdictCache();
  }

  /** resolve finds the digest a reference (`HOST/REPO:TAG`, `oci://` accepted) names now. */
  async resolve(reference: string): Promise<string> {
    const ref = parseReference(reference);
    // Admission decides on what the tag names in the registry at this moment, not on a remembered answer.
    return ref.digest ?? (await this.opts.registry.resolve(ref, { fresh: true })).digest;
  }

  /** verify checks `digest` (in the repository `reference` names) against one authority. */
  async verify(req: { reference: string; digest: string; authority: PolicyAuthority }): Promise<PolicyVerdict> {
    const ref = parseReference(req.reference);
    const a = req.authority;
    const key = `${req.digest}\n${createHash('sha256').update(JSON.stringify(a)).digest('hex')}`;
    const result = await this.cache.get(key, async () => {
      let check: BundleCheck;
      try {
        check = await this.checkFor(a);
      } catch (err) {
        return { satisfied: false, reasons: [(err as Error).message], signatures: [], attestations: [] };
      }
      return this.run(ref, req.digest, a, check);
    });
    return {
      verified: result.satisfied,
      reason: result.satisfied ? undefined : result.reasons.join('; '),
      attestations: result.attestations.map((x) => ({ predicateType: x.predicateType, predicate: x.predicate })),
    };
  }

  private async run(ref: ReturnType<typeof parseReference>, digest: string, a: PolicyAuthority, check: BundleCheck): Promise<AuthorityResult> {
    const wantAtt = a.attestations.length > 0;
    const found = await verifyImage(this.opts.registry, ref, check, { digest, signatures: true, attestations: wantAtt });
    const attestations = found.attestations
      .filter((x) => a.attestations.includes(x.predicateType))
      .map((x) => ({ authority: a.name, predicateType: x.predicateType, predicate: x.statement.predicate, subject: x.statement.subject, signer: x.signer }));
    const signatures = found.signatures.map((s) => ({ authority: a.name, location: s.location, signer: s.signer }));
    const allAttested = wantAtt && a.attestations.every((t) => attestations.some((x) => x.predicateType === t));
    const satisfied = signatures.length > 0 || allAttested;
    const reasons = satisfied ? [] : [found.candidates === 0 ? `no signatures found for ${found.reference}` : `nothing verified for ${found.reference}: ${found.reasons.join('; ')}`];
    return { satisfied, reasons, signatures, attestations };
  }

  private async checkFor(a: PolicyAuthority): Promise<BundleCheck> {
    if (a.key) {
      if (a.key.hashAlgorithm && a.key.hashAlgorithm.toLowerCase() !== 'sha256') throw new Error(`key.hashAlgorithm ${a.key.hashAlgorithm} is not supported: cosign signatures here use sha256`);
      return { kind: 'key', key: loadPublicKey(a.key.pem, `authority ${a.name} key`) };
    }
    if (a.keyless) {
      if (!a.keyless.identities.length) throw new Error('keyless.identities is empty: name at least one issuer and subject');
      return {
        kind: 'keyless',
        trustedRoot: await this.trustedRoot(a.keyless.trustedRoot, `authority ${a.name} trust root`),
        identities: a.keyless.identities.map((id, i) => compileIdentity(id, `keyless.identities[${i}]`)),
        ignoreSct: a.keyless.insecureIgnoreSCT,
      };
    }
    throw new Error('it names neither a key nor keyless signers');
  }

  private trustedRoot(doc: unknown, source: string): Promise<TrustedRoot> {
    const id = createHash('sha256').update(JSON.stringify(doc)).digest('hex');
    let p = this.roots.get(id);
    if (!p) {
      p = parseTrustedRoot(doc, source);
      p.catch(() => this.roots.delete(id));
      if (this.roots.size >= (this.opts.maxTrustedRoots ?? 64)) this.roots.delete(this.roots.keys().next().value!);
      this.roots.set(id, p);
    }
    return p;
  }
}
