import type { RangeResult, Store, Watcher, WatchEvent } from '../store/index.js';
import { CompactedError, FutureRevisionError } from '../store/index.js';

import { badRequest, expired } from './errors.js';
import { parseFieldSelector } from './field-selector.js';
import { apiVersionOf, CORE_GROUP, DEFAULT_GROUP, groupOf, type KindDefinition, type ResourceObject } from './kinds/types.js';
import { parseLabelSelector } from './label-selector.js';
import { decodeContinue, encodeContinue, type ListOptions, tooLargeResourceVersion } from './list-options.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface ResourceEvent {
  type: WatchEventType;
  object: ResourceObject;
}

export type { ListOptions } from './list-options.js';

export interface ListResult {
  items: ResourceObject[];
  resourceVersion: string;
  continue?: string;
  /** How many objects the next pages hold, when known (no selectors, and the rest was read anyway). */
  remainingItemCount?: number;
}

export interface WatchOptions {
  resourceVersion?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** true: ADDED for every existing object first; false: none; unset: as `resourceVersion` says (unset or `0`: yes). */
  sendInitialEvents?: boolean;
  /** Called after the initial ADDED events of `sendInitialEvents: true`, with the revision they were listed at. */
  onInitialEventsEnd?: (resourceVersion: string) => void;
  /** How long to wait for a `resourceVersion` the store has not reached (default {@link FUTURE_REVISION_WAIT_MS}). */
  futureRevisionWaitMs?: number;
}

/**
 * How long a list or watch at a revision beyond the store's waits for the store to reach it before
 * the 504 `ResourceVersionTooLarge` (kube-apiserver's watch cache blocks for 3 s). A client that read
 * a revision from another server of the same store, or from a write whose event is still on its way,
 * gets its answer instead of an error.
 */
export const FUTURE_REVISION_WAIT_MS = 3000;

/**
 * awaitRevision resolves once the store has reached revision `want`, watching it for at most `waitMs`;
 * then it throws kube's "Too large resource version" (504), which clients retry.
 */
export async function awaitRevision(store: Store, want: number, waitMs = FUTURE_REVISION_WAIT_MS): Promise<void> {
  const current = await store.revision();
  if (want <= current) return;
  await new Promise<void>((resolve, reject) => {
    let watcher: Watcher | undefined;
    let done = false;
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      watcher?.close();
      if (err === undefined) resolve();
      else reject(err);
    };
    const timer = setTimeout(() => {
      store.revision().then((r) => finish(r >= want ? undefined : tooLargeResourceVersion(want, r)), finish);
    }, waitMs);
    // Every key: the revision the client names may come from a write to any kind.
    store.watch('', { afterRevision: current, onEvent: (ev) => ev.revision >= want && finish() }).then((w) => {
      watcher = w;
      if (done) w.close();
    }, finish);
  });
}

/** How many keys one store read returns while a list pages through the store. */
const STORE_CHUNK = 500;

/**
 * listObjects reads a kind's collection with Kubernetes' list semantics. Every page of a paged list
 * reads the store at the revision of the first page (the continue token carries it), so the pages
 * together are one consistent snapshot; once that revision is compacted the token has expired (410).
 */
