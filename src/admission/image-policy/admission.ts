import type { Logger } from 'pino';

import type { AdmissionHook, AdmissionRequest, AdmissionResponse } from '../../api/admission.js';
import { cacheKey, Informer } from '../../api/informer.js';
import type { FieldError, ResourceObject } from '../../api/kinds/types.js';
import type { ResourceService } from '../../api/resources.js';
import { type DecisionLogger, type ExternalDataLookup, RegoErrors } from '../../policy/index.js';

import { type ArtifactVerifier, type ImageDecision, ImagePolicyEnforcer } from './enforcer.js';
import { type CompiledImagePolicy, compileImagePolicy } from './policies.js';

/** ArtifactField is one artifact an object names, and the field that names it. */
export interface ArtifactField {
  field: string;
  reference: string;
}

/**
 * artifactsOf lists the registry artifacts an object runs or loads: a Function's `spec.module` when
 * it is `oci://`, and its `spec.image` (container and VM runtime classes).
 */
export function artifactsOf(obj: ResourceObject | undefined): ArtifactField[] {
  if (!obj || obj.kind !== 'Function') return [];
  const spec = (obj.spec ?? {}) as { module?: unknown; image?: unknown };
  const out: ArtifactField[] = [];
  if (typeof spec.module === 'string' && spec.module.startsWith('oci://')) out.push({ field: 'spec.module', reference: spec.module });
  if (typeof spec.image === 'string' && spec.image.startsWith('oci://')) out.push({ field: 'spec.image', reference: spec.image });
  return out;
}

/** The external data provider name Gatekeeper templates ask for image verification results. */
export const IMAGE_VERIFICATION_PROVIDER = 'skiff-image-verification';

/** CheckedArtifact is one artifact of an object with the policies' decision on it. */
export type CheckedArtifact = ArtifactField & { decision: ImageDecision };

/** ImagePolicyAdmissionOptions: the API it watches and guards, and the supply chain it verifies with. */
export interface ImagePolicyAdmissionOptions {
  resources: ResourceService;
  verifier: ArtifactVerifier;
  logger: Logger;
  decisionLog?: DecisionLogger;
}

/**
 * ImagePolicyAdmission keeps the ImagePolicies, TrustRoots and (when served) Secrets in memory and
 * enforces the policies on every write of an object that names an artifact. Its `enforcer` is what
 * module pulls call again with the digest they are about to load.
 */
export class ImagePolicyAdmission {
  readonly hook: AdmissionHook;
  readonly enforcer: ImagePolicyEnforcer;
  private readonly policyInformer: Informer;
  private readonly trustInformer: Informer;
  private readonly secretInformer?: Informer;
  private compiled = new Map<string, CompiledImagePolicy>();
  private snapshot: CompiledImagePolicy[] = [];

  constructor(private readonly opts: ImagePolicyAdmissionOptions) {
    const kinds = opts.resources.kinds;
    const def = (name: string) => {
      const d = kinds.lookup(name);
      if (!d) throw new Error(`the ${name} kind is not registered`);
      return d;
    };
    this.policyInformer = new Informer(opts.resources, def('ImagePolicy'), opts.logger);
    this.trustInformer = new Informer(opts.resources, def('TrustRoot'), opts.logger);
    const secretDef = kinds.lookup('Secret');
    if (secretDef) this.secretInformer = new Informer(opts.resources, secretDef, opts.logger);
    const sync = (o: ResourceObject) => this.syncPolicy(o);
    this.policyInformer.addHandlers({ onAdd: sync, onUpdate: (_old, o) => sync(o), onDelete: (o) => this.dropPolicy(o) });
    this.enforcer = new ImagePolicyEnforcer({
      policies: () => this.snapshot,
      verifier: opts.verifier,
      decisionLog: opts.decisionLog,
      material: {
        secret: (ns, name, key) => secretValue(this.secretInformer?.get(`${ns}/${name}`), key),
        trustRoot: (name) => (name ? (this.trustInformer.get(name)?.spec as { trustedRoot?: unknown } | undefined)?.trustedRoot : undefined),
      },
    });
    this.hook = { name: 'image-policy', admit: (req) => this.admit(req) };
  }

  async start(): Promise<void> {
    await Promise.all([this.policyInformer.start(), this.trustInformer.start(), this.secretInformer?.start()]);
  }

  stop(): void {
    this.policyInformer.stop();
    this.trustInformer.stop();
    this.secretInformer?.stop();
  }

  /**
   * check runs the policies over every artifact an object names. The answer is kept per object for
   * the write being admitted, so the Gatekeeper path (external data) reuses this hook's verdicts.
   */
  check(obj: ResourceObject): Promise<CheckedArtifact[]> {
    let pending = this.checked.get(obj);
    if (!pending) {
      pending = this.checkNow(obj);
      this.checked.set(obj, pending);
    }
    return pending;
  }

  private readonly checked = new WeakMap<ResourceObject, Promise<CheckedArtifact[]>>();

