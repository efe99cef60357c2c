import { randomUUID } from 'node:crypto';

import type { Store, Watcher,WatchEvent } from '../store/index.js';
import { CompactedError } from '../store/index.js';

import type { AdmissionHook, AdmissionRequest } from './admission.js';
import type { DuplicateField } from './duplicate-keys.js';
import { alreadyExists, ApiError, conflict, gone, invalid, notFound } from './errors.js';
import { checkFields, type FieldValidation } from './field-validation.js';
import type { KindRegistry } from './kinds/registry.js';
import { apiVersionOf, CORE_GROUP, DEFAULT_GROUP, type FieldError, groupOf, type KindDefinition, type ResourceObject } from './kinds/types.js';
import { type LabelSelector,parseLabelSelector } from './label-selector.js';
import { applyMergePatch } from './merge-patch.js';
import { Validator } from './validation.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface ResourceEvent {
  type: WatchEventType;
  object: ResourceObject;
}

export interface WriteOptions {
  dryRun?: boolean;
  user?: { username: string; groups: string[] };
  /**
   * kube's `fieldValidation` for unknown and duplicate fields (see `field-validation.ts`). Without it
   * they are refused as invalid fields, in the 422 that names every bad field.
   */
  fieldValidation?: FieldValidation;
  /** Keys the request body had twice (the decoder kept the later value), for `fieldValidation`. */
  duplicates?: DuplicateField[];
}

export interface WriteOutcome {
  object: ResourceObject;
  warnings: string[];
}

export interface ListOptions {
  labelSelector?: string;
  limit?: number;
  continue?: string;
}

export interface ListResult {
  items: ResourceObject[];
  resourceVersion: string;
  continue?: string;
}

const SYSTEM_USER = { username: 'system:skiff', groups: ['system:masters'] };

/**
 * ResourceService is the one place where resources are created, read, changed and watched, with
 * Kubernetes semantics: metadata bookkeeping (uid, generation, resourceVersion = store revision,
 * creationTimestamp), validation, admission, optimistic concurrency and the status subresource.
 * The HTTP API and the in-process controllers both go through it.
 */
export class ResourceService {
  private readonly validator = new Validator();
  private readonly hooks: AdmissionHook[] = [];

  constructor(
    readonly store: Store,
    readonly kinds: KindRegistry,
  ) {}

  addAdmissionHook(hook: AdmissionHook): void {
    this.hooks.push(hook);
  }

  kind(name: string): KindDefinition {
    const def = this.kinds.lookup(name);
    if (!def) throw new ApiError(404, 'NotFound', `the server does not know the resource type "${name}"; known types: ${this.kinds.all().map((k) => k.plural).join(', ')}`);
    return def;
  }

  async get(def: KindDefinition, ns: string | undefined, name: string): Promise<ResourceObject> {
    const kv = await this.store.get(keyOf(def, ns, name));
    if (!kv) throw notFound(def.kind, name);
    return decode(def, kv.value, kv.modRevision);
  }

  async tryGet(def: KindDefinition, ns: string | undefined, name: string): Promise<ResourceObject | undefined> {
    const kv = await this.store.get(keyOf(def, ns, name));
    return kv ? decode(def, kv.value, kv.modRevision) : undefined;
  }

  async list(def: KindDefinition, ns: string | undefined, opts: ListOptions = {}): Promise<ListResult> {
    const selector = parseLabelSelector(opts.labelSelector);
    const prefix = prefixOf(def, ns);
    const items: ResourceObject[] = [];
    let startAfter = opts.continue ? Buffer.from(opts.continue, 'base64url').toString() : undefined;
    let revision = 0;
    let more = false;
    // Page through the store so a selective label query over a large kind stays bounded in memory per step.
    for (;;) {
      const page = await this.store.range(prefix, { limit: 500, startAfter });
      revision = page.revision;
      for (const kv of page.items) {
        const obj = decode(def, kv.value, kv.modRevision);
        if (selector.matches(obj.metadata.labels)) items.push(obj);
        startAfter = kv.key;
        if (opts.limit && items.length >= opts.limit) break;
      }
      if (opts.limit && items.length >= opts.limit) {
        more = page.more || page.items[page.items.length - 1]?.key !== startAfter;
        break;
      }
      if (!page.more) break;
    }
    return { items, resourceVersion: String(revision), ...(more && startAfter ? { continue: Buffer.from(startAfter).toString('base64url') } : {}) };
  }

