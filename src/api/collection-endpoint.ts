import type http from 'node:http';

import type { ResourceEvent } from './collection.js';
import { ApiError } from './errors.js';
import { apiVersionOf, type KindDefinition, type ResourceObject } from './kinds/types.js';
import { type CollectionQuery, parseCollectionQuery } from './list-options.js';
import type { ResourceService } from './resources.js';
import { negotiate, parseIncludeObject, partialObjectMetadata, type ResponseShape, toTable } from './table.js';
import { inApiVersion } from './versions.js';

/** The annotation on the bookmark that ends a watch's initial events (`sendInitialEvents=true`). */
export const INITIAL_EVENTS_END_ANNOTATION = 'k8s.io/initial-events-end';

export interface CollectionEndpointOptions {
  resources: ResourceService;
  /** Open watch responses, so that closing the server can end them. */
  watches: Set<http.ServerResponse>;
  /** How much a watch may queue for a client that does not read before it is dropped. */
  maxStreamBuffer: number;
  /** How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK (kube-apiserver: about a minute). */
  bookmarkIntervalMs?: number;
  /**
   * kube-apiserver's `--min-request-timeout`: a watch without `timeoutSeconds` ends after a random time
   * between this and twice this (default 1800 s), so that clients reconnect at spread-out moments and
   * long-lived watches rebalance across servers.
   */
  minRequestTimeoutMs?: number;
  /** How long a list or watch at a `resourceVersion` beyond the store's waits for it (default 3 s). */
  futureRevisionWaitMs?: number;
}

const DEFAULT_BOOKMARK_INTERVAL_MS = 60_000;
const DEFAULT_MIN_REQUEST_TIMEOUT_MS = 1800_000;

/**
 * CollectionEndpoint answers the reads of the resource API: lists, single objects and watches, each as
 * the objects, a `Table` (what `kubectl get` and `skiff get` print) or metadata only, as the Accept
 * header asks (`table.ts`), with the list and watch parameters of `list-options.ts`.
 */
export class CollectionEndpoint {
  constructor(private readonly opts: CollectionEndpointOptions) {}

  /** isWatch tells a watch request from a list (`watch=true|1`). */
  static isWatch(q: URLSearchParams): boolean {
    return q.get('watch') === 'true' || q.get('watch') === '1';
  }

  /** list answers GET on a collection, its objects in `apiVersion` (the version the request named). */
  async list(def: KindDefinition, ns: string | undefined, q: URLSearchParams, accept: string | undefined, apiVersion = apiVersionOf(def)): Promise<unknown> {
    const shape = negotiate(accept, true);
    const include = parseIncludeObject(q.get('includeObject'));
    const query = parseCollectionQuery(q);
    const out = await this.opts.resources.list(def, ns, { ...query, futureRevisionWaitMs: this.opts.futureRevisionWaitMs });
    const items = out.items.map((o) => inApiVersion(o, apiVersion));
    const metadata = {
      resourceVersion: out.resourceVersion,
      ...(out.continue ? { continue: out.continue } : {}),
      ...(out.remainingItemCount !== undefined ? { remainingItemCount: out.remainingItemCount } : {}),
    };
    if (shape.as === 'Table') return toTable(def, items, { version: shape.version, include, ...metadata });
    if (shape.as === 'PartialObjectMetadata') return { kind: 'PartialObjectMetadataList', apiVersion: `meta.k8s.io/${shape.version}`, metadata, items: items.map((o) => partialObjectMetadata(o, shape.version)) };
    return { apiVersion, kind: `${def.kind}List`, metadata, items };
  }

  /** get answers GET on one object, in `apiVersion`. */
  async get(def: KindDefinition, ns: string | undefined, name: string, q: URLSearchParams, accept: string | undefined, apiVersion = apiVersionOf(def)): Promise<unknown> {
    const shape = negotiate(accept, false);
    const include = parseIncludeObject(q.get('includeObject'));
    const obj = await this.opts.resources.get(def, ns, name);
    return shaped(def, inApiVersion(obj, apiVersion), shape, include, false);
  }