export async function listObjects(store: Store, def: KindDefinition, ns: string | undefined, opts: ListOptions = {}): Promise<ListResult> {
  const labels = parseLabelSelector(opts.labelSelector);
  const fields = parseFieldSelector(def, opts.fieldSelector);
  const filtered = !labels.empty || !fields.empty;
  const base = kindPrefix(def);
  const prefix = narrowedPrefix(def, ns, fields.pinned('metadata.name'));
  let at: number | undefined;
  let startAfter: string | undefined;
  if (opts.continue) {
    const t = decodeContinue(opts.continue);
    startAfter = base + t.start;
    if (!startAfter.startsWith(prefixOf(def, ns))) throw badRequest('the continue token belongs to another list; start the list again without it');
    at = t.rv || undefined;
  } else if (opts.resourceVersion && opts.resourceVersion !== '0') {
    const want = Number(opts.resourceVersion);
    await awaitRevision(store, want, opts.futureRevisionWaitMs);
    if (opts.resourceVersionMatch === 'Exact') at = want;
  }
  const items: ResourceObject[] = [];
  let last: string | undefined;
  let more = false;
  let remaining: number | undefined;
  scan: for (;;) {
    const page = await rangeAt(store, prefix, { limit: STORE_CHUNK, startAfter, revision: at }, opts, base);
    // Later store reads of this list, and its later pages, read at the first read's revision.
    at ??= page.revision;
    for (let i = 0; i < page.items.length; i++) {
      const kv = page.items[i]!;
      startAfter = kv.key;
      const obj = decodeObject(def, kv.value, kv.modRevision);
      if (!labels.matches(obj.metadata.labels) || !fields.matches(obj)) continue;
      items.push(obj);
      last = kv.key;
      if (opts.limit && items.length >= opts.limit) {
        const rest = page.items.length - i - 1;
        more = rest > 0 || page.more;
        if (more && !filtered && !page.more) remaining = rest;
        break scan;
      }
    }
    if (!page.more) break;
  }
  return {
    items,
    resourceVersion: String(at),
    ...(more && last ? { continue: encodeContinue({ rv: at, start: last.slice(base.length) }) } : {}),
    ...(remaining !== undefined ? { remainingItemCount: remaining } : {}),
  };
}

async function rangeAt(store: Store, prefix: string, range: { limit: number; startAfter?: string; revision?: number }, opts: ListOptions, base: string): Promise<RangeResult> {
  try {
    return await store.range(prefix, range);
  } catch (err) {
    if (err instanceof FutureRevisionError) throw tooLargeResourceVersion(err.requested, err.current);
    if (!(err instanceof CompactedError)) throw err;
    if (!opts.continue) throw expired(`too old resource version: ${err.requested} (${err.compacted}); the store keeps history from revision ${err.compacted}: list without resourceVersion`);
    // As kube-apiserver does, the 410 hands back a token that reads on from the latest revision, for a
    // client that prefers an inconsistent rest of the list to starting over.
    const e = expired(
      `The provided continue parameter is too old to display a consistent list result: revision ${err.requested} has been compacted. ` +
        'Start the list again without the continue parameter, or use the continue token in this response to read the rest at the latest revision ' +
        '(objects created, changed or deleted since the first page may then show up).',
    );
    e.listMeta = { continue: encodeContinue({ rv: 0, start: range.startAfter!.slice(base.length) }) };
    throw e;
  }
}

/**
 * watchObjects streams ADDED/MODIFIED/DELETED events with Kubernetes' watch semantics: after
 * `resourceVersion` (410 `Expired` when compacted), or, without one (or `0`), an ADDED per existing
 * object first. Label and field selectors turn objects entering or leaving the selection into ADDED and
 * DELETED. Resolves once the initial events have been delivered and the store watch runs.
 */
export async function watchObjects(
  store: Store,
  def: KindDefinition,
  ns: string | undefined,
  opts: WatchOptions,
  onEvent: (ev: ResourceEvent) => void,
  onClose?: (err?: Error) => void,
): Promise<Watcher> {
  const labels = parseLabelSelector(opts.labelSelector);
  const fields = parseFieldSelector(def, opts.fieldSelector);
  const rv = opts.resourceVersion && opts.resourceVersion !== '0' ? Number(opts.resourceVersion) : undefined;
  if (rv !== undefined && (!Number.isSafeInteger(rv) || rv < 0)) throw badRequest(`resourceVersion "${opts.resourceVersion}" is not a revision number`);
  if (rv !== undefined) await awaitRevision(store, rv, opts.futureRevisionWaitMs);
  let after: number;
  if (opts.sendInitialEvents ?? rv === undefined) {
    const listed = await listObjects(store, def, ns, { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector });
    for (const o of listed.items) onEvent({ type: 'ADDED', object: o });
    after = Number(listed.resourceVersion);
    if (opts.sendInitialEvents) opts.onInitialEventsEnd?.(listed.resourceVersion);
  } else {
    after = rv ?? (await store.revision());
  }
  const matches = (o: ResourceObject) => labels.matches(o.metadata.labels) && fields.matches(o);
  try {
    return await store.watch(narrowedPrefix(def, ns, fields.pinned('metadata.name')), {
      afterRevision: after,
      onEvent: (ev) => translateEvent(def, ev, matches, !labels.empty || !fields.empty, onEvent),
      onClose,
    });
  } catch (err) {
    if (err instanceof CompactedError) throw expired(`too old resource version: ${after} (${err.compacted})`);
    throw err;
  }
}