  async create(def: KindDefinition, ns: string | undefined, input: unknown, opts: WriteOptions = {}): Promise<WriteOutcome> {
    const { obj, warnings: fieldWarnings } = this.prepare(def, ns, input, opts);
    const name = obj.metadata.name;
    const now = new Date();
    obj.metadata = {
      ...obj.metadata,
      uid: randomUUID(),
      generation: 1,
      creationTimestamp: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    };
    delete obj.metadata.resourceVersion;
    delete obj.status;
    const warnings = [...fieldWarnings, ...(await this.admit({ operation: 'CREATE', kind: def.kind, namespace: obj.metadata.namespace, name, object: obj, dryRun: !!opts.dryRun, userInfo: opts.user ?? SYSTEM_USER }))];
    if (opts.dryRun) {
      if (await this.store.get(keyOf(def, ns, name))) throw alreadyExists(def.kind, name);
      return { object: obj, warnings };
    }
    const res = await this.store.put(keyOf(def, ns, name), encode(obj), { expectModRevision: 0 });
    if (!res.ok) throw alreadyExists(def.kind, name);
    return { object: withRv(obj, res.revision), warnings };
  }

  /**
   * update replaces an object. With metadata.resourceVersion set, it must match the stored one (409
   * otherwise); without it the update is unconditional. Status in the body is ignored: only
   * updateStatus writes status.
   */
  async update(def: KindDefinition, ns: string | undefined, name: string, input: unknown, opts: WriteOptions = {}): Promise<WriteOutcome> {
    const { obj, warnings: fieldWarnings } = this.prepare(def, ns, input, opts);
    if (obj.metadata.name !== name) throw invalid(def.kind, name, [{ field: 'metadata.name', message: `does not match the name in the URL ("${name}")` }]);
    const key = keyOf(def, ns, name);
    const wanted = obj.metadata.resourceVersion;
    for (let attempt = 0; ; attempt++) {
      const kv = await this.store.get(key);
      if (!kv) throw notFound(def.kind, name);
      if (wanted !== undefined && wanted !== String(kv.modRevision)) throw conflict(def.kind, name);
      const old = decode(def, kv.value, kv.modRevision);
      const next: ResourceObject = {
        ...obj,
        metadata: { ...obj.metadata, uid: old.metadata.uid, creationTimestamp: old.metadata.creationTimestamp, generation: old.metadata.generation ?? 1 },
      };
      if (old.status !== undefined) next.status = old.status;
      else delete next.status;
      if (specOf(old) !== specOf(next)) next.metadata.generation = (old.metadata.generation ?? 1) + 1;
      delete next.metadata.resourceVersion;
      const warnings = [...fieldWarnings, ...(await this.admit({ operation: 'UPDATE', kind: def.kind, namespace: next.metadata.namespace, name, object: next, oldObject: old, dryRun: !!opts.dryRun, userInfo: opts.user ?? SYSTEM_USER }))];
      if (opts.dryRun) return { object: withRv(next, kv.modRevision), warnings };
      const res = await this.store.put(key, encode(next), { expectModRevision: kv.modRevision });
      if (res.ok) return { object: withRv(next, res.revision), warnings };
      if (wanted !== undefined || attempt >= 5) throw conflict(def.kind, name);
    }
  }

