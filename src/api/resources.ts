import { randomUUID } from 'node:crypto';

import type { Store, Watcher } from '../store/index.js';

import type { AdmissionHook, AdmissionRequest } from './admission.js';
import { decodeObject as decode, keyOf, listObjects, type ListOptions, type ListResult, type ResourceEvent, watchObjects, type WatchOptions } from './collection.js';
import type { DuplicateField } from './duplicate-keys.js';
import { alreadyExists, ApiError, conflict, invalid, notFound } from './errors.js';
import { checkFields, type FieldValidation } from './field-validation.js';
import { acceptsApiVersion, type KindRegistry } from './kinds/registry.js';
import { apiVersionOf, type FieldError, groupOf, type KindDefinition, type ResourceObject } from './kinds/types.js';
import { FieldManager } from './patch/field-manager.js';
import { applyJsonPatch, decodeJsonPatch } from './patch/json-patch.js';
import { deepEqual, isJsonObject } from './patch/json-value.js';
import { applyMergePatch } from './patch/merge-patch.js';
import { applyStrategicAsMerge } from './patch/strategic-patch.js';
import { Validator } from './validation.js';
import { inApiVersion, toStorageVersion } from './versions.js';

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
  /** Who the write is on behalf of, recorded in managedFields; in-process callers default to {@link SERVER_MANAGER}. */
  fieldManager?: string;
}

/** How a PATCH body applies. */
export type PatchType = 'merge' | 'strategic' | 'json';

