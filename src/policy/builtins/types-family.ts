import { isNumber, isObject, RSet, typeName, type Value } from '../value.js';

import type { Builtin } from './types.js';

const is = (f: (v: Value) => boolean): Builtin => ({ arity: 1, fn: (a) => (f(a[0]!) ? true : false) });

/** Type checks: is_* and type_name. is_* are false (not undefined) for other types, as in OPA v1. */
export const register: Record<string, Builtin> = {
  is_number: is(isNumber),
  is_string: is((v) => typeof v === 'string'),
  is_boolean: is((v) => typeof v === 'boolean'),
  is_array: is(Array.isArray),
  is_set: is((v) => v instanceof RSet),
  is_object: is((v) => isObject(v)),
  is_null: is((v) => v === null),
  type_name: { arity: 1, fn: (a) => typeName(a[0]!) },
};
