import { eventKind } from './event.js';
import { functionKind } from './function.js';
import { namespaceKind } from './namespace.js';
import { KindRegistry } from './registry.js';
import type { KindDefinition } from './types.js';

export type * from './types.js';
export { KindRegistry } from './registry.js';
export { setCondition, readyOf, type Condition } from './conditions.js';

const extra: KindDefinition[] = [];

/** builtinKinds returns a registry with every kind Skiff serves. */
export function builtinKinds(): KindRegistry {
  return new KindRegistry([namespaceKind, functionKind, eventKind, ...extra]);
}
