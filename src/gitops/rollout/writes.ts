import { ApiError } from '../../api/errors.js';
import { ROLLOUT_NAME_ANNOTATION, type RolloutPlan } from '../../api/kinds/index.js';
import type { ResourceObject } from '../../api/kinds/types.js';
import type { ResourceService } from '../../api/resources.js';

import { RolloutConflictError } from './errors.js';

/** The field manager of every write a Rollout makes (the delegation rule other writers honour). */
export const ROLLOUT_MANAGER = 'skiff-rollout';
/** The label on a canary Function: which Rollout made it. */
export const CANARY_LABEL = 'rollout.skiff.dev/canary-of';

/** canaryName is the canary Function's name for a stable Function. */
export function canaryName(fn: string): string {
  return `${fn}-canary`;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- specs as stored, checked by their kinds' validation
type Any = any;

/**
 * RolloutWrites makes every change a Rollout makes to other objects: server-side applies as
 * `skiff-rollout` (force), each skipped when the object already is as wanted, so a reconcile that
 * changes nothing writes nothing.
 */
export class RolloutWrites {
  constructor(private readonly resources: ResourceService) {}

  /**
   * canary makes the canary Function a copy of the stable one with the new version, labelled and
   * owned by the Rollout; a Function of that name that is not the Rollout's is left alone (an error).
   */
  async canary(ro: ResourceObject, plan: RolloutPlan, stable: ResourceObject, live: ResourceObject | undefined): Promise<void> {
    const ns = ro.metadata.namespace ?? 'default';
    const name = canaryName(plan.functionName);
    const spec: Any = structuredClone(stable.spec ?? {});
    spec[plan.canaryField] = plan.canaryRef;
    if (plan.canaryDigest) spec.digest = plan.canaryDigest;
    else delete spec.digest;
    if (live && live.metadata.labels?.[CANARY_LABEL] !== ro.metadata.name) {
      throw new RolloutConflictError(`a Function ${ns}/${name} exists that is not this Rollout's canary; rename it or delete it so the Rollout can make its canary`);
    }
    // The canary carries the stable Function's labels (policies select and check by them: a canary
    // without its team label would be refused where the stable one is admitted), but not the
    // ownership labels of a Sync: the canary is the Rollout's, and no Sync may prune or claim it.
    const labels: Record<string, string> = { ...Object.fromEntries(Object.entries(stable.metadata.labels ?? {}).filter(([k]) => !k.startsWith('sync.skiff.dev/'))), [CANARY_LABEL]: ro.metadata.name };
    if (live && JSON.stringify(live.spec) === JSON.stringify(spec) && JSON.stringify(live.metadata.labels ?? {}) === JSON.stringify(labels)) return;
    const metadata = {
      name,
      namespace: ns,
      labels,
      annotations: { [ROLLOUT_NAME_ANNOTATION]: ro.metadata.name },
      ownerReferences: [{ apiVersion: 'skiff.dev/v1', kind: 'Rollout', name: ro.metadata.name, uid: ro.metadata.uid, controller: true, blockOwnerDeletion: true }],
    };
    await this.apply('Function', ns, name, { metadata, spec });
  }

  /**
   * stable marks the stable Function as driven by this Rollout and sets its version field: a Sync
   * leaves exactly those fields alone. Every apply names the field, since a field this manager stops
   * applying would be removed.
   */
  async stable(ro: ResourceObject, plan: RolloutPlan, fn: ResourceObject, version: string, digest: string | undefined): Promise<void> {
    const same = fn.metadata.annotations?.[ROLLOUT_NAME_ANNOTATION] === ro.metadata.name && fn.spec?.[plan.canaryField] === version && (digest === undefined || fn.spec?.digest === digest) && ownsField(fn, plan.canaryField);
    if (same) return;
    const ns = ro.metadata.namespace ?? 'default';
    await this.apply('Function', ns, plan.functionName, {
      metadata: { name: plan.functionName, namespace: ns, annotations: { [ROLLOUT_NAME_ANNOTATION]: ro.metadata.name } },
      spec: { [plan.canaryField]: version, ...(digest ? { digest } : {}) },
    });
  }

  /** route writes a Route's rules when they differ; it says whether the gateway runs them already. */
  async route(ro: ResourceObject, route: ResourceObject, http: unknown[]): Promise<boolean> {
    const same = route.metadata.annotations?.[ROLLOUT_NAME_ANNOTATION] === ro.metadata.name && JSON.stringify(route.spec?.http) === JSON.stringify(http) && ownsField(route, 'http');
    if (same) return route.status?.observedGeneration === route.metadata.generation;
    const ns = ro.metadata.namespace ?? 'default';
    await this.apply('Route', ns, route.metadata.name, { metadata: { name: route.metadata.name, namespace: ns, annotations: { [ROLLOUT_NAME_ANNOTATION]: ro.metadata.name } }, spec: { http } });
    return false;
  }

  /** restoreRoute puts back a Route's rules for a Rollout that is gone, and its annotation with it. */
  async restoreRoute(ns: string, name: string, http: unknown[] | undefined): Promise<void> {
    if (http) await this.apply('Route', ns, name, { metadata: { name, namespace: ns }, spec: { http } });
    await this.dropAnnotation('Route', ns, name);
  }

  /** dropAnnotation removes the delegation annotation (a merge patch: the owned fields stay as they are). */
  async dropAnnotation(kind: string, ns: string, name: string): Promise<void> {
    await this.resources.patch(this.resources.kind(kind), ns, name, { metadata: { annotations: { [ROLLOUT_NAME_ANNOTATION]: null } } }, { type: 'merge', fieldManager: ROLLOUT_MANAGER }).catch(ignoreNotFound);
  }

  /** deleteCanary deletes a canary Function (already gone is fine). */
  async deleteCanary(ns: string, name: string): Promise<void> {
    await this.resources.delete(this.resources.kind('Function'), ns, name).catch(ignoreNotFound);
  }

  private async apply(kind: string, ns: string, name: string, config: { metadata: Record<string, unknown>; spec: unknown }): Promise<void> {
    await this.resources.apply(this.resources.kind(kind), ns, name, { apiVersion: 'skiff.dev/v1', kind, ...config }, { fieldManager: ROLLOUT_MANAGER, force: true });
  }
}

/** ownsField says whether the rollout's manager owns spec.FIELD (so a Sync or a user write did not take it back). */
function ownsField(obj: ResourceObject, field: string): boolean {
  const mf = obj.metadata.managedFields as Array<{ manager?: string; fieldsV1?: Any }> | undefined;
  return !!mf?.some((m) => m.manager === ROLLOUT_MANAGER && m.fieldsV1?.['f:spec']?.[`f:${field}`] !== undefined);
}

function ignoreNotFound(err: unknown): void {
  if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
}
