import { formatAge, parseDurationMs } from '../../util/quantity.js';

import { type Condition, readyOf } from './conditions.js';
import type { FieldError, KindDefinition, ResourceObject } from './types.js';

/** The shortest interval a Sync may reconcile at: a shorter one would only repeat dry runs. */
export const MIN_SYNC_INTERVAL_MS = 1000;
/** The longest a Sync may wait for its objects to become healthy. */
export const MAX_SYNC_TIMEOUT_MS = 60 * 60_000;

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const ref = (desc: string, withNamespace: boolean): Record<string, unknown> => ({
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  description: desc,
  properties: {
    name: { type: 'string', minLength: 1 },
    ...(withNamespace ? { namespace: { type: 'string', minLength: 1, description: 'Defaults to the Sync\'s namespace.' } } : {}),
  },
});

function duration(spec: Record<string, unknown>, field: string, min: number, max: number, errs: FieldError[]): void {
  const v = spec[field];
  if (v === undefined) return;
  const ms = parseDurationMs(v as string);
  if (ms === undefined || ms < min || ms > max) errs.push({ field: `spec.${field}`, message: `must be a duration from ${min / 1000}s to ${max / 60_000}m, such as 2s, 1m or 1m30s`, reason: 'FieldValueInvalid' });
}

function validate(o: ResourceObject): FieldError[] {
  const errs: FieldError[] = [];
  const spec = (o.spec ?? {}) as Record<string, unknown>;
  duration(spec, 'interval', MIN_SYNC_INTERVAL_MS, 24 * 3_600_000, errs);
  duration(spec, 'timeout', MIN_SYNC_INTERVAL_MS, MAX_SYNC_TIMEOUT_MS, errs);
  const path = spec.path;
  if (typeof path === 'string') {
    const parts = path.replace(/\\/g, '/').split('/');
    if (path.startsWith('/') || /^[a-zA-Z]:/.test(path)) errs.push({ field: 'spec.path', message: 'must be relative to the root of the source\'s artifact, such as ./deploy', reason: 'FieldValueInvalid' });
    else if (parts.includes('..')) errs.push({ field: 'spec.path', message: 'must not contain "..": a Sync reads only inside its source\'s artifact', reason: 'FieldValueInvalid' });
    if (path.includes('\0')) errs.push({ field: 'spec.path', message: 'must not contain a NUL character', reason: 'FieldValueInvalid' });
  }
  const deps = Array.isArray(spec.dependsOn) ? (spec.dependsOn as Array<{ name?: string; namespace?: string }>) : [];
  const seen = new Set<string>();
  deps.forEach((d, i) => {
    const key = `${d.namespace ?? o.metadata.namespace}/${d.name}`;
    if (d.name === o.metadata.name && (d.namespace ?? o.metadata.namespace) === o.metadata.namespace) errs.push({ field: `spec.dependsOn[${i}]`, message: 'a Sync cannot depend on itself', reason: 'FieldValueInvalid' });
    if (seen.has(key)) errs.push({ field: `spec.dependsOn[${i}]`, message: `${key} is listed twice`, reason: 'FieldValueDuplicate' });
    seen.add(key);
  });
  const tns = spec.targetNamespace;
  if (typeof tns === 'string' && !NAME.test(tns)) errs.push({ field: 'spec.targetNamespace', message: 'must be a namespace name (lowercase letters, digits, -)', reason: 'FieldValueInvalid' });
  return errs;
}

function condition(o: ResourceObject, type: string): Condition | undefined {
  return (o.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);
}

/**
 * Sync: applies the manifests under a folder of a Git source's artifact (plain YAML/JSON or a
 * kustomization), prunes what the source no longer has, corrects drift, waits for health and rolls
 * back to the last healthy revision. The role of Flux's Kustomization and Argo CD's Application.
 *
 * @example
 * apiVersion: skiff.dev/v1
 * kind: Sync
 * metadata: { name: app, namespace: default }
 * spec:
 *   sourceRef: { kind: GitRepository, name: app }
 *   path: ./deploy
 *   interval: 1m
 *   prune: true
 */
