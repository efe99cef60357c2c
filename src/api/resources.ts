import { randomUUID } from 'node:crypto';

import type { Store, Watcher } from '../store/index.js';

import type { AdmissionHook, AdmissionRequest } from './admission.js';
import { decodeObject as decode, keyOf, listObjects, type ListOptions, type ListResult, type ResourceEvent, watchObjects, type WatchOptions } from './collection.js';
import type { DuplicateField } from './duplicate-keys.js';
import { alreadyExists, ApiError, conflict, invalid, notFound } from './errors.js';
import { checkFields, type FieldValidation } from './field-validation.js';
import type { KindRegistry } from './kinds/registry.js';
import { apiVersionOf, type FieldError, type KindDefinition, type ResourceObject } from './kinds/types.js';
import { applyMergePatch } from './merge-patch.js';
import { Validator } from './validation.js';

export { keyOf };
export type { ListOptions, ListResult, ResourceEvent, WatchOptions };
export type { WatchEventType } from './collection.js';

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
    return decode(kv.value, kv.modRevision);
  }

  async tryGet(def: KindDefinition, ns: string | undefined, name: string): Promise<ResourceObject | undefined> {
    const kv = await this.store.get(keyOf(def, ns, name));
    return kv ? decode(kv.value, kv.modRevision) : undefined;
  }

  /** list reads a collection with Kubernetes' list semantics (selectors, paging, resourceVersion): see `collection.ts`. */
  async list(def: KindDefinition, ns: string | undefined, opts: ListOptions = {}): Promise<ListResult> {
    return listObjects(this.store, def, ns, opts);
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
      const old = decode(kv.value, kv.modRevision);
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
    const old = decode(kv.value, kv.modRevision);
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
    const old = decode(kv.value, kv.modRevision);
    const warnings = await this.admit({ operation: 'DELETE', kind: def.kind, namespace: ns, name, oldObject: old, dryRun: !!opts.dryRun, userInfo: opts.user ?? SYSTEM_USER });
    if (opts.dryRun) return { object: old, warnings };
    const res = await this.store.delete(key, { expectModRevision: kv.modRevision });
    if (!res.ok) throw conflict(def.kind, name);
    return { object: old, warnings };
  }

  /**
   * watch streams ADDED/MODIFIED/DELETED events. With a resourceVersion, events after it (410 Expired if
   * compacted); without one (or "0"), first an ADDED for every existing object, then live events.
   * Label and field selectors turn transitions into and out of the selection into ADDED and DELETED.
   */
  async watch(def: KindDefinition, ns: string | undefined, opts: WatchOptions, onEvent: (ev: ResourceEvent) => void, onClose?: (err?: Error) => void): Promise<Watcher> {
    return watchObjects(this.store, def, ns, opts, onEvent, onClose);
  }

  private prepare(def: KindDefinition, ns: string | undefined, input: unknown, opts: WriteOptions): { obj: ResourceObject; warnings: string[] } {
    const obj = structuredClone(input) as ResourceObject;
    let fields: { warnings: string[]; errors: FieldError[] } = { warnings: [], errors: [] };
    if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
      obj.apiVersion ??= apiVersionOf(def);
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

function encode(obj: ResourceObject): string {
  return JSON.stringify(obj);
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
