import type { Logger } from 'pino';

import { ApiError } from '../../api/errors.js';
import { type Condition, setCondition } from '../../api/kinds/conditions.js';
import { groupOf, type KindDefinition, type ResourceObject } from '../../api/kinds/types.js';
import { deepEqual } from '../../api/patch/json-value.js';
import type { ResourceService } from '../../api/resources.js';
import { cacheKey, Controller, EventRecorder, Informer } from '../../controllers/runtime/index.js';
import { SkiffError } from '../../util/errors.js';
import { parseDurationMs } from '../../util/quantity.js';
import type { ArtifactReader } from '../artifact.js';

import { SyncApplyError } from './errors.js';
import { changedFields, healthOf } from './health.js';
import type { BuildLimits } from './kustomize.js';
import { type BlobSink, buildPlan, CONSTRAINTS_GROUP, groupVersion, kindRank, parseInventoryId, type PlannedObject, ROLLOUT_ANNOTATION, SYNC_MANAGER, SYNC_NAME_LABEL, SYNC_NAMESPACE_LABEL } from './plan.js';

/** The "reconcile now" annotation, on a Sync or on its GitRepository. */
export const RECONCILE_AT_ANNOTATION = 'skiff.dev/reconcile-at';

const DEFAULT_INTERVAL_MS = 5 * 60_000;
const DEFAULT_TIMEOUT_MS = 2 * 60_000;
/** How soon a Sync waiting for a dependency or a source looks again (dependencies also wake it). */
const WAITING_MS = 5_000;
/** How long a constraint kind may take to appear once its template is applied. */
const CONSTRAINT_KIND_WAIT_MS = 10_000;
const OWNED_CHANGE_DELAY_MS = 200;

export interface SyncControllerOptions {
  resources: ResourceService;
  logger: Logger;
  /** Where the source's artifacts are read (the source controller's store; `MemoryArtifacts` in tests). */
  artifacts: ArtifactReader;
  /** The server's blob store, for modules committed beside the manifests. */
  blobs?: BlobSink;
  /** The clock, for status times. */
  now?: () => Date;
  /** How a wait for health or for a constraint kind pauses between looks; injectable so tests need not sleep. */
  sleep?: (ms: number) => Promise<void>;
  /** Between two looks at the applied objects' health. */
  healthPollMs?: number;
  limits?: BuildLimits;
  workers?: number;
  /** Watch the kinds Syncs apply, so that drift is corrected at once (default true); otherwise at each interval. */
  watchOwned?: boolean;
}

interface Inventory {
  entries: Array<{ id: string; v: string }>;
}

/** What one reconcile decided, written to status at its end. */
interface Outcome {
  fields: Record<string, unknown>;
  ready?: Omit<Condition, 'type' | 'lastTransitionTime'>;
  healthy?: Omit<Condition, 'type' | 'lastTransitionTime'>;
}

/**
 * SyncController applies each Sync's revision: the objects under spec.path of its GitRepository's
 * artifact, dry-run first so that a revision is applied whole or not at all, then pruned, checked for
 * health and rolled back to the last healthy revision when it fails. Between revisions it applies the
 * same objects again at every interval, which is how hand edits are found and reverted.
 */
export class SyncController {
  readonly informer: Informer;
  readonly controller: Controller;
  private sources?: Informer;
  private readonly events: EventRecorder;
  private readonly now: () => Date;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Informers of the kinds Syncs apply, by GROUP/PLURAL: a change to an owned object wakes its Sync at once. */
  private readonly owned = new Map<string, Informer>();
  private stopped = false;
  /** Syncs deleted with prune on, whose objects are still to be deleted (kept in memory: a restart in between leaves them). */
  private readonly deleted = new Map<string, ResourceObject>();
  /** The last applied plan per Sync, so that a drift pass does not rebuild it (and store its modules) again. */
  private readonly plans = new Map<string, { digest: string; generation: number; objects: PlannedObject[] }>();

