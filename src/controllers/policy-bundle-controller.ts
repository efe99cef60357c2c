import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Logger } from 'pino';

import { type Condition, setCondition } from '../api/kinds/conditions.js';
import type { ResourceObject } from '../api/kinds/types.js';
import type { ResourceService } from '../api/resources.js';
import { BundleError, type BundleLimits, DEFAULT_BUNDLE_LIMITS, type LoadedBundle, readBundle, rootContains, type VerificationOptions } from '../policy/bundle/index.js';
import type { ReplaySummary } from '../policy/index.js';
import { parseDurationMs } from '../util/quantity.js';

import { type BundleSource, BundleSourceError } from './bundle-source.js';
import type { PolicyController } from './policy-controller.js';
import { Controller, EventRecorder, Informer, writeStatus } from './runtime/index.js';

export interface PolicyBundleControllerOptions {
  resources: ResourceService;
  logger: Logger;
  /** the engine bundles are activated into */
  policies: PolicyController;
  source: BundleSource;
  /** where the active (and a held candidate) bundle of each PolicyBundle is kept across restarts: DATA_DIR/bundles */
  dir: string;
  limits?: Partial<BundleLimits>;
}

/** What the controller knows about one PolicyBundle between polls. */
interface State {
  generation?: number;
  etag?: string;
  sourceDigest?: string;
  /** digest of the active bundle file */
  active?: string;
  /** a downloaded revision that failed to verify, parse or compile: not tried again until it or the spec changes */
  failed?: string;
  restored?: boolean;
}

const DEFAULT_POLL_MS = 60_000;
const SIGNATURE_CODES = new Set(['bundle_signature_missing', 'bundle_signature_invalid', 'bundle_files_mismatch', 'bundle_key_invalid']);

/** A status change: the Ready and Verified conditions and fields to set. */
interface Report {
  /** absent: only observedGeneration is brought up to date */
  ready?: { status: 'True' | 'False'; reason: string; message: string };
  verified?: { status: 'True' | 'False'; reason: string; message: string };
  fields?: Record<string, unknown>;
  /** fields to drop (a candidate that is gone) */
  drop?: string[];
}

/**
 * PolicyBundleController keeps each PolicyBundle's newest good revision active: it polls the source
 * (If-None-Match for http, the manifest digest for OCI), verifies the signature with the configured
 * key, parses and checks the bundle, and offers it to the policy controller, which compiles it with
 * everything else, replays recent decisions and swaps it in atomically or holds it back. Whatever
 * fails, the previous revision keeps deciding and the Ready condition says why, naming the file.
 * The active bundle file is kept in the data directory so a restart serves it before the first poll.
 */
export class PolicyBundleController {
  readonly informer: Informer;
  readonly controller: Controller;
  private readonly state = new Map<string, State>();
  private readonly events: EventRecorder;
  private readonly limits: BundleLimits;

  constructor(private readonly opts: PolicyBundleControllerOptions) {
    this.limits = { ...DEFAULT_BUNDLE_LIMITS, ...opts.limits };
    this.informer = new Informer(opts.resources, opts.resources.kind('PolicyBundle'), opts.logger);
    this.events = new EventRecorder(opts.resources, 'policybundle-controller', opts.logger);
    this.controller = new Controller({ name: 'policybundles', logger: opts.logger, keys: () => this.informer.list().map((o) => o.metadata.name), reconcile: (key) => this.reconcile(key), workers: 2, resyncMs: 300_000 });
    this.informer.addHandlers({
      onAdd: (o) => this.controller.enqueue(o.metadata.name),
      onUpdate: (a, b) => a.metadata.generation !== b.metadata.generation && this.controller.enqueue(b.metadata.name),
      onDelete: (o) => this.controller.enqueue(o.metadata.name),
    });
  }

  async start(): Promise<void> {
    await this.informer.start();
    this.controller.start();
  }

