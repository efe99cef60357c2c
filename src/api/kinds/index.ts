import { eventKind } from './event.js';
import { functionKind } from './function.js';
import { imagePolicyKind, trustRootKind } from './image-policy.js';
import { namespaceKind } from './namespace.js';
import { policyKind } from './policy.js';
import { policyBundleKind } from './policy-bundle.js';
import { KindRegistry } from './registry.js';
import { routeKind } from './route.js';
import { runtimeClassKind } from './runtime-class.js';
import { secretKind } from './secret.js';
import { serviceKind } from './service.js';
import type { KindDefinition, KindValidator, KindValidators } from './types.js';

export type * from './types.js';
export { KindRegistry } from './registry.js';
export { setCondition, readyOf, type Condition } from './conditions.js';
export { DOCKER_CONFIG_JSON_SECRET, secretValue } from './secret.js';
export { BUILTIN_RUNTIME_CLASSES } from './runtime-class.js';
export { parseCpuMillis, runsImage } from './function-workload.js';
export { parseModuleRef, blobRef, BLOB_REF_PREFIX, MODULE_SOURCE_ANNOTATION, type ModuleRef } from './module-ref.js';

/**
 * builtinKinds returns a registry with every kind Skiff serves. `validators` adds checks by kind name
 * from the areas that run the objects (the server passes the gateway's for Route and Service); without
 * them those kinds get their schema checks only, which is what clients that only print objects need.
 */
export function builtinKinds(validators: KindValidators = {}): KindRegistry {
  const defs = [namespaceKind, functionKind, routeKind, serviceKind, policyKind, policyBundleKind, eventKind, imagePolicyKind, trustRootKind, secretKind, runtimeClassKind];
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
