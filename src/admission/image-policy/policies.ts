import type { ResourceObject } from '../../api/kinds/types.js';
import { PolicyEngine, type PreparedQuery, RegoErrors, toJSON } from '../../policy/index.js';

import { compileGlob, type ImageGlob } from './glob.js';

/** Identity is one accepted keyless signer, as written in `keyless.identities[]`. */
export interface Identity {
  issuer?: string;
  subject?: string;
  issuerRegExp?: string;
  subjectRegExp?: string;
}

/** AttestationRequirement: an attestation an authority must also have signed, with its Rego condition. */
export interface AttestationRequirement {
  name: string;
  predicateType: string;
  /** decides on the predicate; absent: any verified attestation of the type passes */
  condition?: PreparedQuery;
}

/** Authority is one compiled `spec.authorities[]` entry. */
export interface Authority {
  name: string;
  key?: { data?: string; secretRef?: { name: string; namespace?: string; key?: string }; hashAlgorithm?: string };
  keyless?: { identities: Identity[]; trustRootRef?: string };
  attestations: AttestationRequirement[];
}

/** CompiledImagePolicy is an ImagePolicy ready to match and to decide. */
export interface CompiledImagePolicy {
  name: string;
  mode: 'enforce' | 'warn';
  globs: ImageGlob[];
  authorities: Authority[];
}

/** How long an attestation's Rego condition may run for one artifact. */
const CONDITION_TIMEOUT_MS = 250;

/**
 * compileImagePolicy prepares a stored ImagePolicy (the schema has checked its shape): globs compiled,
 * attestation conditions parsed and prepared. A condition that does not compile throws RegoErrors,
 * which the caller reports on the policy and treats as a policy nothing can satisfy.
 */
export function compileImagePolicy(obj: ResourceObject): CompiledImagePolicy {
  const spec = (obj.spec ?? {}) as {
    images?: Array<{ glob: string }>;
    authorities?: Array<{
      name?: string;
      key?: Authority['key'];
      keyless?: Authority['keyless'];
      attestations?: Array<{ name?: string; predicateType: string; policy?: { type: 'rego'; data: string; regoVersion?: 'v0' | 'v1' } }>;
    }>;
    mode?: 'enforce' | 'warn';
  };
  const name = obj.metadata.name;
  return {
    name,
    mode: spec.mode ?? 'enforce',
    globs: (spec.images ?? []).map((i) => compileGlob(i.glob)),
    authorities: (spec.authorities ?? []).map((a, i) => {
      const authorityName = a.name ?? `authority-${i}`;
      return {
        name: authorityName,
        key: a.key,
        keyless: a.keyless,
        attestations: (a.attestations ?? []).map((att, j) => ({
          name: att.name ?? att.predicateType,
          predicateType: att.predicateType,
          condition: att.policy ? prepareCondition(`${name}/${authorityName}/attestations[${j}]`, att.policy.data, att.policy.regoVersion) : undefined,
        })),
      };
    }),
  };
}

/** prepareCondition compiles one attestation condition in an engine of its own and prepares `data.PKG.allow`. */
function prepareCondition(file: string, text: string, version: 'v0' | 'v1' | undefined): PreparedQuery {
  const engine = new PolicyEngine();
  const mod = engine.addModule(`${file}.rego`, text, { regoVersion: version === 'v0' ? 0 : 1 });
  engine.compile();
  return engine.prepare(`${mod.pkg.join('.')}.allow`, { timeoutMs: CONDITION_TIMEOUT_MS });
}

/**
 * conditionAllows evaluates an attestation condition: only a defined `allow` that is exactly `true`
 * admits. An evaluation error (the deadline included) refuses, with the reason.
 */
export function conditionAllows(q: PreparedQuery, input: unknown): { allowed: boolean; reason?: string } {
  try {
    const rows = q.eval({ input });
    const value = rows.length ? toJSON(rows[0]!.expressions[0]!.value) : undefined;
    if (value === true) return { allowed: true };
    return { allowed: false, reason: value === undefined ? 'its condition\'s allow is undefined for this predicate' : `its condition's allow is ${JSON.stringify(value)}` };
  } catch (err) {
    const message = err instanceof RegoErrors ? err.errors.map((e) => e.message).join('; ') : (err as Error).message;
    return { allowed: false, reason: `its condition failed: ${message}` };
  }
}

/** matchingPolicies lists the policies with a glob that covers the reference. */
export function matchingPolicies(policies: readonly CompiledImagePolicy[], reference: string): CompiledImagePolicy[] {
  return policies.filter((p) => p.globs.some((g) => g.matches(reference)));
}