/** The field manager of writes made inside the server (controllers, events) that name none. */
export const SERVER_MANAGER = 'skiff-server';

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
  private readonly validator: Validator;
  private readonly fields: FieldManager;
  private readonly hooks: AdmissionHook[];

  constructor(
    readonly store: Store,
    readonly kinds: KindRegistry,
    shared?: { validator: Validator; fields: FieldManager; hooks: AdmissionHook[] },
  ) {
    this.validator = shared?.validator ?? new Validator();
    this.fields = shared?.fields ?? new FieldManager();
    this.hooks = shared?.hooks ?? [];
  }

  addAdmissionHook(hook: AdmissionHook): void {
    this.hooks.push(hook);
  }

  /**
   * withStore is the same service over another store (a fenced one, for the writes of controllers that
   * run on the cluster's leader only): the kinds, the field manager and the admission hooks are shared,
   * hooks added later included, so those writes pass the same admission as every other.
   */
  withStore(store: Store): ResourceService {
    return new ResourceService(store, this.kinds, { validator: this.validator, fields: this.fields, hooks: this.hooks });
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

  /** list reads a collection with Kubernetes' list semantics (selectors, paging, resourceVersion): see `collection.ts`. */
  async list(def: KindDefinition, ns: string | undefined, opts: ListOptions = {}): Promise<ListResult> {
    return listObjects(this.store, def, ns, opts);
  }

  async create(def: KindDefinition, ns: string | undefined, input: unknown, opts: WriteOptions & { managed?: boolean } = {}): Promise<WriteOutcome> {
    const { obj, warnings: fieldWarnings } = this.prepare(def, ns, input, opts);
    const name = obj.metadata.name;
    delete obj.status;
    // An apply brings its own managedFields (`managed`); any other create is an Update by its manager.
    if (!opts.managed) setManagedFields(obj, this.fields.recordUpdate(def, undefined, obj, requestManagedFields(obj.metadata.managedFields, undefined), opts.fieldManager ?? SERVER_MANAGER));
    const now = new Date();
    obj.metadata = {
      ...obj.metadata,
      uid: randomUUID(),
      generation: 1,
      creationTimestamp: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    };
    delete obj.metadata.resourceVersion;
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
   * updateStatus writes status. managedFields in the body replace the stored ones (`[{}]` clears
   * them); absent or empty, the stored ones are kept; either way the write is recorded for its manager.
   */
  async update(def: KindDefinition, ns: string | undefined, name: string, input: unknown, opts: WriteOptions = {}): Promise<WriteOutcome> {
    const { obj, warnings: fieldWarnings } = this.prepare(def, ns, input, opts);
    if (obj.metadata.name !== name) throw invalid(def.kind, name, [{ field: 'metadata.name', message: `does not match the name in the URL ("${name}")` }]);
    const out = await this.rewrite(def, ns, name, obj.metadata.resourceVersion, opts, (old) => {
      const next: ResourceObject = {
        ...obj,
        metadata: { ...obj.metadata, uid: old.metadata.uid, creationTimestamp: old.metadata.creationTimestamp, generation: old.metadata.generation ?? 1 },
      };
      if (old.status !== undefined) next.status = old.status;
      else delete next.status;
      const base = requestManagedFields(obj.metadata.managedFields, old.metadata.managedFields);
      setManagedFields(next, this.fields.recordUpdate(def, old, next, base, opts.fieldManager ?? SERVER_MANAGER));
      return next;
    });
    return fieldWarnings.length ? { ...out, warnings: [...fieldWarnings, ...out.warnings] } : out;
  }

  /**
   * patch applies a JSON merge patch (RFC 7386, the default), a strategic merge patch (taken as a
   * merge patch, as kube does for kinds without patch strategies) or a JSON patch (RFC 6902) to the
   * object or, with subresource 'status', to its status. A `resourceVersion` the patch sets is a
   * precondition; otherwise the patch is re-applied to the latest object when a write races it.
   */
  async patch(def: KindDefinition, ns: string | undefined, name: string, patch: unknown, opts: WriteOptions & { subresource?: 'status'; type?: PatchType; apiVersion?: string } = {}): Promise<WriteOutcome> {
    const type = opts.type ?? 'merge';
    const ops = type === 'json' ? decodeJsonPatch(patch) : undefined;
    if (type !== 'json' && !isJsonObject(patch)) throw new ApiError(400, 'BadRequest', `a ${type === 'strategic' ? 'strategic ' : ''}merge patch must be a JSON object`);
    for (let attempt = 0; ; attempt++) {
      // The patch applies to the object in the version the request names (a kind served in several), as kube converts it first.
      const current = inApiVersion(await this.get(def, ns, name), opts.apiVersion ?? apiVersionOf(def));
      const patched = (ops ? applyJsonPatch(current, ops) : type === 'strategic' ? applyStrategicAsMerge(current, patch) : applyMergePatch(current, patch)) as ResourceObject;
      if (!isJsonObject(patched) || !isJsonObject(patched.metadata)) throw invalid(def.kind, name, [{ field: 'metadata', message: 'the patch removed the object or its metadata' }]);
      const rv = patched.metadata.resourceVersion;
      const explicit = rv !== undefined && rv !== current.metadata.resourceVersion;
      patched.metadata = { ...patched.metadata, resourceVersion: rv ?? current.metadata.resourceVersion };
      try {
        if (opts.subresource === 'status') return await this.updateStatus(def, ns, name, patched, opts);
        return await this.update(def, ns, name, patched, opts);
      } catch (err) {
        if (!explicit && err instanceof ApiError && err.reason === 'Conflict' && !err.details?.causes && attempt < 5) continue;
        throw err;
      }
    }
  }

  /**
   * apply is server-side apply: the configuration merges into the object field by field for
   * `fieldManager` (required), or creates it. Fields another manager owns with a different value are a
   * 409 unless `force`; fields this manager stops applying are removed when no one else owns them.
   */
  async apply(def: KindDefinition, ns: string | undefined, name: string, input: unknown, opts: WriteOptions & { subresource?: 'status'; force?: boolean } = {}): Promise<WriteOutcome & { created: boolean }> {
    const manager = opts.fieldManager;
    if (!manager) throw new ApiError(400, 'BadRequest', 'server-side apply needs a field manager (the fieldManager query parameter)');
    const config = this.applyConfig(def, ns, name, input);
    const req = { manager, force: !!opts.force, subresource: opts.subresource };
    for (let attempt = 0; ; attempt++) {
      const live = await this.tryGet(def, ns, name);
      if (!live) {
        if (opts.subresource) throw notFound(def.kind, name);
        try {
          return { ...(await this.create(def, ns, this.fields.apply(def, undefined, config, req), { ...opts, managed: true })), created: true };
        } catch (err) {
          if (err instanceof ApiError && err.reason === 'AlreadyExists' && attempt < 5) continue;
          throw err;
        }
      }
      try {
        const rewrite = (old: ResourceObject) => {
          const next = this.fields.apply(def, old, config, req);
          if (opts.subresource === 'status') return next;
          // The merged object is read in the configuration's version, so that version's defaults apply.
          next.apiVersion = config.apiVersion;
          return this.prepare(def, ns, next, opts).obj;
        };
        return { ...(await this.rewrite(def, ns, name, config.metadata.resourceVersion, opts, rewrite, opts.subresource)), created: false };
      } catch (err) {
        // Deleted between the read and the write: create it after all.
        if (err instanceof ApiError && err.reason === 'NotFound' && attempt < 5) continue;
        throw err;
      }
    }
  }

  /** updateStatus replaces only `status` (no generation bump, no admission): the controllers' write path. */
  async updateStatus(def: KindDefinition, ns: string | undefined, name: string, input: unknown, opts: WriteOptions = {}): Promise<WriteOutcome> {
    const obj = input as ResourceObject;
    const wanted = obj?.metadata?.resourceVersion;
    return this.rewrite(
      def,
      ns,
      name,
      wanted,
      opts,
      (old) => {
        const next: ResourceObject = { ...old, metadata: { ...old.metadata }, status: obj?.status };
        if (next.status === undefined) delete next.status;
        setManagedFields(next, this.fields.recordUpdate(def, old, next, old.metadata.managedFields, opts.fieldManager ?? SERVER_MANAGER, 'status'));
        return next;
      },
      'status',
    );
  }

  /**
   * rewrite is the one read-modify-write loop: it reads the object, checks a `resourceVersion`
   * precondition, builds the next version, bumps `generation` when the spec changed, admits it (not
   * for status), and stores it unless it equals what is stored (then nothing is written, and
   * resourceVersion and generation stay). Without a precondition a racing write makes it try again.
   */
  private async rewrite(def: KindDefinition, ns: string | undefined, name: string, wanted: string | undefined, opts: WriteOptions, build: (old: ResourceObject) => ResourceObject, subresource?: 'status'): Promise<WriteOutcome> {
    const key = keyOf(def, ns, name);
    for (let attempt = 0; ; attempt++) {
      const kv = await this.store.get(key);
      if (!kv) throw notFound(def.kind, name);
      if (wanted !== undefined && wanted !== String(kv.modRevision)) throw this.conflict(def, name);
      const old = decode(def, kv.value, kv.modRevision);
      const next = build(old);
      delete next.metadata.resourceVersion;
      next.metadata.generation = old.metadata.generation ?? 1;
      if (subresource !== 'status' && specOf(old) !== specOf(next)) next.metadata.generation += 1;
      const warnings =
        subresource === 'status' ? [] : await this.admit({ operation: 'UPDATE', kind: def.kind, namespace: next.metadata.namespace, name, object: next, oldObject: old, dryRun: !!opts.dryRun, userInfo: opts.user ?? SYSTEM_USER });
      if (sameStored(old, next)) return { object: old, warnings };
      if (opts.dryRun) return { object: withRv(next, kv.modRevision), warnings };
      const res = await this.store.put(key, encode(next), { expectModRevision: kv.modRevision });
      if (res.ok) return { object: withRv(next, res.revision), warnings };
      if (wanted !== undefined || attempt >= 5) throw this.conflict(def, name);
    }
  }

  /** applyConfig checks an applied configuration's envelope against the request before it is merged. */
  private applyConfig(def: KindDefinition, ns: string | undefined, name: string, input: unknown): ResourceObject {
    if (!isJsonObject(input)) throw new ApiError(400, 'BadRequest', 'the applied configuration must be an object (YAML or JSON)');
    const config = structuredClone(input) as ResourceObject;
    const meta = config.metadata;
    if (!isJsonObject(meta)) throw invalid(def.kind, name, [{ field: 'metadata', message: 'Required value: an object with at least a name' }]);
    if (meta.name !== name) throw new ApiError(400, 'BadRequest', `the name of the applied object (${JSON.stringify(meta.name ?? null)}) does not match the name in the URL ("${name}")`);
    if (meta.managedFields !== undefined && meta.managedFields !== null) throw new ApiError(400, 'BadRequest', 'metadata.managedFields must not be set in an applied configuration; the server keeps them');
    if (def.namespaced && meta.namespace === undefined) meta.namespace = ns;
    const errs: FieldError[] = [];
    // A manifest written for a legacy alias (skiff.dev/v1 Namespace) is the same object under the kind's own apiVersion;
    // one in another served version keeps it until the merge, so managedFields name the version applied.
    if (typeof config.apiVersion === 'string' && def.legacyApiVersions?.includes(config.apiVersion)) config.apiVersion = apiVersionOf(def);
    if (typeof config.apiVersion !== 'string' || !acceptsApiVersion(def, config.apiVersion)) errs.push({ field: 'apiVersion', message: `must be ${apiVersionOf(def)} for ${def.plural}`, reason: 'FieldValueInvalid' });
    if (config.kind !== def.kind) errs.push({ field: 'kind', message: `must be ${def.kind} for ${def.plural}`, reason: 'FieldValueInvalid' });
    if (def.namespaced && meta.namespace !== ns) errs.push({ field: 'metadata.namespace', message: `does not match the namespace of the request ("${ns}")` });
    if (errs.length) throw invalid(def.kind, name, errs);
    return config;
  }

  private conflict(def: KindDefinition, name: string): ApiError {
    return conflict(def.kind, name, `${def.plural}.${groupOf(def)}`);
  }

  async delete(def: KindDefinition, ns: string | undefined, name: string, opts: WriteOptions & { resourceVersion?: string } = {}): Promise<WriteOutcome> {
    const key = keyOf(def, ns, name);
    const kv = await this.store.get(key);
    if (!kv) throw notFound(def.kind, name);
    if (opts.resourceVersion !== undefined && opts.resourceVersion !== String(kv.modRevision)) throw this.conflict(def, name);
    const old = decode(def, kv.value, kv.modRevision);
    const warnings = await this.admit({ operation: 'DELETE', kind: def.kind, namespace: ns, name, oldObject: old, dryRun: !!opts.dryRun, userInfo: opts.user ?? SYSTEM_USER });
    if (opts.dryRun) return { object: old, warnings };
    const res = await this.store.delete(key, { expectModRevision: kv.modRevision });
    if (!res.ok) throw this.conflict(def, name);
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
      // A manifest in another served version or a legacy alias is the same object: stored under the kind's own apiVersion.
      toStorageVersion(def, obj);
      obj.kind ??= def.kind;
      if (def.namespaced && obj.metadata && typeof obj.metadata === 'object' && obj.metadata.namespace === undefined) obj.metadata.namespace = ns;
      def.normalize?.(obj);
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

/** sameStored tells whether a write would store exactly what is stored (resourceVersion aside). */
function sameStored(old: ResourceObject, next: ResourceObject): boolean {
  const { resourceVersion: _a, ...om } = old.metadata;
  const { resourceVersion: _b, ...nm } = next.metadata;
  return deepEqual({ ...old, metadata: om }, { ...next, metadata: nm });
}

/**
 * requestManagedFields is kube's rule for managedFields sent with a write: absent or empty keeps the
 * stored ones, a single empty entry (`[{}]`) clears them, anything else replaces them.
 */
function requestManagedFields(sent: unknown, stored: unknown): unknown {
  if (sent === undefined || sent === null || (Array.isArray(sent) && sent.length === 0)) return stored;
  if (Array.isArray(sent) && sent.length === 1 && isJsonObject(sent[0]) && Object.keys(sent[0]).length === 0) return [];
  return sent;
}

function setManagedFields(obj: ResourceObject, entries: unknown[] | undefined): void {
  if (entries) obj.metadata.managedFields = entries;
  else delete obj.metadata.managedFields;
}
