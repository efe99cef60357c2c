import { createHash } from 'node:crypto';

import type { ImageReference, Registry } from '../oci/types.js';

import { compileIdentity, type Identity } from './identity.js';
import { loadPublicKey } from './keys.js';
import { repositoryOf } from './layout.js';
import type { Statement } from './payload.js';
import type { TrustedRoot } from './trusted-root.js';
import type { BundleCheck, Signer } from './verify-bundle.js';
import { verifyImage } from './verify-image.js';

/** AttestationRequirement asks for a verified attestation of a predicate type (policy-controller's `attestations[]`). */
export interface AttestationRequirement {
  name: string;
  predicateType: string;
  /** a condition over the predicate, evaluated by the caller's `checkAttestation` (Rego in Skiff) */
  policy?: { type: string; data: string };
}

/**
 * Authority is who may sign an artifact, in Sigstore policy-controller's shape (as `ImagePolicy`
 * `spec.authorities[]` holds it): a public key (`key.data`, PEM) or keyless identities under a
 * trusted root, and optionally attestations that must be present (then signatures are not needed).
 */
export interface Authority {
  name?: string;
  key?: { data: string };
  keyless?: { identities: Identity[]; trustRootRef?: string; insecureIgnoreSCT?: boolean };
  attestations?: AttestationRequirement[];
}

/** AttestationVerdict is a verified attestation as handed to policy: the predicate, its type and who signed it. */
export interface AttestationVerdict {
  authority: string;
  /** the requirement it satisfied, when one asked for its type */
  name?: string;
  predicateType: string;
  predicate: unknown;
  subject: Statement['subject'];
  signer: Signer;
}

/** ArtifactVerdict is the answer to "may this artifact run?": by digest, with the authority that vouched and every reason. */
export interface ArtifactVerdict {
  /** `HOST/REPO@DIGEST` checked */
  reference: string;
  digest: string;
  verified: boolean;
  /** the first authority (in the order given) that was satisfied */
  authority?: string;
  /** why each unsatisfied authority was not: `authority NAME: ...` lines */
  reasons: string[];
  signatures: Array<{ authority: string; location: string; signer: Signer }>;
  attestations: AttestationVerdict[];
}

/** The caller's check of an attestation's predicate against a requirement's `policy`; a string is the reason it fails. */
export type AttestationChecker = (input: { authority: string; requirement: AttestationRequirement; statement: Statement }) => Promise<string | undefined>;

/** VerifyArtifactOptions are the trusted roots keyless authorities name, the verdict cache and the attestation condition checker. */
export interface VerifyArtifactOptions {
  /** trusted roots by name (`keyless.trustRootRef`) */
  trustedRoots?: Record<string, TrustedRoot>;
  /** the trusted root of a keyless authority without `trustRootRef` */
  defaultTrustedRoot?: TrustedRoot;
  cache?: VerdictCache;
  checkAttestation?: AttestationChecker;
  /** the digest `ref` already resolved to (admission resolves once and checks the same digest at pull) */
  digest?: string;
}

/** AuthorityResult is one authority's outcome for one digest: what `VerdictCache` keeps. */
export interface AuthorityResult {
  satisfied: boolean;
  reasons: string[];
  signatures: ArtifactVerdict['signatures'];
  attestations: AttestationVerdict[];
}

/**
 * VerdictCache remembers, per (artifact digest, authority), whether the authority was satisfied: the
 * same digest under the same authority verifies the same way until a signature is added or removed,
 * so a positive result is reused for `ttlMs` and a negative one for `negativeTtlMs` (0: not kept, so
 * an artifact signed just after a refusal is accepted at once). Concurrent checks of one pair share
 * one verification. The key covers the authority's whole spec, so an edited key or identity misses.
 */
export class VerdictCache {
  private readonly entries = new Map<string, { result: AuthorityResult; until: number }>();
  private readonly inflight = new Map<string, Promise<AuthorityResult>>();
  hits = 0;
  misses = 0;

  constructor(private readonly opts: { ttlMs?: number; negativeTtlMs?: number; maxEntries?: number; now?: () => number } = {}) {}

  /** get answers from the cache or runs `verify` once for all concurrent callers. */
  async get(key: string, verify: () => Promise<AuthorityResult>): Promise<AuthorityResult> {
    const now = (this.opts.now ?? Date.now)();
    const hit = this.entries.get(key);
    if (hit && hit.until > now) {
      this.hits++;
      return hit.result;
    }
    const running = this.inflight.get(key);
    if (running) return running;
    this.misses++;
    const p = verify().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    const result = await p;
    const ttl = result.satisfied ? (this.opts.ttlMs ?? 5 * 60_000) : (this.opts.negativeTtlMs ?? 0);
    if (ttl > 0) {
      this.entries.delete(key);
      this.entries.set(key, { result, until: (this.opts.now ?? Date.now)() + ttl });
      const max = this.opts.maxEntries ?? 10_000;
      while (this.entries.size > max) this.entries.delete(this.entries.keys().next().value!);
    }
    return result;
  }

  /** clear forgets every verdict (a trusted root or a key was rotated). */
  clear(): void {
    this.entries.clear();
  }
}

function authorityName(a: Authority, i: number): string {
  return a.name ?? `authority-${i}`;
}

