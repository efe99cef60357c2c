import { ApiError } from './errors.js';
import { apiVersionOf, type KindDefinition, type ResourceObject } from './kinds/types.js';
import type { ResourceService } from './resources.js';

/**
 * deleteCollection is `DELETE` on a collection (the `deletecollection` verb): every object the label
 * selector picks, in one namespace or (for a cluster-scoped kind, or a namespaced kind listed across
 * namespaces) all of them, each deleted through `ResourceService.delete` so that admission sees every
 * one. It answers the deleted objects as a list, as kube-apiserver does. An object that vanished in the
 * meantime is skipped; any other refusal ends the request with that error.
 */
export async function deleteCollection(
  svc: ResourceService,
  def: KindDefinition,
  ns: string | undefined,
  opts: { labelSelector?: string; dryRun: boolean },
): Promise<{ list: { apiVersion: string; kind: string; metadata: { resourceVersion: string }; items: ResourceObject[] }; warnings: string[] }> {
  const listed = await svc.list(def, ns, { labelSelector: opts.labelSelector });
  const items: ResourceObject[] = [];
  const warnings: string[] = [];
  for (const o of listed.items) {
    try {
      const out = await svc.delete(def, o.metadata.namespace, o.metadata.name, { dryRun: opts.dryRun });
      items.push(out.object);
      warnings.push(...out.warnings);
    } catch (err) {
      if (!(err instanceof ApiError && err.httpStatus === 404)) throw err;
    }
  }
  return { list: { apiVersion: apiVersionOf(def), kind: `${def.kind}List`, metadata: { resourceVersion: listed.resourceVersion }, items }, warnings };
}
