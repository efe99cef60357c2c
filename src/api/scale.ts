import { badRequest, invalid } from './errors.js';
import { FUNCTION_LABEL } from './kinds/function-scale.js';
import type { KindDefinition, ResourceObject } from './kinds/types.js';
import { applyJsonPatch, decodeJsonPatch } from './patch/json-patch.js';
import { isJsonObject } from './patch/json-value.js';
import { applyMergePatch } from './patch/merge-patch.js';
import { applyStrategicAsMerge } from './patch/strategic-patch.js';
import type { PatchType, ResourceService, WriteOptions, WriteOutcome } from './resources.js';

/**
 * The `scale` subresource of a Function: an `autoscaling/v1` Scale, the shape `kubectl scale` and
 * HorizontalPodAutoscalers speak for any scalable kind. Reading it derives the Scale from the
 * Function; writing it sets the Function's `spec.replicas` through an ordinary update, so admission,
 * resourceVersion preconditions and the generation bump behave as for any other spec change.
 */

/** Scale is autoscaling/v1's Scale. */
export interface Scale {
  apiVersion: 'autoscaling/v1';
  kind: 'Scale';
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; creationTimestamp?: string };
  spec: { replicas: number };
  status: { replicas: number; selector: string };
}

/**
 * scaleOf derives a Function's Scale: the fixed replica count when spec.replicas sets one, or else
 * what the autoscaler wants (status.desiredReplicas), or else what runs.
 */
export function scaleOf(fn: ResourceObject): Scale {
  const m = fn.metadata;
  const st = fn.status ?? {};
  const num = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) ? v : undefined);
  return {
    apiVersion: 'autoscaling/v1',
    kind: 'Scale',
    metadata: {
      name: m.name,
      ...(m.namespace !== undefined ? { namespace: m.namespace } : {}),
      ...(m.uid !== undefined ? { uid: m.uid } : {}),
      ...(m.resourceVersion !== undefined ? { resourceVersion: m.resourceVersion } : {}),
      ...(m.creationTimestamp !== undefined ? { creationTimestamp: m.creationTimestamp } : {}),
    },
    spec: { replicas: num(fn.spec?.replicas) ?? num(st.desiredReplicas) ?? num(st.replicas) ?? 0 },
    status: { replicas: num(st.replicas) ?? 0, selector: `${FUNCTION_LABEL}=${m.name}` },
  };
}

/** replicasOf reads spec.replicas from a written Scale: 422 naming the field unless it is a non-negative integer. */
function replicasOf(scale: unknown, name: string): number {
  const spec = isJsonObject(scale) ? scale.spec : undefined;
  const replicas = isJsonObject(spec) ? spec.replicas : undefined;
  if (typeof replicas === 'number' && Number.isSafeInteger(replicas) && replicas >= 0) return replicas;
  const shown = replicas === undefined ? 'Required value' : `Invalid value: ${JSON.stringify(replicas)}`;
  throw invalid('Scale', name, [{ field: 'spec.replicas', message: `${shown}: must be a whole number of replicas, 0 or more`, reason: replicas === undefined ? 'FieldValueRequired' : 'FieldValueInvalid' }]);
}

/** writeReplicas sets spec.replicas on the Function, with the Scale's resourceVersion as a precondition when it names one. */
async function writeReplicas(svc: ResourceService, def: KindDefinition, ns: string | undefined, name: string, replicas: number, resourceVersion: unknown, opts: WriteOptions): Promise<WriteOutcome> {
  const metadata = typeof resourceVersion === 'string' && resourceVersion !== '' ? { resourceVersion } : undefined;
  return svc.patch(def, ns, name, { ...(metadata ? { metadata } : {}), spec: { replicas } }, { ...opts, type: 'merge' });
}

/** getScale answers GET .../functions/NAME/scale. */
export async function getScale(svc: ResourceService, def: KindDefinition, ns: string | undefined, name: string): Promise<Scale> {
  return scaleOf(await svc.get(def, ns, name));
}

/**
 * putScale answers PUT .../scale: the body is a whole Scale; a `metadata.resourceVersion` in it must
 * be the Function's current one (409 otherwise), as for a PUT of the Function itself.
 */
export async function putScale(svc: ResourceService, def: KindDefinition, ns: string | undefined, name: string, body: unknown, opts: WriteOptions): Promise<{ scale: Scale; warnings: string[] }> {
  const replicas = replicasOf(body, name);
  const rv = isJsonObject(body) && isJsonObject(body.metadata) ? body.metadata.resourceVersion : undefined;
  const out = await writeReplicas(svc, def, ns, name, replicas, rv, opts);
  return { scale: scaleOf(out.object), warnings: out.warnings };
}

/**
 * patchScale answers PATCH .../scale: the patch (merge, strategic taken as merge, or JSON patch) applies
 * to the current Scale, and the replicas it leads to are written to the Function. A resourceVersion
 * the patch sets is a precondition.
 */
export async function patchScale(svc: ResourceService, def: KindDefinition, ns: string | undefined, name: string, patch: unknown, type: PatchType, opts: WriteOptions): Promise<{ scale: Scale; warnings: string[] }> {
  const current = await getScale(svc, def, ns, name);
  let next: unknown;
  if (type === 'json') next = applyJsonPatch(current, decodeJsonPatch(patch));
  else {
    if (!isJsonObject(patch)) throw badRequest(`a ${type === 'strategic' ? 'strategic ' : ''}merge patch must be a JSON object`);
    next = type === 'strategic' ? applyStrategicAsMerge(current, patch) : applyMergePatch(current, patch);
  }
  const replicas = replicasOf(next, name);
  const rv = isJsonObject(next) && isJsonObject(next.metadata) ? next.metadata.resourceVersion : undefined;
  const out = await writeReplicas(svc, def, ns, name, replicas, rv !== current.metadata.resourceVersion ? rv : undefined, opts);
  return { scale: scaleOf(out.object), warnings: out.warnings };
}
