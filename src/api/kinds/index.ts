import { eventKind } from './event.js';
import { functionKind } from './function.js';
import { namespaceKind } from './namespace.js';
import { policyKind } from './policy.js';
import { KindRegistry } from './registry.js';
import { routeKind } from './route.js';
import { serviceKind } from './service.js';

export type * from './types.js';
export { KindRegistry } from './registry.js';
export { setCondition, readyOf, type Condition } from './conditions.js';
export { parseModuleRef, blobRef, BLOB_REF_PREFIX, MODULE_SOURCE_ANNOTATION, type ModuleRef } from './module-ref.js';

/** builtinKinds returns a registry with every kind Skiff serves. */
export function builtinKinds(): KindRegistry {
  return new KindRegistry([namespaceKind, functionKind, routeKind, serviceKind, policyKind, eventKind]);
}