  async stop(): Promise<void> {
    this.informer.stop();
    await this.controller.stop();
  }

  /** candidatePath is where a held-back revision of a bundle is kept (what `skiff policy replay` replays). */
  static candidatePath(dir: string, name: string): string {
    return join(dir, name, 'candidate.tar.gz');
  }

  private async reconcile(name: string): Promise<{ requeueAfterMs: number } | void> {
    const obj = this.informer.get(name);
    if (!obj) {
      this.state.delete(name);
      await this.opts.policies.removeBundle(name);
      rmSync(join(this.opts.dir, name), { recursive: true, force: true });
      return;
    }
    const pollMs = parseDurationMs(String(obj.spec.pollingInterval ?? '')) ?? DEFAULT_POLL_MS;
    let st = this.state.get(name);
    if (!st) this.state.set(name, (st = {}));
    if (st.generation !== obj.metadata.generation) {
      // a new spec (key, roots, source, limits) looks at the source afresh
      st.generation = obj.metadata.generation;
      st.etag = undefined;
      st.sourceDigest = undefined;
      st.failed = undefined;
    }
    let verification: VerificationOptions | undefined;
    try {
      verification = await this.verification(obj);
    } catch (err) {
      await this.report(obj, { ready: { status: 'False', reason: 'KeyUnavailable', message: this.keeps(name, (err as Error).message) }, verified: { status: 'False', reason: 'KeyUnavailable', message: (err as Error).message } });
      return { requeueAfterMs: pollMs };
    }
    if (!st.restored) {
      st.restored = true;
      await this.restore(obj, st, verification);
    }
    let fetched;
    try {
      fetched = await this.opts.source.fetch(String(obj.spec.source), { etag: st.etag, sourceDigest: st.sourceDigest }, parseDurationMs(String(obj.spec.timeout ?? '')) ?? undefined);
    } catch (err) {
      if (!(err instanceof BundleSourceError)) throw err;
      await this.report(obj, { ready: { status: 'False', reason: err.reason, message: this.keeps(name, err.message) } });
      return { requeueAfterMs: pollMs };
    }
    // a new spec whose source still serves the active revision: say the spec was seen
    const observed = () => (obj.status?.observedGeneration !== obj.metadata.generation ? this.report(obj, {}) : undefined);
    if (fetched.unchanged) {
      await observed();
      return { requeueAfterMs: pollMs };
    }
    const bytes = fetched.bytes;
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    st.etag = fetched.etag;
    st.sourceDigest = fetched.sourceDigest;
    if (digest === st.active || digest === st.failed) {
      await observed();
      return { requeueAfterMs: pollMs };
    }
    await this.consider(obj, st, bytes, digest, verification, { etag: fetched.etag, sourceDigest: fetched.sourceDigest });
    return { requeueAfterMs: pollMs };
  }