export const syncKind: KindDefinition = {
  kind: 'Sync',
  plural: 'syncs',
  singular: 'sync',
  namespaced: true,
  description: 'Sync applies the manifests under spec.path of a Git source\'s artifact, keeps them as the source says (drift is corrected, removed objects pruned), waits for them to be healthy and rolls back to the last healthy revision when a new one is refused or unhealthy.',
  specSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['sourceRef'],
    properties: {
      sourceRef: {
        type: 'object',
        additionalProperties: false,
        required: ['kind', 'name'],
        description: 'The source whose artifact is applied.',
        properties: { kind: { enum: ['GitRepository'] }, name: { type: 'string', minLength: 1 }, namespace: { type: 'string', minLength: 1, description: 'Defaults to the Sync\'s namespace.' } },
      },
      path: { type: 'string', maxLength: 1024, description: 'The folder inside the artifact to apply (default ./). Its .yaml/.yml/.json manifests, or its kustomization.yaml when it has one.' },
      interval: { type: 'string', description: 'How often the Sync checks for drift and applies again (default 5m); a new source revision applies at once.' },
      timeout: { type: 'string', description: 'How long applying and waiting for health may take (default 2m).' },
      prune: { type: 'boolean', description: 'Delete the objects a new revision no longer has (only those carrying this Sync\'s ownership labels).' },
      wait: { type: 'boolean', description: 'After applying, wait until every applied object with a Ready condition is Ready at its generation.' },
      suspend: { type: 'boolean', description: 'Apply nothing while true.' },
      targetNamespace: { type: 'string', description: 'Namespaced objects are applied in this namespace, whatever the manifests say.' },
      dependsOn: { type: 'array', maxItems: 32, items: ref('Another Sync that must be Ready at its source\'s current revision first.', true) },
      rollback: {
        type: 'object',
        additionalProperties: false,
        properties: { enabled: { type: 'boolean', description: 'Default true: a refused or unhealthy revision returns to the last healthy one.' } },
      },
    },
  },
  statusSchema: {
    type: 'object',
    description: 'What the sync controller applied and found.',
    properties: {
      lastAppliedRevision: { type: 'string', description: 'The source revision whose objects are applied.' },
      lastAttemptedRevision: { type: 'string', description: 'The last source revision tried, applied or not.' },
      lastHealthyRevision: { type: 'string', description: 'The last revision that applied and became healthy; rollbacks return to it.' },
      lastHealthyDigest: { type: 'string', description: 'The artifact digest of lastHealthyRevision.' },
      lastAppliedDigest: { type: 'string', description: 'The artifact digest of lastAppliedRevision.' },
      lastAttemptedDigest: { type: 'string', description: 'The artifact digest of lastAttemptedRevision.' },
      lastAttemptedGeneration: { type: 'integer', description: 'The metadata.generation of the last attempt.' },
      lastHandledReconcileAt: { type: 'string', description: 'The last skiff.dev/reconcile-at annotation value acted on.' },
      lastPruned: { type: 'integer', description: 'Objects pruned when the applied revision was applied (its first pass and any later ones).' },
      lastFailure: { type: 'object', description: 'Why the last attempted revision was not applied (reason, message); absent once one applies.', 'x-kubernetes-preserve-unknown-fields': true },
      inventory: { type: 'object', description: 'The objects this Sync owns: entries of {id: NAMESPACE_NAME_GROUP_KIND, v: VERSION}.', 'x-kubernetes-preserve-unknown-fields': true },
      drift: { type: 'object', description: 'Drift found at the last reconcile: count, objects (kind/namespace/name and fields), lastCorrected.', 'x-kubernetes-preserve-unknown-fields': true },
      observedGeneration: { type: 'integer' },
      conditions: { type: 'array', items: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Condition' }, description: 'Ready (applied at the source\'s revision) and Healthy (the applied objects are Ready).' },
    },
  },
  validate,
  printerColumns: [
    { name: 'SOURCE', jsonPath: '.spec.sourceRef.name', value: (o) => `${o.spec?.sourceRef?.kind ?? ''}/${o.spec?.sourceRef?.name ?? ''}` },
    { name: 'REVISION', jsonPath: '.status.lastAppliedRevision', value: (o) => String(o.status?.lastAppliedRevision ?? '<none>') },
    { name: 'READY', jsonPath: '.status.conditions[?(@.type=="Ready")].status', value: (o) => readyOf(o) },
    { name: 'DRIFT', type: 'integer', jsonPath: '.status.drift.count', value: (o) => String(o.status?.drift?.count ?? 0) },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
    { name: 'PATH', wide: true, jsonPath: '.spec.path', value: (o) => String(o.spec?.path ?? './') },
    { name: 'MESSAGE', wide: true, value: (o) => condition(o, 'Ready')?.message ?? '' },
  ],
};
