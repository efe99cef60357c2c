import { acceptedRanges, isJsonRange } from '../accept.js';

import type { AggregatedVersion } from './documents.js';

/** What a discovery request is answered with: the aggregated document (in a version) or the plain one. */
export type DiscoveryFormat = { aggregated: AggregatedVersion } | { aggregated: false };

/** The media type of an aggregated discovery document, as Kubernetes names it. */
export function aggregatedMediaType(version: AggregatedVersion): string {
  return `application/json;g=apidiscovery.k8s.io;v=${version};as=APIGroupDiscoveryList`;
}

/**
 * negotiateDiscovery picks the format of an answer to `/api` or `/apis` from the Accept header, the way
 * kube-apiserver does: the client's ranges by weight (`q`), then in the order given; an aggregated
 * range (`application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`) wins when it comes
 * first, plain JSON (or a wildcard) otherwise. A header naming nothing Skiff can send gives undefined (406).
 */
export function negotiateDiscovery(accept: string | undefined): DiscoveryFormat | undefined {
  if (!accept?.trim()) return { aggregated: false };
  for (const r of acceptedRanges(accept)) {
    const g = r.params.get('g');
    const as = r.params.get('as');
    if (r.type === 'application/json' && (g !== undefined || as !== undefined)) {
      const v = r.params.get('v');
      if (g === 'apidiscovery.k8s.io' && as === 'APIGroupDiscoveryList' && (v === 'v2' || v === 'v2beta1')) return { aggregated: v };
      // Another object kind (`as=Table`, a future discovery version): not something this endpoint sends.
      continue;
    }
    if (isJsonRange(r)) return { aggregated: false };
  }
  return undefined;
}