  /** consider reads, checks and proposes one downloaded revision, and reports the outcome. */
  private async consider(obj: ResourceObject, st: State, bytes: Uint8Array, digest: string, verification: VerificationOptions | undefined, source: { etag?: string; sourceDigest?: string }): Promise<void> {
    const name = obj.metadata.name;
    let loaded: LoadedBundle;
    try {
      loaded = await readBundle(bytes, { name, verification, limits: this.limits });
      this.checkRoots(obj, loaded);
    } catch (err) {
      if (!(err instanceof BundleError)) throw err;
      st.failed = digest;
      const signature = SIGNATURE_CODES.has(err.code);
      await this.report(obj, {
        ready: { status: 'False', reason: signature ? 'VerificationFailed' : err.code === 'bundle_roots' ? 'RootsNotAllowed' : 'InvalidBundle', message: this.keeps(name, err.message) },
        ...(signature ? { verified: { status: 'False', reason: 'VerificationFailed', message: err.message } } : {}),
        fields: { candidate: { digest } },
      });
      void this.events.record(obj, 'Warning', 'BundleRefused', err.message);
      return;
    }
    const verified: Report['verified'] = loaded.signature
      ? { status: 'True', reason: 'SignatureVerified', message: `signed with ${loaded.signature.algorithm}${loaded.signature.keyId ? ` by key ${loaded.signature.keyId}` : ''}; every file matches its signed digest` }
      : { status: 'False', reason: 'Unsigned', message: verification ? 'the bundle carries no signature (spec.verification.required is false)' : 'no verification key is configured and the bundle is unsigned' };
    const result = await this.opts.policies.proposeBundle({
      name,
      revision: loaded.manifest.revision,
      digest,
      roots: loaded.manifest.roots,
      modules: loaded.modules.map((m) => ({ file: m.file, text: m.text, regoVersion: m.regoVersion })),
      data: loaded.data,
      maxChangedDecisions: obj.spec.rollout?.maxChangedDecisions as number | undefined,
    });
    const candidate = { revision: loaded.manifest.revision, digest };
    if (result.outcome === 'failed') {
      st.failed = digest;
      await this.report(obj, { ready: { status: 'False', reason: 'CompileError', message: this.keeps(name, `revision ${JSON.stringify(loaded.manifest.revision)} does not compile: ${result.errors.join('; ')}`) }, verified, fields: { candidate } });
      void this.events.record(obj, 'Warning', 'BundleRefused', result.errors.join('; '));
      return;
    }
    if (result.outcome === 'held') {
      this.persist(name, 'candidate.tar.gz', bytes);
      await this.report(obj, { ready: { status: 'False', reason: 'RolloutHeld', message: this.keeps(name, `revision ${JSON.stringify(loaded.manifest.revision)} is held back: ${result.replay.changed} of ${result.replay.evaluated} replayed decisions would change (spec.rollout.maxChangedDecisions: ${obj.spec.rollout?.maxChangedDecisions}); skiff policy replay ${name} lists them`) }, verified, fields: { candidate, replay: result.replay } });
      return;
    }
    this.persist(name, 'active.tar.gz', bytes);
    rmSync(PolicyBundleController.candidatePath(this.opts.dir, name), { force: true });
    st.active = digest;
    st.failed = undefined;
    await this.report(obj, {
      ready: { status: 'True', reason: 'Activated', message: `revision ${JSON.stringify(loaded.manifest.revision)} is active: ${loaded.modules.length} module(s), roots ${loaded.manifest.roots.map((r) => JSON.stringify(r)).join(', ')}` },
      verified,
      fields: { revision: loaded.manifest.revision, digest, lastActivated: new Date().toISOString(), ...(source.etag ? { etag: source.etag } : {}), ...(source.sourceDigest ? { sourceDigest: source.sourceDigest } : {}), ...(result.replay ? { replay: result.replay as ReplaySummary } : {}) },
      drop: ['candidate', ...(result.replay ? [] : ['replay']), ...(source.etag ? [] : ['etag']), ...(source.sourceDigest ? [] : ['sourceDigest'])],
    });
    void this.events.record(obj, 'Normal', 'BundleActivated', `revision ${JSON.stringify(loaded.manifest.revision)} (${digest}) is active`);
  }

  /** restore activates the bundle kept from before a restart (checked against today's key), without replay. */
  private async restore(obj: ResourceObject, st: State, verification: VerificationOptions | undefined): Promise<void> {
    const path = join(this.opts.dir, obj.metadata.name, 'active.tar.gz');
    if (!existsSync(path)) return;
    try {
      const bytes = readFileSync(path);
      const loaded = await readBundle(bytes, { name: obj.metadata.name, verification, limits: this.limits });
      this.checkRoots(obj, loaded);
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      const r = await this.opts.policies.proposeBundle({ name: obj.metadata.name, revision: loaded.manifest.revision, digest, roots: loaded.manifest.roots, modules: loaded.modules, data: loaded.data, restore: true });
      if (r.outcome === 'activated') st.active = digest;
    } catch (err) {
      this.opts.logger.warn({ bundle: obj.metadata.name, err: (err as Error).message }, 'the bundle kept from before the restart was not restored');
    }
  }

