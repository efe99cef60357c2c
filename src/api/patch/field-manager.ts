import { ApiError, badRequest, invalid } from '../errors.js';
import type { KindDefinition, ResourceObject } from '../kinds/types.js';

import { type FieldPath, FieldSet, pathString } from './field-set.js';
import { compare, configProblems, fieldsOf, mergeApplied, removePath } from './field-walk.js';
import { deepEqual, isJsonObject, type JsonObject } from './json-value.js';
import { decodeManagedFields, encodeManagedFields, type ManagedFieldsEntry, type Manager, MAX_MANAGER_LENGTH, nowTime, sameManager } from './managed-fields.js';
import { type FieldType, objectTypeOf } from './object-type.js';

/** Metadata the server keeps for itself: never owned by a manager, never taken from an applied configuration. */
const SERVER_METADATA = ['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'managedFields', 'selfLink'];

/** The field manager `skiff apply` (and the demo Skiff applies for itself) applies as. */
export const SKIFF_APPLY_MANAGER = 'skiff';

/** The manager kube assigns an object's fields to when it is first applied to and had no managed fields. */
export const BEFORE_FIRST_APPLY = 'before-first-apply';

/** What one apply asks for. */
export interface ApplyRequest {
  manager: string;
  force: boolean;
  subresource?: 'status';
  now?: Date;
}

/**
 * FieldManager keeps `metadata.managedFields` as kube-apiserver does: which manager set which field,
 * recorded as an `Update` for creates, updates and patches, and as an `Apply` for server-side apply,
 * which merges an applied configuration field by field, refuses (409) to change a field another
 * manager owns unless forced, and removes the fields a manager stops applying that nobody else owns.
 */
export class FieldManager {
  private readonly types = new WeakMap<KindDefinition, FieldType>();

  /** typeOf is the kind's FieldType, read once per definition object (a re-registered kind gets a new one). */
  typeOf(def: KindDefinition): FieldType {
    let t = this.types.get(def);
    if (!t) this.types.set(def, (t = objectTypeOf(def)));
    return t;
  }

  /**
   * recordUpdate returns `next`'s managedFields after `manager` wrote it over `old` (absent for a
   * create): the fields it changed become its own and no one else's, removed fields no one's. The
   * starting point is `base` (the stored entries, or the ones the request sent). An entry's time moves
   * only when its fields do, so a write that changes nothing changes nothing here either.
   */
  recordUpdate(def: KindDefinition, old: ResourceObject | undefined, next: ResourceObject, base: unknown, manager: string, subresource?: 'status', now = new Date()): ManagedFieldsEntry[] | undefined {
    const t = this.typeOf(def);
    const { managers, errors } = decodeManagedFields(base);
    if (errors.length) throw invalid(def.kind, next.metadata.name, errors);
    const cmp = compare(scoped(old, subresource), scoped(next, subresource), t);
    const changed = cmp.added.union(cmp.modified);
    if (!changed.empty()) {
      const who = { manager, operation: 'Update' as const, apiVersion: next.apiVersion, subresource };
      for (const m of managers) m.set = m.set.difference(changed);
      let mine = managers.find((m) => sameManager(m, who));
      if (!mine) managers.push((mine = { ...who, set: new FieldSet() }));
      mine.set = mine.set.union(changed);
      mine.time = nowTime(now);
    }
    if (!cmp.removed.empty()) for (const m of managers) m.set = m.set.difference(cmp.removed);
    return encodeManagedFields(managers);
  }

  /**
   * apply merges an applied configuration into `live` (or makes a new object of it) and returns the
   * object to store, its managedFields set. Conflicts with other managers are a 409 listing every
   * field and who owns it, unless `force` takes them over.
   */
  apply(def: KindDefinition, live: ResourceObject | undefined, config: ResourceObject, req: ApplyRequest): ResourceObject {
    const t = this.typeOf(def);
    const sub = req.subresource;
    const configScoped = scoped(config, sub)!;
    const problems = configProblems(configScoped, t);
    if (problems.length) throw invalid(def.kind, config.metadata.name, problems);
    const configSet = fieldsOf(configScoped, t);
    const now = req.now ?? new Date();
    const who = { manager: req.manager, operation: 'Apply' as const, apiVersion: config.apiVersion, subresource: sub };
    if (!live) {
      const object = unscoped(config, configScoped, sub);
      const mf = encodeManagedFields([{ ...who, time: nowTime(now), set: configSet }]);
      if (mf) object.metadata.managedFields = mf;
      else delete object.metadata.managedFields;
      return object;
    }
    const decoded = decodeManagedFields(live.metadata.managedFields);
    const managers = decoded.errors.length ? [] : decoded.managers;
    // An object nobody has managed yet is assigned, as a whole, to a manager that stands for its past.
    if (!managers.length) managers.push({ manager: BEFORE_FIRST_APPLY, operation: 'Update', apiVersion: live.apiVersion, set: fieldsOf(scoped(live, sub), t) });
    const liveScoped = scoped(live, sub)!;
    const merged = mergeApplied(liveScoped, configScoped, t) as JsonObject;
    const before = compare(liveScoped, merged, t);
    const changed = before.added.union(before.modified);
    let mine = managers.find((m) => sameManager(m, who));
    const others = managers.filter((m) => m !== mine);
    const conflicts: Array<{ manager: Manager; path: FieldPath }> = [];
    for (const m of others) for (const p of m.set.intersection(changed).paths()) conflicts.push({ manager: m, path: p });
    if (conflicts.length && !req.force) throw conflictError(def, config.metadata.name, conflicts);
    for (const m of others) m.set = m.set.difference(changed);
    const othersSet = others.reduce((acc, m) => acc.union(m.set), new FieldSet());
    const previous = mine?.set ?? new FieldSet();
    const dropped = previous.difference(configSet);
    // Shallowest first: a keyed-list item no one else owns goes whole, before its key fields could be
    // removed one by one (which would leave an item that has no name and fails validation).
    for (const p of dropped.paths()) {
      if (othersSet.hasAtOrBelow(p) || isKeyOfSurvivingItem(p, merged, othersSet)) continue;
      removePath(merged, p, t, (q) => othersSet.has(q) || configSet.hasAtOrBelow(q));
    }
    const after = compare(liveScoped, merged, t);
    if (!after.removed.empty()) for (const m of others) m.set = m.set.difference(after.removed);
    const setChanged = !deepEqual(previous.toFieldsV1(), configSet.toFieldsV1()) || !mine;
    if (!mine) managers.push((mine = { ...who, set: configSet }));
    mine.set = configSet;
    if (setChanged || !deepEqual(liveScoped, merged)) mine.time = nowTime(now);
    const object = unscoped(live, merged, sub);
    keepLastAppliedCurrent(live, object, config, sub);
    const mf = encodeManagedFields(managers);
    if (mf) object.metadata.managedFields = mf;
    else delete object.metadata.managedFields;
    return object;
  }
}

/**
 * scoped is the part of an object its managers can own: for the main resource everything but the
 * envelope, the server's metadata and status; for the status subresource, status alone.
 */
function scoped(obj: ResourceObject | undefined, subresource?: 'status'): JsonObject | undefined {
  if (!obj) return undefined;
  if (subresource === 'status') return obj.status === undefined ? {} : { status: obj.status };
  const { apiVersion: _a, kind: _k, status: _s, metadata, ...rest } = obj;
  const meta: JsonObject = { ...(isJsonObject(metadata) ? metadata : {}) };
  for (const k of SERVER_METADATA) delete meta[k];
  return Object.keys(meta).length ? { metadata: meta, ...rest } : rest;
}

/** unscoped rebuilds a whole object from `base` (the live object, or the configuration) and a scoped part. */
function unscoped(base: ResourceObject, part: JsonObject, subresource?: 'status'): ResourceObject {
  if (subresource === 'status') {
    const out: ResourceObject = { ...base, metadata: { ...base.metadata } };
    if (part.status === undefined) delete out.status;
    else out.status = part.status;
    return out;
  }
  const { metadata: partMeta, ...rest } = part;
  const meta: JsonObject = {};
  for (const k of SERVER_METADATA) if (base.metadata[k] !== undefined) meta[k] = base.metadata[k];
  const out = { apiVersion: base.apiVersion, kind: base.kind, metadata: { ...meta, ...(isJsonObject(partMeta) ? partMeta : {}) }, ...rest } as ResourceObject;
  if (base.status !== undefined) out.status = base.status;
  return out;
}

/** The annotation client-side `kubectl apply` keeps its last applied configuration in. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * keepLastAppliedCurrent rewrites the client-side apply annotation, when the object has one, to the
 * configuration just applied server-side (as kube does), so that a later client-side apply computes
 * its patch from what was really applied last.
 */
function keepLastAppliedCurrent(live: ResourceObject, object: ResourceObject, config: ResourceObject, sub?: 'status'): void {
  if (sub || live.metadata.annotations?.[LAST_APPLIED_ANNOTATION] === undefined || object.metadata.annotations?.[LAST_APPLIED_ANNOTATION] === undefined) return;
  const applied = structuredClone(config);
  if (applied.metadata.annotations) {
    delete applied.metadata.annotations[LAST_APPLIED_ANNOTATION];
    if (Object.keys(applied.metadata.annotations).length === 0) delete applied.metadata.annotations;
  }
  // A client-side apply writes `"annotations":{}` where there were none; the same configuration keeps its text.
  if (deepEqual(withoutEmptyAnnotations(parseJson(live.metadata.annotations[LAST_APPLIED_ANNOTATION])), withoutEmptyAnnotations(applied))) return;
  object.metadata.annotations = { ...object.metadata.annotations, [LAST_APPLIED_ANNOTATION]: JSON.stringify(applied) + '\n' };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function withoutEmptyAnnotations(o: unknown): unknown {
  if (!isJsonObject(o) || !isJsonObject(o.metadata) || !isJsonObject(o.metadata.annotations) || Object.keys(o.metadata.annotations).length) return o;
  const { annotations: _a, ...metadata } = o.metadata;
  return { ...o, metadata };
}

/** A key field of a keyed-list item that someone still owns part of stays, or the item would lose its name. */
function isKeyOfSurvivingItem(p: FieldPath, _obj: JsonObject, othersSet: FieldSet): boolean {
  const last = p[p.length - 1];
  const parent = p[p.length - 2];
  if (!last?.startsWith('f:') || !parent?.startsWith('k:')) return false;
  const keys = JSON.parse(parent.slice(2)) as Record<string, unknown>;
  return Object.hasOwn(keys, last.slice(2)) && othersSet.hasAtOrBelow(p.slice(0, -1));
}

function conflictError(def: KindDefinition, name: string, conflicts: Array<{ manager: Manager; path: FieldPath }>): ApiError {
  const label = (m: Manager) => `${JSON.stringify(m.manager)}${m.subresource ? ` with subresource ${JSON.stringify(m.subresource)}` : ''}${m.operation === 'Update' ? ` using ${m.apiVersion}` : ''}`;
  let message: string;
  if (conflicts.length === 1) message = `Apply failed with 1 conflict: conflict with ${label(conflicts[0]!.manager)}: ${pathString(conflicts[0]!.path)}`;
  else {
    const byManager = new Map<string, string[]>();
    for (const c of conflicts) byManager.set(label(c.manager), [...(byManager.get(label(c.manager)) ?? []), pathString(c.path)]);
    const lines = [...byManager.keys()].sort().flatMap((m) => [`conflicts with ${m}:`, ...byManager.get(m)!.map((p) => `- ${p}`)]);
    message = `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`;
  }
  return new ApiError(409, 'Conflict', message, {
    kind: def.kind,
    name,
    causes: conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with ${label(c.manager)}`, field: pathString(c.path) })),
  });
}

/**
 * managerName decides who a write is on behalf of: the `fieldManager` query parameter, else the
 * User-Agent's product token (`kubectl-edit/v1.32.0 (linux/amd64) ...` → `kubectl-edit`), as kube
 * does; a name over 128 characters is a 422. Apply requires an explicit `fieldManager` (400).
 */
export function managerName(fieldManager: string | null, userAgent: string | undefined, apply: boolean): string {
  if (fieldManager !== null && fieldManager !== '') {
    if (fieldManager.length > MAX_MANAGER_LENGTH) throw invalid('PatchOptions', '', [{ field: 'fieldManager', message: `must be at most ${MAX_MANAGER_LENGTH} characters` }]);
    if (/[^\x20-\x7e]/.test(fieldManager)) throw invalid('PatchOptions', '', [{ field: 'fieldManager', message: 'must be printable ASCII' }]);
    return fieldManager;
  }
  if (apply) throw badRequest('PATCH with application/apply-patch+yaml needs the fieldManager query parameter (kubectl sends --field-manager, "kubectl" by default)');
  const product = (userAgent ?? '').split('/')[0]!.trim().replace(/[^\x20-\x7e]/g, '');
  return product.slice(0, MAX_MANAGER_LENGTH) || 'unknown';
}