  private async checkNow(obj: ResourceObject): Promise<CheckedArtifact[]> {
    const out: CheckedArtifact[] = [];
    for (const a of artifactsOf(obj)) {
      if (!this.enforcer.covers(a.reference)) continue;
      out.push({ ...a, decision: await this.enforcer.check(a.reference) });
    }
    return out;
  }

  /**
   * externalData answers Gatekeeper's `external_data({"provider": "skiff-image-verification", "keys":
   * [...]})` for an object under review: for each artifact reference the object names, its verdict
   * (`verified`, `digest`, the policies and authorities that passed or why not, verified attestation
   * predicates). A key the object does not name gets an error, and an artifact no ImagePolicy covers
   * is reported as not verified, with that reason.
   */
  async externalData(obj: ResourceObject): Promise<ExternalDataLookup | undefined> {
    const named = artifactsOf(obj);
    if (!named.length) return undefined;
    const checked = await this.check(obj);
    const byRef = new Map<string, unknown>();
    for (const a of named) {
      const c = checked.find((x) => x.reference === a.reference);
      const value = c
        ? { verified: c.decision.allowed && c.decision.policies.every((p) => p.satisfied), digest: c.decision.digest, policies: c.decision.policies, attestations: c.decision.attestations }
        : { verified: false, digest: digestOf(a.reference) ?? '', policies: [], attestations: [], reason: 'no ImagePolicy covers this artifact' };
      byRef.set(a.reference, value);
      byRef.set(a.reference.replace(/^oci:\/\//, ''), value);
    }
    return (provider, keys) => {
      if (provider !== IMAGE_VERIFICATION_PROVIDER) return undefined;
      const responses: Array<[unknown, unknown]> = [];
      const errors: Array<[unknown, string]> = [];
      for (const k of keys) {
        const v = typeof k === 'string' ? byRef.get(k) : undefined;
        if (v === undefined) errors.push([k, 'not an artifact the object under review names']);
        else responses.push([k, v]);
      }
      return { responses, errors, system_error: '' };
    };
  }

  private async admit(req: AdmissionRequest): Promise<AdmissionResponse> {
    if (req.operation === 'DELETE' || !req.object) return { allowed: true };
    const results = await this.check(req.object);
    const messages: string[] = [];
    const warnings: string[] = [];
    for (const r of results) {
      messages.push(...r.decision.messages.map((m) => `${r.field}: ${m}`));
      warnings.push(...r.decision.warnings.map((m) => `${r.field}: ${m}`));
    }
    return { allowed: messages.length === 0, messages, warnings };
  }

  private syncPolicy(obj: ResourceObject): void {
    try {
      this.compiled.set(cacheKey(obj), compileImagePolicy(obj));
    } catch (err) {
      // Admission refuses conditions that do not compile; one stored before that rule must still not
      // let anything through, so it stays as a policy no authority can satisfy.
      this.opts.logger.warn({ imagePolicy: obj.metadata.name, err: (err as Error).message }, 'ImagePolicy does not compile; it refuses every artifact it covers');
      const broken = compileImagePolicy({ ...obj, spec: { ...(obj.spec as object), authorities: [] } });
      broken.authorities = [{ name: 'invalid', attestations: [] }];
      this.compiled.set(cacheKey(obj), broken);
    }
    this.snapshot = [...this.compiled.values()];
  }

  private dropPolicy(obj: ResourceObject): void {
    this.compiled.delete(cacheKey(obj));
    this.snapshot = [...this.compiled.values()];
  }
}

/** secretValue reads one data key of a Secret (base64 in `data`), or its only key when none is named. */
function secretValue(secret: ResourceObject | undefined, key: string | undefined): string | undefined {
  const data = (secret as { data?: Record<string, string> } | undefined)?.data;
  if (!data) return undefined;
  const k = key ?? (Object.keys(data).length === 1 ? Object.keys(data)[0] : undefined);
  if (k === undefined || typeof data[k] !== 'string') return undefined;
  return Buffer.from(data[k]!, 'base64').toString('utf8');
}

/**
 * imagePolicyValidator checks at admission what the schema cannot: every attestation condition parses
 * and compiles (so a broken Rego condition is a 422 naming the field, not a silent refusal later).
 */
export function imagePolicyValidator(obj: ResourceObject): FieldError[] {
  const spec = (obj.spec ?? {}) as { authorities?: Array<{ attestations?: Array<{ policy?: { data?: string } }> }> };
  const errors: FieldError[] = [];
  spec.authorities?.forEach((a, i) =>
    a?.attestations?.forEach((att, j) => {
      if (!att?.policy?.data) return;
      const field = `spec.authorities[${i}].attestations[${j}].policy.data`;
      try {
        compileImagePolicy({ ...obj, spec: { images: [], authorities: [{ ...a, attestations: [att] }] } });
      } catch (err) {
        const msgs = err instanceof RegoErrors ? err.errors.map((e) => e.message) : [(err as Error).message];
        for (const m of msgs) errors.push({ field, message: m });
      }
    }),
  );
  return errors;
}

function digestOf(ref: string): string | undefined {
  return /@(sha256:[0-9a-f]{64})$/.exec(ref)?.[1];
}