  /** checkRoots refuses manifest roots outside spec.roots (when given). */
  private checkRoots(obj: ResourceObject, b: LoadedBundle): void {
    const allowed = obj.spec.roots as string[] | undefined;
    if (!allowed) return;
    const norm = allowed.map((r) => r.replace(/^\/+|\/+$/g, ''));
    for (const r of b.manifest.roots) {
      if (!norm.some((a) => rootContains(a, r))) throw new BundleError('bundle_roots', b.name, '.manifest', `root ${JSON.stringify(r)} is outside spec.roots (${norm.map((a) => JSON.stringify(a)).join(', ')})${r === '' ? '; a manifest without roots claims all of data' : ''}`);
    }
  }

  private keeps(name: string, message: string): string {
    const active = this.opts.policies.activeBundle(name);
    return active ? `${message}; revision ${JSON.stringify(active.revision)} keeps deciding` : `${message}; no revision of this bundle is active`;
  }

  /** verification reads the key from spec.verification (inline PEM or a Secret). */
  private async verification(obj: ResourceObject): Promise<VerificationOptions | undefined> {
    const v = obj.spec.verification as { publicKey?: string; secretRef?: { name: string; namespace: string; key?: string }; keyId?: string; scope?: string; required?: boolean } | undefined;
    if (!v) return undefined;
    let pem = v.publicKey;
    if (!pem && v.secretRef) {
      const ref = v.secretRef;
      let secret: ResourceObject;
      try {
        secret = await this.opts.resources.get(this.opts.resources.kind('Secret'), ref.namespace, ref.name);
      } catch (err) {
        throw new Error(`spec.verification.secretRef: cannot read Secret ${ref.namespace}/${ref.name} (${(err as Error).message})`);
      }
      const data = (secret.data ?? {}) as Record<string, string>;
      const strings = (secret.stringData ?? {}) as Record<string, string>;
      const keys = [...Object.keys(data), ...Object.keys(strings)];
      const key = ref.key ?? (keys.includes('publicKey') ? 'publicKey' : keys.length === 1 ? keys[0] : undefined);
      if (!key || (data[key] === undefined && strings[key] === undefined)) throw new Error(`spec.verification.secretRef: Secret ${ref.namespace}/${ref.name} has no key ${key ?? '(give secretRef.key)'}`);
      pem = strings[key] ?? Buffer.from(data[key]!, 'base64').toString('utf8');
    }
    return { publicKey: pem!, ...(v.keyId ? { keyId: v.keyId } : {}), ...(v.scope ? { scope: v.scope } : {}), required: v.required !== false };
  }

  private persist(name: string, file: string, bytes: Uint8Array): void {
    const dir = join(this.opts.dir, name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `.${file}.${process.pid}`);
    writeFileSync(tmp, bytes, { mode: 0o600 });
    renameSync(tmp, join(dir, file));
  }

  /** report writes the conditions and fields onto the newest stored status (a conflicting write is retried on a fresh read). */
  private async report(obj: ResourceObject, r: Report): Promise<void> {
    await writeStatus(this.opts.resources, this.opts.resources.kind('PolicyBundle'), obj, (current, old) => {
      const next: Record<string, unknown> = { ...old, ...r.fields, observedGeneration: current.metadata.generation };
      for (const k of r.drop ?? []) delete next[k];
      let conditions = (old.conditions as Condition[] | undefined) ?? [];
      if (r.ready) conditions = setCondition(conditions, { type: 'Ready', ...r.ready, observedGeneration: current.metadata.generation });
      if (r.verified) conditions = setCondition(conditions, { type: 'Verified', ...r.verified, observedGeneration: current.metadata.generation });
      next.conditions = conditions;
      return next;
    });
  }
}