  /**
   * watch streams events as JSON lines. A revision the store has compacted (or not reached) is
   * answered as kube-apiserver does: 200 and one ERROR event carrying the `Status` (410 `Expired`), on
   * which clients list again. Table watches send the column definitions with the first event only.
   */
  async watch(req: http.IncomingMessage, res: http.ServerResponse, def: KindDefinition, ns: string | undefined, q: URLSearchParams, accept: string | undefined, apiVersion = apiVersionOf(def)): Promise<void> {
    const shape = negotiate(accept, false);
    const include = parseIncludeObject(q.get('includeObject'));
    const query = parseCollectionQuery(q);
    let closed = false;
    let headersSent = false;
    const start = () => {
      if (res.headersSent) return;
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'cache-control': 'no-store' });
    };
    const pending: string[] = [];
    // Events that arrive together (a replay, a burst) go out in one write.
    const flush = () => {
      if (!closed && pending.length) res.write(pending.join(''));
      pending.length = 0;
    };
    const send = (type: string, object: unknown) => {
      if (closed) return;
      start();
      // A client that stops reading must not make the server buffer without bound: drop it; it resumes from its last resourceVersion.
      if (res.writableLength > this.opts.maxStreamBuffer) {
        closed = true;
        res.destroy();
        return;
      }
      pending.push(JSON.stringify({ type, object }) + '\n');
      if (pending.length === 1) queueMicrotask(flush);
    };
    let delivered = 0;
    // As kube-apiserver's watch encoder: a Table carries its column definitions in the first event only, a bookmark included.
    const render = (obj: ResourceObject) => {
      const out = shaped(def, obj, shape, include, headersSent);
      headersSent = true;
      return out;
    };
    const onEvent = (ev: ResourceEvent) => {
      delivered = Math.max(delivered, Number(ev.object.metadata.resourceVersion ?? 0));
      send(ev.type, render(inApiVersion(ev.object, apiVersion)));
    };
    // A bookmark is an object of the kind with nothing but a resourceVersion (and annotations), shaped as the events are.
    const bookmark = (rv: string, annotations?: Record<string, string>) =>
      send('BOOKMARK', render({ apiVersion, kind: def.kind, metadata: { resourceVersion: rv, ...(annotations ? { annotations } : {}) } as ResourceObject['metadata'] }));
    let watcher;
    try {
      watcher = await this.opts.resources.watch(
        def,
        ns,
        {
          resourceVersion: query.resourceVersion,
          labelSelector: query.labelSelector,
          fieldSelector: query.fieldSelector,
          sendInitialEvents: query.sendInitialEvents,
          futureRevisionWaitMs: this.opts.futureRevisionWaitMs,
          onInitialEventsEnd: (rv) => {
            delivered = Math.max(delivered, Number(rv));
            if (query.allowWatchBookmarks) bookmark(rv, { [INITIAL_EVENTS_END_ANNOTATION]: 'true' });
          },
        },
        onEvent,
        () => {
          closed = true;
          res.end();
        },
      );
    } catch (err) {
      if (!(err instanceof ApiError) || (err.httpStatus !== 410 && err.httpStatus !== 504) || closed) throw err;
      send('ERROR', err.toStatus());
      queueMicrotask(() => {
        flush();
        res.end();
      });
      return;
    }
    start();
    res.flushHeaders();
    this.opts.watches.add(res);
    const timers = [this.timeout(res, query), this.bookmarks(query, () => delivered, bookmark)];
    res.on('close', () => {
      closed = true;
      watcher.close();
      this.opts.watches.delete(res);
      for (const t of timers) if (t) clearTimeout(t);
    });
    req.on('close', () => {
      if (!res.writableEnded) res.end();
    });
  }

  /**
   * timeout ends the watch after `timeoutSeconds`, or, without it, after a random time between the
   * minimum request timeout and twice that, as kube-apiserver does so that watches do not all end (and
   * reconnect) at once.
   */
  private timeout(res: http.ServerResponse, query: CollectionQuery): NodeJS.Timeout | undefined {
    const min = this.opts.minRequestTimeoutMs ?? DEFAULT_MIN_REQUEST_TIMEOUT_MS;
    const ms = query.timeoutSeconds ? query.timeoutSeconds * 1000 : min * (1 + Math.random());
    // Beyond what a timer can hold, a timeout means no timeout (Node would fire an overflowing timer at once).
    if (!(ms > 0 && ms < 2 ** 31)) return undefined;
    const timer = setTimeout(() => res.end(), ms);
    timer.unref();
    return timer;
  }

  /**
   * bookmarks sends a BOOKMARK every interval. Its revision is one every event up to which the client
   * has been sent: the newest event delivered, or the store revision read one interval earlier (a
   * store delivers its events well within that, which lets a quiet watch's bookmark move forward).
   */
  private bookmarks(query: CollectionQuery, delivered: () => number, bookmark: (rv: string) => void): NodeJS.Timeout | undefined {
    if (!query.allowWatchBookmarks) return undefined;
    const store = this.opts.resources.store;
    let seen = 0;
    const timer = setInterval(() => {
      const rv = Math.max(delivered(), seen);
      if (rv > 0) bookmark(String(rv));
      store.revision().then(
        (r) => (seen = r),
        () => undefined,
      );
    }, this.opts.bookmarkIntervalMs ?? DEFAULT_BOOKMARK_INTERVAL_MS);
    timer.unref();
    return timer;
  }
}

/** shaped renders one object (or a bookmark's object) as the Accept header asked. */
function shaped(def: KindDefinition, obj: ResourceObject, shape: ResponseShape, include: ReturnType<typeof parseIncludeObject>, noHeaders: boolean): unknown {
  if (shape.as === 'Table') return toTable(def, [obj], { version: shape.version, include, noHeaders, resourceVersion: obj.metadata.resourceVersion });
  if (shape.as === 'PartialObjectMetadata') return partialObjectMetadata(obj, shape.version);
  return obj;
}