  constructor(private readonly opts: SyncControllerOptions) {
    const { resources, logger } = opts;
    this.now = opts.now ?? (() => new Date());
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.events = new EventRecorder(resources, 'sync-controller', logger);
    this.informer = new Informer(resources, resources.kind('Sync'), logger);
    this.controller = new Controller({ name: 'syncs', logger, reconcile: (k) => this.reconcile(k), keys: () => this.informer.list().map(cacheKey), workers: opts.workers ?? 4, resyncMs: 60_000 });
    this.informer.addHandlers({
      onAdd: (o) => this.controller.enqueue(cacheKey(o)),
      onUpdate: (old, o) => {
        if (old.metadata.generation !== o.metadata.generation || reconcileAt(old) !== reconcileAt(o)) this.controller.enqueue(cacheKey(o));
        if (!deepEqual(old.status?.conditions, o.status?.conditions) || old.status?.lastAppliedRevision !== o.status?.lastAppliedRevision) this.wakeDependents(o);
      },
      onDelete: (o) => {
        this.plans.delete(cacheKey(o));
        if (o.spec?.prune && (o.status?.inventory as Inventory | undefined)?.entries?.length) {
          this.deleted.set(cacheKey(o), o);
          this.controller.enqueue(cacheKey(o));
        }
        this.wakeDependents(o);
      },
    });
  }

  async start(): Promise<void> {
    const def = this.opts.resources.kinds.lookup('GitRepository');
    if (def) {
      this.sources = new Informer(this.opts.resources, def, this.opts.logger);
      const wake = (o: ResourceObject) => this.wakeConsumers(o);
      this.sources.addHandlers({
        onAdd: wake,
        onUpdate: (old, o) => {
          if (!deepEqual(old.status?.artifact, o.status?.artifact) || reconcileAt(old) !== reconcileAt(o)) wake(o);
        },
        onDelete: wake,
      });
      await this.sources.start();
    } else this.opts.logger.warn('the server does not serve GitRepository; Syncs wait for their source');
    await this.informer.start();
    this.controller.start();
  }

  /** artifactDigests names the artifacts Syncs still need: the applied and last healthy revisions (rollback reads the latter). */
  *artifactDigests(): Iterable<string> {
    for (const o of this.informer.list()) {
      for (const d of [o.status?.lastAppliedDigest, o.status?.lastHealthyDigest]) if (typeof d === 'string' && d) yield d;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const i of this.owned.values()) i.stop();
    this.sources?.stop();
    this.informer.stop();
    await this.controller.stop();
  }

  /**
   * watchOwned starts (once per kind) an informer of a kind a plan applies, so that a hand edit or a
   * deletion of an owned object is corrected within moments rather than at the next interval. Status
   * writes by other controllers leave generation, labels and annotations alone and wake nothing.
   */
  private watchOwned(plan: PlannedObject[]): void {
    if (this.stopped || this.opts.watchOwned === false) return;
    for (const p of plan) {
      const def = this.defOf(p);
      if (!def) continue;
      const k = `${groupOf(def)}/${def.plural}`;
      if (this.owned.has(k)) continue;
      const inf = new Informer(this.opts.resources, def, this.opts.logger);
      inf.addHandlers({
        onUpdate: (old, o) => {
          if (old.metadata.generation !== o.metadata.generation || !deepEqual(old.metadata.labels, o.metadata.labels) || !deepEqual(old.metadata.annotations, o.metadata.annotations)) this.wakeOwner(o);
        },
        onDelete: (o) => this.wakeOwner(o),
      });
      this.owned.set(k, inf);
      inf.start().catch((err: Error) => this.opts.logger.warn({ kind: def.kind, err: err.message }, 'watching applied objects failed; drift is found at each interval'));
    }
  }