  /** patch applies a JSON merge patch (RFC 7386) to the object or, with subresource 'status', to its status. */
  async patch(def: KindDefinition, ns: string | undefined, name: string, patch: unknown, opts: WriteOptions & { subresource?: 'status' } = {}): Promise<WriteOutcome> {
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) throw new ApiError(400, 'BadRequest', 'a merge patch must be a JSON object');
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(def, ns, name);
      const merged = applyMergePatch(current, patch) as ResourceObject;
      const rv = (patch as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
      merged.metadata = { ...merged.metadata, resourceVersion: rv ?? current.metadata.resourceVersion };
      try {
        if (opts.subresource === 'status') return await this.updateStatus(def, ns, name, merged, opts);
        return await this.update(def, ns, name, merged, opts);
      } catch (err) {
        if (rv === undefined && err instanceof ApiError && err.reason === 'Conflict' && attempt < 5) continue;
        throw err;
      }
    }
  }

  /** updateStatus replaces only `status` (no generation bump, no admission): the controllers' write path. */
  async updateStatus(def: KindDefinition, ns: string | undefined, name: string, input: unknown, opts: WriteOptions = {}): Promise<WriteOutcome> {
    const obj = input as ResourceObject;
    const key = keyOf(def, ns, name);
    const kv = await this.store.get(key);
    if (!kv) throw notFound(def.kind, name);
    const wanted = obj?.metadata?.resourceVersion;
    if (wanted !== undefined && wanted !== String(kv.modRevision)) throw conflict(def.kind, name);
    const old = decode(def, kv.value, kv.modRevision);
    const next: ResourceObject = { ...old, status: obj.status };
    delete next.metadata.resourceVersion;
    if (opts.dryRun) return { object: withRv(next, kv.modRevision), warnings: [] };
    const res = await this.store.put(key, encode(next), { expectModRevision: kv.modRevision });
    if (!res.ok) throw conflict(def.kind, name);
    return { object: withRv(next, res.revision), warnings: [] };
  }

  async delete(def: KindDefinition, ns: string | undefined, name: string, opts: WriteOptions & { resourceVersion?: string } = {}): Promise<WriteOutcome> {
    const key = keyOf(def, ns, name);
    const kv = await this.store.get(key);
    if (!kv) throw notFound(def.kind, name);
    if (opts.resourceVersion !== undefined && opts.resourceVersion !== String(kv.modRevision)) throw conflict(def.kind, name);
    const old = decode(def, kv.value, kv.modRevision);
    const warnings = await this.admit({ operation: 'DELETE', kind: def.kind, namespace: ns, name, oldObject: old, dryRun: !!opts.dryRun, userInfo: opts.user ?? SYSTEM_USER });
    if (opts.dryRun) return { object: old, warnings };
    const res = await this.store.delete(key, { expectModRevision: kv.modRevision });
    if (!res.ok) throw conflict(def.kind, name);
    return { object: old, warnings };
  }

  /**
   * watch streams ADDED/MODIFIED/DELETED events. With a resourceVersion, events after it (410 Gone if
   * compacted); without one (or "0"), first an ADDED for every existing object, then live events.
   * A label selector turns transitions into and out of the selection into ADDED and DELETED.
   */
  async watch(def: KindDefinition, ns: string | undefined, opts: { resourceVersion?: string; labelSelector?: string }, onEvent: (ev: ResourceEvent) => void, onClose?: (err?: Error) => void): Promise<Watcher> {
    const selector = parseLabelSelector(opts.labelSelector);
    const prefix = prefixOf(def, ns);
    let after: number;
    if (opts.resourceVersion && opts.resourceVersion !== '0') {
      after = Number(opts.resourceVersion);
      if (!Number.isInteger(after) || after < 0) throw new ApiError(400, 'BadRequest', `resourceVersion "${opts.resourceVersion}" is not a revision number`);
    } else {
      const listed = await this.list(def, ns, { labelSelector: opts.labelSelector });
      for (const o of listed.items) onEvent({ type: 'ADDED', object: o });
      after = Number(listed.resourceVersion);
    }
    try {
      return await this.store.watch(prefix, { afterRevision: after, onEvent: (ev) => translateEvent(def, ev, selector, onEvent), onClose });
    } catch (err) {
      if (err instanceof CompactedError) throw gone(`too old resource version: ${after} (${err.compacted}); list again and watch from the list's resourceVersion`);
      throw err;
    }
  }

  private prepare(def: KindDefinition, ns: string | undefined, input: unknown, opts: WriteOptions): { obj: ResourceObject; warnings: string[] } {
    const obj = structuredClone(input) as ResourceObject;
    let fields: { warnings: string[]; errors: FieldError[] } = { warnings: [], errors: [] };
    if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
      obj.apiVersion ??= apiVersionOf(def);
      // A manifest written for a legacy alias is the same object: it is stored under the kind's own apiVersion.
      if (def.legacyApiVersions?.includes(obj.apiVersion)) obj.apiVersion = apiVersionOf(def);
      obj.kind ??= def.kind;
      if (def.namespaced && obj.metadata && typeof obj.metadata === 'object' && obj.metadata.namespace === undefined) obj.metadata.namespace = ns;
      // Unknown fields are pruned first, so the schema and the kind's own checks never see them twice.
      fields = checkFields(def, obj, opts.fieldValidation, opts.duplicates);
    }
    const errs = [...fields.errors, ...this.validator.validate(def, obj, ns)];
    if (errs.length) throw invalid(def.kind, String((obj as ResourceObject)?.metadata?.name ?? ''), errs);
    return { obj, warnings: fields.warnings };
  }

  private async admit(req: AdmissionRequest): Promise<string[]> {
    const warnings: string[] = [];
    const denials: string[] = [];
    for (const hook of this.hooks) {
      const res = await hook.admit(req);
      if (res.warnings) warnings.push(...res.warnings);
      // Messages name their own source (a constraint, a Pod Security check); a bare denial names the hook.
      if (!res.allowed) denials.push(...(res.messages?.length ? res.messages : [`denied by ${hook.name}`]));
    }
    if (denials.length) {
      const err = new ApiError(403, 'Forbidden', `admission denied the request: ${denials.join('; ')}`, { kind: req.kind, name: req.name, causes: denials.map((m) => ({ reason: 'FieldValueForbidden', message: m, field: '' })) });
      err.warnings = warnings;
      throw err;
    }
    return warnings;
  }
}

