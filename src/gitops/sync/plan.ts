import { createHash } from 'node:crypto';
import { posix } from 'node:path';

import { blobRef, MODULE_SOURCE_ANNOTATION, parseModuleRef } from '../../api/kinds/index.js';
import type { ResourceObject } from '../../api/kinds/types.js';
import type { ArtifactFiles } from '../artifact.js';

import { SyncBuildError } from './errors.js';
import { buildFolder, type BuildLimits, DEFAULT_BUILD_LIMITS, namespaced, type ScopeOf } from './kustomize.js';
import { artifactPath } from './paths.js';

/** The ownership labels every object a Sync applies carries: only objects with both are ever pruned. */
export const SYNC_NAME_LABEL = 'sync.skiff.dev/name';
export const SYNC_NAMESPACE_LABEL = 'sync.skiff.dev/namespace';
/** The annotation a Rollout leaves on the Function and Route it drives (see the delegation rule in the README). */
export const ROLLOUT_ANNOTATION = 'rollout.skiff.dev/name';
/** The field manager of a Sync's applies. */
export const SYNC_MANAGER = 'skiff-sync';

/** Gatekeeper's constraint kinds exist only once their ConstraintTemplate is applied. */
export const CONSTRAINTS_GROUP = 'constraints.gatekeeper.sh';

/** The order objects are applied in: what others need (namespaces, policy, secrets) first; constraints last. */
const KIND_ORDER = ['Namespace', 'ConstraintTemplate', 'Policy', 'PolicyBundle', 'TrustRoot', 'ImagePolicy', 'Secret', 'RuntimeClass', 'Function', 'Service', 'Route', 'HorizontalPodAutoscaler', 'Rollout'];

/** PlannedObject is one object of a revision as the Sync applies it. */
export interface PlannedObject {
  object: ResourceObject;
  /** The artifact path and line it was read from. */
  file: string;
  line: number;
  /** The inventory id: NAMESPACE_NAME_GROUP_KIND (namespace empty for cluster-scoped objects). */
  id: string;
  /** The apiVersion's version. */
  v: string;
}

/** BlobSink is where modules that manifests name by a relative path are stored (the server's `BlobStore`). */
export interface BlobSink {
  readonly maxBytes: number;
  put(hex: string, bytes: Uint8Array): Promise<unknown>;
}

export interface PlanInput {
  files: ArtifactFiles;
  /** spec.path of the Sync. */
  path?: string;
  sync: { name: string; namespace: string };
  targetNamespace?: string;
  scope: ScopeOf;
  blobs?: BlobSink;
  limits?: BuildLimits;
}

/** groupVersion splits an apiVersion into its group ('' for the core group) and version. */
export function groupVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

/** inventoryId names an object in a Sync's inventory, as Flux does: NAMESPACE_NAME_GROUP_KIND. */
export function inventoryId(obj: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }): string {
  return `${obj.metadata.namespace ?? ''}_${obj.metadata.name}_${groupVersion(obj.apiVersion).group}_${obj.kind}`;
}

/** parseInventoryId reverses {@link inventoryId}; names and namespaces hold no `_`, so the split is unambiguous. */
export function parseInventoryId(id: string): { namespace?: string; name: string; group: string; kind: string } | undefined {
  const parts = id.split('_');
  if (parts.length !== 4) return undefined;
  const [namespace, name, group, kind] = parts as [string, string, string, string];
  return { namespace: namespace || undefined, name, group, kind };
}

/** kindRank orders objects for applying (and, reversed, for pruning). */
export function kindRank(obj: { apiVersion: string; kind: string }): number {
  if (groupVersion(obj.apiVersion).group === CONSTRAINTS_GROUP) return KIND_ORDER.length + 1;
  const i = KIND_ORDER.indexOf(obj.kind);
  return i < 0 ? KIND_ORDER.length : i;
}

/**
 * buildPlan turns the files of a revision into the objects a Sync applies: read (kustomize or plain
 * manifests) under spec.path, namespaced into targetNamespace (or the Sync's namespace when they name
 * none), labelled with the Sync's ownership labels, relative Function modules stored as blobs, sorted
 * in apply order. Every problem is a `SyncBuildError` naming the file.
 */
export async function buildPlan(input: PlanInput): Promise<PlannedObject[]> {
  const dir = artifactPath('', input.path ?? './', 'spec.path');
  const read = buildFolder(input.files, dir, input.scope, input.limits ?? DEFAULT_BUILD_LIMITS);
  const out: PlannedObject[] = [];
  const seen = new Map<string, string>();
  const errors: string[] = [];
  for (const r of read) {
    const obj = r.object as ResourceObject;
    const meta = obj.metadata;
    if (namespaced(input.scope, obj)) meta.namespace = input.targetNamespace ?? (typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : input.sync.namespace);
    else delete meta.namespace;
    meta.labels = { ...(meta.labels ?? {}), [SYNC_NAME_LABEL]: input.sync.name, [SYNC_NAMESPACE_LABEL]: input.sync.namespace };
    for (const f of ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields']) delete meta[f];
    delete obj.status;
    try {
      await resolveModule(obj, r.file, input);
    } catch (err) {
      errors.push(`${r.file}:${r.line}: ${(err as Error).message}`);
      continue;
    }
    const id = inventoryId(obj);
    const where = `${r.file}:${r.line}`;
    const before = seen.get(id);
    if (before) errors.push(`${where}: ${obj.kind} ${meta.namespace ? `${meta.namespace}/` : ''}${meta.name} is also defined at ${before}`);
    seen.set(id, where);
    out.push({ object: obj, file: r.file, line: r.line, id, v: groupVersion(obj.apiVersion).version });
  }
  if (errors.length) throw new SyncBuildError(errors.join('\n'), errors);
  return out.sort((a, b) => kindRank(a.object) - kindRank(b.object));
}

/**
 * resolveModule stores the module a Function (spec.module) or a Rollout (spec.canary.module) names by a
 * relative path (against its manifest's folder in the revision) in the blob store and points the field
 * at the blob, as `skiff apply` does with a local file: the server then never reads the repository, and
 * the revision's bytes are what runs.
 */
async function resolveModule(obj: ResourceObject, file: string, input: PlanInput): Promise<void> {
  const holder: Record<string, unknown> | undefined = obj.kind === 'Function' ? obj.spec : obj.kind === 'Rollout' ? obj.spec?.canary : undefined;
  const field = obj.kind === 'Function' ? 'spec.module' : 'spec.canary.module';
  if (!holder || typeof holder.module !== 'string') return;
  const ref = parseModuleRef(holder.module);
  if (ref.type !== 'host' || ref.absolute) return;
  const path = artifactPath(posix.dirname(file), ref.path, field);
  const bytes = input.files.get(path);
  if (!bytes) throw new SyncBuildError(`${field}: ${ref.path} (${path}) is not in the revision; commit the module or name it by oci:// or URL`);
  if (!input.blobs) throw new SyncBuildError(`${field}: a module in the repository needs the server's blob store, which this Sync controller was not given`);
  if (bytes.length > input.blobs.maxBytes) throw new SyncBuildError(`${field}: ${path} is ${bytes.length} bytes; the limit is ${input.blobs.maxBytes}`);
  const hex = createHash('sha256').update(bytes).digest('hex');
  await input.blobs.put(hex, bytes);
  holder.module = blobRef(hex);
  obj.metadata.annotations = { ...(obj.metadata.annotations ?? {}), [MODULE_SOURCE_ANNOTATION]: path };
}