  private wakeOwner(o: ResourceObject): void {
    const labels = o.metadata.labels ?? {};
    const name = labels[SYNC_NAME_LABEL];
    const ns = labels[SYNC_NAMESPACE_LABEL];
    // Shortly after, so that a burst of changes (a Sync's own apply) costs one pass.
    if (name && ns && this.informer.get(`${ns}/${name}`)) this.controller.queue.addAfter(`${ns}/${name}`, OWNED_CHANGE_DELAY_MS);
  }

  private wakeConsumers(src: ResourceObject): void {
    for (const s of this.informer.list()) {
      const ref = s.spec?.sourceRef ?? {};
      if (ref.kind === src.kind && ref.name === src.metadata.name && (ref.namespace ?? s.metadata.namespace) === src.metadata.namespace) this.controller.enqueue(cacheKey(s));
    }
  }

  private wakeDependents(dep: ResourceObject): void {
    for (const s of this.informer.list()) {
      const deps = (s.spec?.dependsOn ?? []) as Array<{ name: string; namespace?: string }>;
      if (deps.some((d) => d.name === dep.metadata.name && (d.namespace ?? s.metadata.namespace) === dep.metadata.namespace)) this.controller.enqueue(cacheKey(s));
    }
  }

  private sourceOf(sync: ResourceObject): ResourceObject | undefined {
    const ref = sync.spec?.sourceRef ?? {};
    return this.sources?.get(`${ref.namespace ?? sync.metadata.namespace}/${ref.name}`);
  }