function translateEvent(def: KindDefinition, ev: WatchEvent, matches: (o: ResourceObject) => boolean, filtered: boolean, onEvent: (ev: ResourceEvent) => void): void {
  if (ev.type === 'delete') {
    const old = decodeObject(def, ev.kv.value, ev.revision);
    if (matches(old)) onEvent({ type: 'DELETED', object: old });
    return;
  }
  const obj = decodeObject(def, ev.kv.value, ev.revision);
  const now = matches(obj);
  if (!ev.prevKv) {
    if (now) onEvent({ type: 'ADDED', object: obj });
    return;
  }
  if (!filtered) {
    onEvent({ type: 'MODIFIED', object: obj });
    return;
  }
  const before = matches(decodeObject(def, ev.prevKv.value, ev.prevKv.modRevision));
  if (now && before) onEvent({ type: 'MODIFIED', object: obj });
  else if (now) onEvent({ type: 'ADDED', object: obj });
  else if (before) onEvent({ type: 'DELETED', object: obj });
}

/** keyOf is the store key of one object: /registry/PLURAL/[NAMESPACE/]NAME. */
export function keyOf(def: KindDefinition, ns: string | undefined, name: string): string {
  return def.namespaced ? `${kindPrefix(def)}${ns ?? 'default'}/${name}` : `${kindPrefix(def)}${name}`;
}

/** prefixOf is the key prefix of a collection: one namespace's objects, or all of a kind's. */
export function prefixOf(def: KindDefinition, ns: string | undefined): string {
  return def.namespaced && ns ? `${kindPrefix(def)}${ns}/` : kindPrefix(def);
}

/**
 * narrowedPrefix reads only the keys that can hold a name a field selector pins (`metadata.name=x`);
 * the selector still filters, since `x` is also the prefix of longer names.
 */
function narrowedPrefix(def: KindDefinition, ns: string | undefined, name: string | undefined): string {
  if (name === undefined || name === '' || (def.namespaced && !ns)) return prefixOf(def, ns);
  return keyOf(def, ns, name);
}

/**
 * Skiff's own kinds and the core group's live at /registry/PLURAL/, other groups' at
 * /registry/GROUP/PLURAL/. Namespace and Event moved from skiff.dev to the core group and kept their keys.
 */
export function kindPrefix(def: KindDefinition): string {
  const g = groupOf(def);
  return g === DEFAULT_GROUP || g === CORE_GROUP ? `/registry/${def.plural}/` : `/registry/${g}/${def.plural}/`;
}

/**
 * decodeObject parses a stored object and sets its resourceVersion from the store revision. Its
 * apiVersion is the kind's own: objects stored under a legacy alias (a Namespace written as
 * `skiff.dev/v1` before it moved to the core group) come back as `v1`.
 */
export function decodeObject(def: KindDefinition, text: string, revision: number): ResourceObject {
  const obj = JSON.parse(text) as ResourceObject;
  obj.metadata.resourceVersion = String(revision);
  if (def.legacyApiVersions) obj.apiVersion = apiVersionOf(def);
  return obj;
}
