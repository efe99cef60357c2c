import { endpointSliceKind } from './endpoint-slice.js';
import { eventKind } from './event.js';
import { functionKindWith } from './function.js';
import type { ScaleSpecValidator } from './function-scale.js';
import { gitRepositoryKind } from './git-repository.js';
import { horizontalPodAutoscalerKind } from './horizontal-pod-autoscaler.js';
import { imagePolicyKind, trustRootKind } from './image-policy.js';
import { leaseKind } from './lease.js';
import { namespaceKind } from './namespace.js';
import { nodeKind } from './node.js';
import { policyKind } from './policy.js';
import { policyBundleKind } from './policy-bundle.js';
import { KindRegistry } from './registry.js';
import { rolloutKind } from './rollout.js';
import { routeKind } from './route.js';
import { runtimeClassKind } from './runtime-class.js';
import { secretKind } from './secret.js';
import { serviceKind } from './service.js';
import { syncKind } from './sync.js';
import type { KindDefinition, KindValidator, KindValidators } from './types.js';

export type * from './types.js';
export { KindRegistry } from './registry.js';
export { setCondition, readyOf, type Condition } from './conditions.js';
export { checkGitUrl } from './git-repository.js';
export { DOCKER_CONFIG_JSON_SECRET, secretValue } from './secret.js';
export { BUILTIN_RUNTIME_CLASSES } from './runtime-class.js';
export { microTime } from './lease.js';
export { ENDPOINT_SLICE_FUNCTION_LABEL, ENDPOINT_SLICE_MANAGED_BY_LABEL, ENDPOINT_SLICE_NODE_LABEL, type Endpoint, type EndpointPort } from './endpoint-slice.js';
export { DRAIN_ANNOTATION, NODE_LEASE_NAMESPACE, nodeStatusColumn, RUNTIME_CLASS_LABEL_PREFIX, type NodeCondition } from './node.js';
export { parseCpuMillis, runsImage } from './function-workload.js';
export { FUNCTION_LABEL, type ScaleSpecValidator } from './function-scale.js';
export { targetsColumn } from './horizontal-pod-autoscaler.js';
export { ROLLOUT_ABORT_ANNOTATION, ROLLOUT_NAME_ANNOTATION, ROLLOUT_PROMOTE_ANNOTATION, rolloutPlan, type RolloutPlan, type RolloutStep, type RolloutAnalysis, type RolloutMetric } from './rollout.js';
export { parseModuleRef, blobRef, BLOB_REF_PREFIX, MODULE_SOURCE_ANNOTATION, type ModuleRef } from './module-ref.js';

/** BuiltinKindOptions connects checks that areas above the API own to the kinds that need them. */
export interface BuiltinKindOptions {
  /**
   * The autoscaler's semantic checks of a Function's spec.scale (`validateScaleSpec` in
   * autoscaling/policy.ts); without it spec.scale is checked against its schema only.
   */
  scaleValidator?: ScaleSpecValidator;
}

/**
 * builtinKinds returns a registry with every kind Skiff serves. `validators` adds checks by kind name
 * from the areas that run the objects (the server passes the gateway's for Route and Service); without
 * them those kinds get their schema checks only, which is what clients that only print objects need.
 */
export function builtinKinds(validators: KindValidators = {}, opts: BuiltinKindOptions = {}): KindRegistry {
  const defs = [namespaceKind, functionKindWith(opts.scaleValidator), horizontalPodAutoscalerKind, routeKind, serviceKind, policyKind, policyBundleKind, eventKind, imagePolicyKind, trustRootKind, secretKind, runtimeClassKind, gitRepositoryKind, syncKind, rolloutKind, nodeKind, leaseKind, endpointSliceKind];
  for (const kind of Object.keys(validators)) {
    if (!defs.some((d) => d.kind === kind)) throw new Error(`a validator was given for ${kind}, which is not a built-in kind`);
  }
  return new KindRegistry(defs.map((d) => withValidator(d, validators[d.kind])));
}

function withValidator(def: KindDefinition, extra: KindValidator | undefined): KindDefinition {
  if (!extra) return def;
  const own = def.validate;
  return { ...def, validate: own ? (obj) => [...own(obj), ...extra(obj)] : extra };
}