function translateEvent(def: KindDefinition, ev: WatchEvent, selector: LabelSelector, onEvent: (ev: ResourceEvent) => void): void {
  if (ev.type === 'delete') {
    const old = decode(def, ev.kv.value, ev.revision);
    if (selector.matches(old.metadata.labels)) onEvent({ type: 'DELETED', object: old });
    return;
  }
  const obj = decode(def, ev.kv.value, ev.revision);
  const now = selector.matches(obj.metadata.labels);
  if (!ev.prevKv) {
    if (now) onEvent({ type: 'ADDED', object: obj });
    return;
  }
  if (selector.empty) {
    onEvent({ type: 'MODIFIED', object: obj });
    return;
  }
  const before = selector.matches(decode(def, ev.prevKv.value, ev.prevKv.modRevision).metadata.labels);
  if (now && before) onEvent({ type: 'MODIFIED', object: obj });
  else if (now) onEvent({ type: 'ADDED', object: obj });
  else if (before) onEvent({ type: 'DELETED', object: obj });
}

/** keyOf is the store key of one object: /registry/[GROUP/]PLURAL/[NAMESPACE/]NAME. */
export function keyOf(def: KindDefinition, ns: string | undefined, name: string): string {
  return def.namespaced ? `${kindPrefix(def)}${ns ?? 'default'}/${name}` : `${kindPrefix(def)}${name}`;
}

function prefixOf(def: KindDefinition, ns: string | undefined): string {
  return def.namespaced && ns ? `${kindPrefix(def)}${ns}/` : kindPrefix(def);
}

/**
 * Skiff's own kinds and the core group's live at /registry/PLURAL/, other groups' at
 * /registry/GROUP/PLURAL/. Namespace and Event moved from skiff.dev to the core group and kept their keys.
 */
function kindPrefix(def: KindDefinition): string {
  const g = groupOf(def);
  return g === DEFAULT_GROUP || g === CORE_GROUP ? `/registry/${def.plural}/` : `/registry/${g}/${def.plural}/`;
}

function encode(obj: ResourceObject): string {
  return JSON.stringify(obj);
}

/**
 * decode reads a stored object. Its apiVersion is the kind's own: objects stored under a legacy alias
 * (a Namespace written as `skiff.dev/v1` before it moved to the core group) come back as `v1`.
 */
function decode(def: KindDefinition, text: string, revision: number): ResourceObject {
  const obj = JSON.parse(text) as ResourceObject;
  obj.metadata.resourceVersion = String(revision);
  if (def.legacyApiVersions) obj.apiVersion = apiVersionOf(def);
  return obj;
}

function withRv(obj: ResourceObject, revision: number): ResourceObject {
  return { ...obj, metadata: { ...obj.metadata, resourceVersion: String(revision) } };
}

function specOf(o: ResourceObject): string {
  if (o.spec !== undefined) return JSON.stringify(o.spec);
  // Kinds without spec (Event, Namespace) count everything but metadata and status as their spec.
  const { metadata: _m, status: _s, ...rest } = o;
  return JSON.stringify(rest);
}