  /** readyAtSource: Ready, and applied at the revision its source has now. */
  private readyAtSource(sync: ResourceObject): boolean {
    const ready = (sync.status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready');
    if (ready?.status !== 'True' || sync.status?.observedGeneration !== sync.metadata.generation) return false;
    const art = this.sourceOf(sync)?.status?.artifact;
    return !!art && sync.status?.lastAppliedRevision === art.revision;
  }

  private async reconcile(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const cached = this.informer.get(key);
    // Read as stored now: the informer may not yet show the status the previous pass wrote, and
    // whether a revision was attempted, or what was healthy, is decided from that status.
    const sync = cached && (await this.opts.resources.tryGet(this.informer.def, cached.metadata.namespace, cached.metadata.name));
    if (!sync) {
      const gone = this.deleted.get(key);
      this.deleted.delete(key);
      // A deleted Sync with prune on takes its objects with it, as Flux's garbage collection does.
      if (gone) await this.prune(gone, gone.status?.inventory as Inventory | undefined, []);
      return;
    }
    const spec = sync.spec ?? {};
    const interval = parseDurationMs(String(spec.interval ?? '')) ?? DEFAULT_INTERVAL_MS;
    const st = sync.status ?? {};
    if (spec.suspend) {
      await this.writeStatus(sync, { fields: {}, ready: { status: 'False', reason: 'Suspended', message: 'spec.suspend is true: nothing is applied' } });
      return;
    }
    for (const d of (spec.dependsOn ?? []) as Array<{ name: string; namespace?: string }>) {
      const dk = `${d.namespace ?? sync.metadata.namespace}/${d.name}`;
      const dep = this.informer.get(dk);
      if (!dep || !this.readyAtSource(dep)) {
        await this.writeStatus(sync, { fields: {}, ready: { status: 'False', reason: 'DependencyNotReady', message: `waiting for Sync ${dk} to be Ready at its source's current revision` } });
        return { requeueAfterMs: Math.min(interval, WAITING_MS) };
      }
    }
    const ref = spec.sourceRef ?? {};
    const src = this.sourceOf(sync);
    if (!src) {
      await this.writeStatus(sync, { fields: {}, ready: { status: 'False', reason: 'SourceNotFound', message: `${ref.kind} ${ref.namespace ?? sync.metadata.namespace}/${ref.name} does not exist (yet)` } });
      return { requeueAfterMs: Math.min(interval, WAITING_MS) };
    }
    const art = src.status?.artifact as { revision?: string; digest?: string } | undefined;
    if (!art?.digest || !art.revision) {
      await this.writeStatus(sync, { fields: {}, ready: { status: 'False', reason: 'ArtifactNotReady', message: `${ref.kind} ${src.metadata.namespace}/${src.metadata.name} has no artifact yet` } });
      return { requeueAfterMs: Math.min(interval, WAITING_MS) };
    }
    const at = reconcileAt(sync) ?? '';
    const attempted = st.lastAttemptedRevision === art.revision && st.lastAttemptedDigest === art.digest && st.lastAttemptedGeneration === sync.metadata.generation && (st.lastHandledReconcileAt ?? '') === at;
    const out = attempted ? await this.correctDrift(sync) : await this.attempt(sync, { revision: art.revision, digest: art.digest });
    if (!attempted) out.fields = { ...out.fields, lastAttemptedRevision: art.revision, lastAttemptedDigest: art.digest, lastAttemptedGeneration: sync.metadata.generation, lastHandledReconcileAt: at || undefined };
    await this.writeStatus(sync, out);
    return { requeueAfterMs: interval };
  }

  private limitsOf(sync: ResourceObject): number {
    return parseDurationMs(String(sync.spec?.timeout ?? '')) ?? DEFAULT_TIMEOUT_MS;
  }

  private async plan(sync: ResourceObject, digest: string): Promise<PlannedObject[]> {
    const files = await this.opts.artifacts.read(digest);
    const kinds = this.opts.resources.kinds;
    return buildPlan({
      files,
      path: sync.spec?.path,
      sync: { name: sync.metadata.name, namespace: sync.metadata.namespace! },
      targetNamespace: sync.spec?.targetNamespace,
      scope: (apiVersion, kind) => kinds.byApiVersionKind(apiVersion, kind)?.namespaced,
      blobs: this.opts.blobs,
      limits: this.opts.limits,
    });
  }

  /** attempt applies a new revision (or spec, or a reconcile-at request) whole, or nothing of it. */
  private async attempt(sync: ResourceObject, rev: { revision: string; digest: string }): Promise<Outcome> {
    const key = cacheKey(sync);
    const st = sync.status ?? {};
    const deadline = Date.now() + this.limitsOf(sync);
    let plan: PlannedObject[];
    try {
      plan = await this.plan(sync, rev.digest);
    } catch (err) {
      if (!(err instanceof SkiffError) || err.code === 'artifact_missing') throw err;
      const message = `revision ${rev.revision}: ${err.message}`;
      await this.events.record(sync, 'Warning', 'ApplyFailed', truncate(message));
      return failure({}, 'BuildFailed', message);
    }
    let partial = false;
    try {
      partial = await this.applyAll(plan, true, deadline, () => (partial = true));
    } catch (err) {
      if (!(err instanceof SyncApplyError)) throw err;
      const message = `revision ${rev.revision}: ${err.message}`;
      await this.events.record(sync, 'Warning', 'ApplyFailed', truncate(message));
      const back = partial ? await this.rollback(sync, `${rev.revision} was refused`, plan) : undefined;
      return failure(back ?? {}, back ? 'RolledBack' : 'ApplyFailed', message);
    }
    const pruned = await this.prune(sync, st.inventory as Inventory | undefined, plan);
    const fields: Record<string, unknown> = {
      lastAppliedRevision: rev.revision,
      lastAppliedDigest: rev.digest,
      inventory: { entries: plan.map((p) => ({ id: p.id, v: p.v })) },
      // What applying this revision pruned: a second pass over the same revision (reconcile-at) adds to it
      // rather than hiding what the first pass removed.
      lastPruned: rev.revision === st.lastAppliedRevision ? Number(st.lastPruned ?? 0) + pruned.length : pruned.length,
    };
    this.plans.set(key, { digest: rev.digest, generation: sync.metadata.generation ?? 1, objects: plan });
    this.watchOwned(plan);
    await this.events.record(sync, 'Normal', 'Applied', `applied revision ${rev.revision}: ${plan.length} objects${pruned.length ? `, ${pruned.length} pruned` : ''}`);
    if (sync.spec?.wait) {
      const health = await this.waitHealthy(plan, deadline);
      if (!health.healthy) {
        const message = `revision ${rev.revision} did not become healthy in time: ${health.message}`;
        await this.events.record(sync, 'Warning', 'HealthCheckFailed', truncate(message));
        const back = await this.rollback(sync, `${rev.revision} did not become healthy`, plan);
        return { ...failure(back ? { ...fields, ...back } : fields, back ? 'RolledBack' : 'HealthCheckFailed', message), healthy: { status: 'False', reason: 'HealthCheckFailed', message: truncate(health.message) } };
      }
    }
    return {
      fields: { ...fields, lastHealthyRevision: rev.revision, lastHealthyDigest: rev.digest, lastFailure: undefined, drift: { ...(st.drift ?? {}), count: 0, objects: [] } },
      ready: { status: 'True', reason: 'Applied', message: `applied revision ${rev.revision}` },
      healthy: sync.spec?.wait ? { status: 'True', reason: 'Healthy', message: `every object of ${rev.revision} is Ready` } : undefined,
    };
  }

  /**
   * rollback applies the last healthy revision's objects again, pruning what the failed one added, and
   * returns the status fields that say so; undefined when rollback is off or there is nothing to return to.
   */
  private async rollback(sync: ResourceObject, reason: string, failed?: PlannedObject[]): Promise<Record<string, unknown> | undefined> {
    const st = sync.status ?? {};
    if (sync.spec?.rollback?.enabled === false || !st.lastHealthyDigest || !st.lastHealthyRevision) return undefined;
    const key = cacheKey(sync);
    let plan: PlannedObject[];
    try {
      plan = await this.plan(sync, st.lastHealthyDigest);
      // A rollback gets a time budget of its own: the failed attempt may have used up spec.timeout.
      await this.applyAll(plan, false, Date.now() + this.limitsOf(sync));
    } catch (err) {
      await this.events.record(sync, 'Warning', 'ApplyFailed', truncate(`rolling back to ${st.lastHealthyRevision} failed: ${(err as Error).message}`));
      return undefined;
    }
    const previous: Inventory = { entries: [...((st.inventory as Inventory | undefined)?.entries ?? []), ...(failed ?? []).map((p) => ({ id: p.id, v: p.v }))] };
    const pruned = await this.prune(sync, previous, plan);
    this.plans.set(key, { digest: st.lastHealthyDigest, generation: sync.metadata.generation ?? 1, objects: plan });
    await this.events.record(sync, 'Warning', 'RolledBack', truncate(`rolled back to ${st.lastHealthyRevision}: ${reason}`));
    return { lastAppliedRevision: st.lastHealthyRevision, lastAppliedDigest: st.lastHealthyDigest, inventory: { entries: plan.map((p) => ({ id: p.id, v: p.v })) }, lastPruned: pruned.length };
  }

  /** correctDrift applies the applied revision again; every object the apply changed had drifted. */
  private async correctDrift(sync: ResourceObject): Promise<Outcome> {
    const st = sync.status ?? {};
    const failed = st.lastFailure as { reason: string; message: string } | undefined;
    if (!st.lastAppliedDigest) return failed ? { fields: {}, ready: { status: 'False', ...failed } } : { fields: {} };
    const key = cacheKey(sync);
    let cached = this.plans.get(key);
    if (!cached || cached.digest !== st.lastAppliedDigest || cached.generation !== sync.metadata.generation) {
      cached = { digest: st.lastAppliedDigest, generation: sync.metadata.generation ?? 1, objects: await this.plan(sync, st.lastAppliedDigest) };
      this.plans.set(key, cached);
      this.watchOwned(cached.objects);
    }
    const drifted: Array<{ object: string; fields: string[] }> = [];
    let refused: SyncApplyError | undefined;
    for (const p of cached.objects) {
      const def = this.defOf(p);
      if (!def) continue;
      const ns = def.namespaced ? p.object.metadata.namespace : undefined;
      const live = await this.opts.resources.tryGet(def, ns, p.object.metadata.name);
      try {
        const res = await this.opts.resources.apply(def, ns, p.object.metadata.name, configFor(p.object, live), { fieldManager: SYNC_MANAGER, force: true });
        if (!live) drifted.push({ object: describe(p), fields: ['(deleted)'] });
        else if (res.object.metadata.resourceVersion !== live.metadata.resourceVersion) drifted.push({ object: describe(p), fields: changedFields(live, res.object) });
      } catch (err) {
        refused ??= refusal(p, err);
      }
    }
    for (const d of drifted) await this.events.record(sync, 'Warning', 'DriftCorrected', truncate(`${d.object} drifted (${d.fields.join(', ')}); applied ${st.lastAppliedRevision} again`));
    const drift = drifted.length ? { count: drifted.length, objects: drifted.slice(0, 50), lastCorrected: this.now().toISOString() } : { ...(st.drift ?? {}), count: 0, objects: [] };
    const out: Outcome = { fields: { drift } };
    if (refused) {
      await this.events.record(sync, 'Warning', 'ApplyFailed', truncate(`applying ${st.lastAppliedRevision} again: ${refused.message}`));
      out.ready = { status: 'False', reason: 'DriftCorrectionFailed', message: truncate(refused.message) };
    } else if (failed) out.ready = { status: 'False', reason: failed.reason, message: failed.message };
    else out.ready = { status: 'True', reason: 'Applied', message: `applied revision ${st.lastAppliedRevision}` };
    if (sync.spec?.wait) {
      const health = await this.health(cached.objects);
      out.healthy = health.healthy ? { status: 'True', reason: 'Healthy', message: `every object of ${st.lastAppliedRevision} is Ready` } : { status: 'False', reason: 'Progressing', message: truncate(health.message) };
    }
    return out;
  }

  private defOf(p: PlannedObject): KindDefinition | undefined {
    return this.opts.resources.kinds.byApiVersionKind(p.object.apiVersion, p.object.kind);
  }

  /**
   * applyAll applies a plan in kind order. With `dryRunFirst`, every object is dry-run before any is
   * written; constraints whose kinds a ConstraintTemplate of the plan defines are dry-run once their
   * templates are applied (`onPartial` is called then: something is written before the whole is known
   * to pass). Returns whether something was written before a refusal could happen.
   */
  private async applyAll(plan: PlannedObject[], dryRunFirst: boolean, deadline: number, onPartial?: () => void): Promise<boolean> {
    const { resources } = this.opts;
    const deferred = plan.filter((p) => !this.defOf(p));
    const templates = plan.filter((p) => p.object.kind === 'ConstraintTemplate');
    for (const p of deferred) {
      const defined = groupVersion(p.object.apiVersion).group === CONSTRAINTS_GROUP && templates.some((t) => t.object.spec?.crd?.spec?.names?.kind === p.object.kind);
      if (!defined) throw new SyncApplyError(`${describe(p)} (${p.file}:${p.line}): the server does not serve ${p.object.apiVersion} ${p.object.kind}`, describe(p), p.file);
    }
    const write = async (p: PlannedObject, dryRun: boolean) => {
      if (Date.now() > deadline) throw new SyncApplyError(`applying took longer than spec.timeout; stopped before ${describe(p)} (${p.file}:${p.line})`, describe(p), p.file);
      const def = this.defOf(p);
      if (!def) throw new SyncApplyError(`${describe(p)} (${p.file}:${p.line}): the server does not serve ${p.object.apiVersion} ${p.object.kind}`, describe(p), p.file);
      const ns = def.namespaced ? p.object.metadata.namespace : undefined;
      const live = await resources.tryGet(def, ns, p.object.metadata.name);
      const owner = ownerOf(live);
      const mine = ownerOf(p.object);
      // Two Syncs applying one object would undo each other at every pass; the first keeps it.
      if (owner && owner !== mine) throw new SyncApplyError(`${describe(p)} (${p.file}:${p.line}) is already applied by Sync ${owner}; remove it from one of the two`, describe(p), p.file);
      try {
        await resources.apply(def, ns, p.object.metadata.name, configFor(p.object, live), { fieldManager: SYNC_MANAGER, force: true, dryRun });
      } catch (err) {
        throw refusal(p, err);
      }
    };
    let partial = false;
    if (dryRunFirst) {
      for (const p of plan) if (this.defOf(p)) await write(p, true);
      if (deferred.length) {
        partial = true;
        onPartial?.();
        for (const t of templates) await write(t, false);
        const end = Date.now() + CONSTRAINT_KIND_WAIT_MS;
        while (deferred.some((p) => !this.defOf(p)) && Date.now() < end) await this.sleep(50);
        for (const p of deferred) await write(p, true);
      }
    }
    for (const p of plan) {
      if (!dryRunFirst && !this.defOf(p)) {
        const end = Date.now() + CONSTRAINT_KIND_WAIT_MS;
        while (!this.defOf(p) && Date.now() < end) await this.sleep(50);
      }
      await write(p, false);
      if (!partial) {
        partial = true;
        onPartial?.();
      }
    }
    return partial;
  }

  /** prune deletes what the previous inventory has and the plan does not, when spec.prune is set; only objects carrying this Sync's labels. */
  private async prune(sync: ResourceObject, previous: Inventory | undefined, plan: PlannedObject[]): Promise<string[]> {
    if (!sync.spec?.prune || !previous?.entries?.length) return [];
    const keep = new Set(plan.map((p) => p.id));
    const gone = previous.entries.filter((e) => !keep.has(e.id)).map((e) => ({ e, ref: parseInventoryId(e.id) }));
    gone.sort((a, b) => kindRank({ apiVersion: a.ref?.group ? `${a.ref.group}/${a.e.v}` : a.e.v, kind: a.ref?.kind ?? '' }) - kindRank({ apiVersion: b.ref?.group ? `${b.ref.group}/${b.e.v}` : b.e.v, kind: b.ref?.kind ?? '' })).reverse();
    const pruned: string[] = [];
    const seen = new Set<string>();
    for (const { e, ref } of gone) {
      if (!ref || seen.has(e.id)) continue;
      seen.add(e.id);
      const def = this.opts.resources.kinds.all().find((d) => d.kind === ref.kind && groupOf(d) === ref.group);
      if (!def) continue;
      const ns = def.namespaced ? ref.namespace : undefined;
      const live = await this.opts.resources.tryGet(def, ns, ref.name);
      const labels = live?.metadata.labels ?? {};
      if (!live || labels[SYNC_NAME_LABEL] !== sync.metadata.name || labels[SYNC_NAMESPACE_LABEL] !== sync.metadata.namespace) continue;
      try {
        await this.opts.resources.delete(def, ns, ref.name);
        pruned.push(`${ref.kind} ${ns ? `${ns}/` : ''}${ref.name}`);
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'NotFound')) this.opts.logger.warn({ sync: cacheKey(sync), object: e.id, err: (err as Error).message }, 'pruning failed');
      }
    }
    if (pruned.length) await this.events.record(sync, 'Normal', 'Pruned', truncate(`pruned ${pruned.join(', ')}`));
    return pruned;
  }

  private async health(plan: PlannedObject[]): Promise<{ healthy: boolean; message: string }> {
    for (const p of plan) {
      const def = this.defOf(p);
      if (!def) continue;
      const live = await this.opts.resources.tryGet(def, def.namespaced ? p.object.metadata.namespace : undefined, p.object.metadata.name);
      if (!live) return { healthy: false, message: `${describe(p)} does not exist` };
      const h = healthOf(live);
      if (!h.healthy) return h;
    }
    return { healthy: true, message: '' };
  }

  private async waitHealthy(plan: PlannedObject[], deadline: number): Promise<{ healthy: boolean; message: string }> {
    for (;;) {
      const h = await this.health(plan);
      if (h.healthy || Date.now() >= deadline) return h;
      await this.sleep(Math.min(this.opts.healthPollMs ?? 250, Math.max(1, deadline - Date.now())));
    }
  }

  /** writeStatus writes the outcome when it changes anything, against the object as stored now. */
  private async writeStatus(sync: ResourceObject, out: Outcome): Promise<void> {
    const { resources } = this.opts;
    const def = resources.kind('Sync');
    const current = await resources.tryGet(def, sync.metadata.namespace, sync.metadata.name);
    if (!current) return;
    const old = (current.status ?? {}) as Record<string, unknown>;
    const next: Record<string, unknown> = { ...old, ...out.fields, observedGeneration: current.metadata.generation };
    for (const [k, v] of Object.entries(next)) if (v === undefined) delete next[k];
    const now = this.now();
    let conditions = old.conditions as Condition[] | undefined;
    if (out.ready) conditions = setCondition(conditions, { type: 'Ready', ...out.ready, observedGeneration: current.metadata.generation }, now);
    if (out.healthy) conditions = setCondition(conditions, { type: 'Healthy', ...out.healthy, observedGeneration: current.metadata.generation }, now);
    if (conditions) next.conditions = conditions;
    if (deepEqual(next, old)) return;
    try {
      await resources.updateStatus(def, sync.metadata.namespace, sync.metadata.name, { ...current, status: next });
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') return;
      throw err;
    }
  }
}