function checkFor(a: Authority, name: string, opts: VerifyArtifactOptions): BundleCheck {
  if (a.key && a.keyless) throw new Error(`set key or keyless, not both`);
  if (a.key) return { kind: 'key', key: loadPublicKey(a.key.data, `authority ${name} key.data`) };
  if (a.keyless) {
    const ref = a.keyless.trustRootRef;
    const trustedRoot = ref ? opts.trustedRoots?.[ref] : opts.defaultTrustedRoot;
    if (!trustedRoot) throw new Error(ref ? `trust root "${ref}" is not known` : 'keyless verification needs a trusted root and none is configured');
    if (!a.keyless.identities?.length) throw new Error('keyless.identities is empty: name at least one issuer and subject');
    return {
      kind: 'keyless',
      trustedRoot,
      identities: a.keyless.identities.map((id, j) => compileIdentity(id, `keyless.identities[${j}]`)),
      ignoreSct: a.keyless.insecureIgnoreSCT,
    };
  }
  throw new Error('neither key nor keyless is set');
}

async function checkAuthority(registry: Registry, ref: ImageReference, digest: string, a: Authority, name: string, opts: VerifyArtifactOptions): Promise<AuthorityResult> {
  const out: AuthorityResult = { satisfied: false, reasons: [], signatures: [], attestations: [] };
  let check: BundleCheck;
  try {
    check = checkFor(a, name, opts);
  } catch (err) {
    out.reasons.push((err as Error).message);
    return out;
  }
  const required = a.attestations ?? [];
  const found = await verifyImage(registry, ref, check, { digest, signatures: required.length === 0, attestations: required.length > 0 });
  out.signatures = found.signatures.map((s) => ({ authority: name, location: s.location, signer: s.signer }));
  const verdicts = found.attestations.map((att) => ({ att, verdict: { authority: name, predicateType: att.predicateType, predicate: att.statement.predicate, subject: att.statement.subject, signer: att.signer } as AttestationVerdict }));
  out.attestations = verdicts.map((v) => v.verdict);
  if (required.length === 0) {
    out.satisfied = found.signatures.length > 0;
    if (!out.satisfied) out.reasons.push(found.candidates === 0 ? `no signatures found for ${found.reference}` : `no signature verified: ${found.reasons.join('; ')}`);
    return out;
  }
  let all = true;
  for (const req of required) {
    const matching = verdicts.filter((v) => v.att.predicateType === req.predicateType);
    if (matching.length === 0) {
      all = false;
      out.reasons.push(`attestation ${req.name}: no verified attestation of type ${req.predicateType}${found.reasons.length ? ` (${found.reasons.join('; ')})` : found.candidates === 0 ? ` (none found for ${found.reference})` : ''}`);
      continue;
    }
    const why: string[] = [];
    let passed = false;
    for (const m of matching) {
      const reason = req.policy && opts.checkAttestation ? await opts.checkAttestation({ authority: name, requirement: req, statement: m.att.statement }) : undefined;
      if (reason === undefined) {
        passed = true;
        m.verdict.name = req.name;
      } else why.push(reason);
    }
    if (!passed) {
      all = false;
      out.reasons.push(`attestation ${req.name}: the policy refused every ${req.predicateType} attestation: ${why.join('; ')}`);
    }
  }
  out.satisfied = all;
  return out;
}

function cacheKey(digest: string, a: Authority, opts: VerifyArtifactOptions): string {
  const ref = a.keyless ? (a.keyless.trustRootRef ?? '') : '';
  const root = a.keyless ? (ref ? opts.trustedRoots?.[ref]?.source : opts.defaultTrustedRoot?.source) : '';
  return `${digest}\n${createHash('sha256').update(JSON.stringify([a, root])).digest('hex')}`;
}

/**
 * verifyArtifact decides whether an artifact is signed by at least one of `authorities`, as
 * policy-controller does for a matching ClusterImagePolicy: `ref` is resolved to a digest once (or
 * `opts.digest` is taken), each authority is checked against that digest (through the cache when
 * one is given), and the verdict names the first satisfied authority or every reason none was. The
 * verified attestations of all authorities come back with their predicates for policy to judge.
 *
 * @example
 * const cache = new VerdictCache();
 * const v = await verifyArtifact(registry, parseReference('127.0.0.1:5000/app:v1'),
 *   [{ name: 'release-key', key: { data: pem } }], { cache });
 * if (!v.verified) throw new Error(`${v.reference}: ${v.reasons.join('; ')}`);
 */
export async function verifyArtifact(registry: Registry, ref: ImageReference, authorities: Authority[], opts: VerifyArtifactOptions = {}): Promise<ArtifactVerdict> {
  const digest = opts.digest ?? ref.digest ?? (await registry.resolve(ref)).digest;
  const reference = `${repositoryOf(ref)}@${digest}`;
  const verdict: ArtifactVerdict = { reference, digest, verified: false, reasons: [], signatures: [], attestations: [] };
  if (authorities.length === 0) {
    verdict.reasons.push('no authorities to verify against');
    return verdict;
  }
  const results = await Promise.all(
    authorities.map((a, i) => {
      const name = authorityName(a, i);
      const run = () => checkAuthority(registry, ref, digest, a, name, opts);
      return opts.cache ? opts.cache.get(cacheKey(digest, a, opts), run) : run();
    }),
  );
  results.forEach((r, i) => {
    const name = authorityName(authorities[i]!, i);
    verdict.signatures.push(...r.signatures);
    verdict.attestations.push(...r.attestations);
    if (r.satisfied) verdict.authority ??= name;
    else verdict.reasons.push(...r.reasons.map((why) => `authority ${name}: ${why}`));
  });
  verdict.verified = verdict.authority !== undefined;
  return verdict;
}
