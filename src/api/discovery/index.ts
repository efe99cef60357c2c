import { createHash } from 'node:crypto';
import type http from 'node:http';

import { reviewAggregated, reviewApiGroups, reviewDiscovery } from '../access-review.js';
import { ApiError } from '../errors.js';
import type { KindRegistry } from '../kinds/registry.js';
import { CORE_GROUP } from '../kinds/types.js';

import { aggregatedList, apiGroup, apiGroupList, apiResourceList, apiVersions, type ServerAddress } from './documents.js';
import { aggregatedMediaType, negotiateDiscovery } from './negotiate.js';

export { aggregatedList, apiGroupList, apiResourceList, apiVersions, RESOURCE_VERBS, storageVersionHash, subresourcesOf, type AggregatedVersion, type ServerAddress } from './documents.js';
export { aggregatedMediaType, negotiateDiscovery, type DiscoveryFormat } from './negotiate.js';

/**
 * DiscoveryEndpoint answers Kubernetes' discovery paths from the KindRegistry as it is at each request
 * (constraint kinds come and go): `/api`, `/api/v1`, `/apis`, `/apis/GROUP`, `/apis/GROUP/VERSION`.
 * `/api` and `/apis` speak both the plain documents and the aggregated one, chosen by Accept, with
 * `Vary: Accept` and an ETag over the body so that HTTP caches (kubectl's under ~/.kube/cache/http)
 * revalidate instead of serving a stale list.
 */
export class DiscoveryEndpoint {
  constructor(
    private readonly kinds: KindRegistry,
    private readonly address: () => ServerAddress[],
  ) {}

  /** isDiscoveryPath tells whether these URL segments name a discovery document rather than resources. */
  static isDiscoveryPath(segments: string[]): boolean {
    if (segments[0] === 'api') return segments.length <= 2;
    if (segments[0] === 'apis') return segments.length <= 3;
    return false;
  }

  /** serve answers one discovery request; the caller checked `isDiscoveryPath` and the token. */
  serve(req: http.IncomingMessage, res: http.ServerResponse, segments: string[], path: string): void {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported on ${path}: discovery documents are read-only`);
    const root = segments.length === 1;
    const format = root ? negotiateDiscovery(req.headers.accept) : { aggregated: false as const };
    if (!format) throw new ApiError(406, 'NotAcceptable', `none of the media types in Accept (${req.headers.accept}) can be served at ${path}; use application/json, or application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`);
    const body = this.document(segments, format.aggregated);
    const text = JSON.stringify(body);
    const etag = `"${createHash('sha256').update(text).digest('hex').slice(0, 32)}"`;
    const headers: Record<string, string | number> = {
      'content-type': format.aggregated ? aggregatedMediaType(format.aggregated) : 'application/json',
      vary: 'Accept',
      etag,
    };
    if (ifNoneMatch(req.headers['if-none-match'], etag)) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    headers['content-length'] = Buffer.byteLength(text);
    res.writeHead(200, headers);
    res.end(method === 'HEAD' ? undefined : text);
  }

  /** document builds the body for a discovery path (404 with a Status for a group or version the server lacks). */
  document(segments: string[], aggregated: false | 'v2' | 'v2beta1'): unknown {
    const [top, a, b] = segments;
    if (top === 'api') {
      if (a === undefined) return aggregated ? aggregatedList(this.kinds, 'core', aggregated) : apiVersions(this.address());
      if (this.kinds.inGroupVersion(CORE_GROUP, a).length) return apiResourceList(this.kinds, CORE_GROUP, a);
      throw new ApiError(404, 'NotFound', `the server has no core API version ${a}; the core group is served at /api/v1`);
    }
    // The self-review groups (access-review.ts) are served beside the stored kinds' groups.
    if (a === undefined) return aggregated ? withItems(aggregatedList(this.kinds, 'named', aggregated), reviewAggregated()) : withGroups(apiGroupList(this.kinds), reviewApiGroups());
    if (b === undefined) {
      const review = reviewApiGroups().find((g) => g.name === a);
      const g = apiGroup(this.kinds, a, this.address()) ?? (review && { kind: 'APIGroup', apiVersion: 'v1', ...review, serverAddressByClientCIDRs: this.address() });
      if (g) return g;
      throw new ApiError(404, 'NotFound', `the server has no API group ${a}; GET /apis lists the groups it serves`);
    }
    if (this.kinds.inGroupVersion(a, b).length) return apiResourceList(this.kinds, a, b);
    const reviews = reviewDiscovery(a, b);
    if (reviews) return reviews;
    throw new ApiError(404, 'NotFound', `the server has no API group version ${a}/${b}; GET /apis lists the groups it serves`);
  }
}

function withItems<T extends { items: unknown[] }>(doc: T, more: unknown[]): T {
  return { ...doc, items: [...doc.items, ...more] };
}

function withGroups<T extends { groups: unknown[] }>(doc: T, more: unknown[]): T {
  return { ...doc, groups: [...doc.groups, ...more] };
}

/** ifNoneMatch tells whether an If-None-Match header names the current ETag (or `*`). */
function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((t) => {
    const tag = t.trim().replace(/^W\//, '');
    return tag === '*' || tag === etag;
  });
}