/** failure is the outcome of a failed attempt; `lastFailure` keeps it in status until a revision applies. */
function failure(fields: Record<string, unknown>, reason: string, message: string): Outcome {
  const m = truncate(message);
  return { fields: { ...fields, lastFailure: { reason, message: m } }, ready: { status: 'False', reason, message: m } };
}

function ownerOf(o: ResourceObject | undefined): string | undefined {
  const l = o?.metadata.labels;
  return l?.[SYNC_NAME_LABEL] && l[SYNC_NAMESPACE_LABEL] ? `${l[SYNC_NAMESPACE_LABEL]}/${l[SYNC_NAME_LABEL]}` : undefined;
}

function reconcileAt(o: ResourceObject): string | undefined {
  return o.metadata.annotations?.[RECONCILE_AT_ANNOTATION];
}

function describe(p: PlannedObject): string {
  const m = p.object.metadata;
  return `${p.object.kind} ${m.namespace ? `${m.namespace}/` : ''}${m.name}`;
}

/** refusal turns the API's answer to one object into an error naming the object, its file and the API's reason. */
function refusal(p: PlannedObject, err: unknown): SyncApplyError {
  if (err instanceof SyncApplyError) return err;
  const reason = err instanceof ApiError ? `${err.reason}: ${err.message}` : (err as Error).message;
  return new SyncApplyError(`${describe(p)} (${p.file}:${p.line}) was refused: ${reason}`, describe(p), p.file);
}

/**
 * configFor is the configuration the Sync applies for an object: as planned, less the fields a
 * Rollout drives when the live object names one (a Function's spec.module or spec.image, a Route's
 * spec.http), so that neither applying nor drift correction fights the Rollout.
 */
export function configFor(planned: ResourceObject, live: ResourceObject | undefined): ResourceObject {
  if (!live?.metadata.annotations?.[ROLLOUT_ANNOTATION]) return planned;
  const cfg = structuredClone(planned);
  if (cfg.kind === 'Function' && cfg.spec) {
    delete cfg.spec.module;
    delete cfg.spec.image;
  }
  if (cfg.kind === 'Route' && cfg.spec) delete cfg.spec.http;
  return cfg;
}

function truncate(s: string, max = 1024): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
