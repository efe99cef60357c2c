import { isObject, RSet, type Value } from '../value.js';

import { register as net } from './net.js';
import { elems, set } from './operands.js';
import { register as regex } from './regex.js';
import { type Builtin,typeErr } from './types.js';

/**
 * Deprecated built-ins that Rego v0 policies (Gatekeeper templates among them) still call.
 * They keep their old behaviour; new policies should use the replacements named below.
 */
export const register: Record<string, Builtin> = {
  re_match: regex['regex.match']!, // → regex.match
  'net.cidr_overlap': net['net.cidr_contains']!, // → net.cidr_contains
  set_diff: {
    arity: 2,
    fn: (a) => {
      const x = set('set_diff', a, 0);
      const y = set('set_diff', a, 1);
      return new RSet(x.values().filter((v) => !y.has(v)));
    },
  },
  all: { arity: 1, fn: (a) => elems('all', a, 0).every((v) => v === true) },
  any: { arity: 1, fn: (a) => elems('any', a, 0).some((v) => v === true) },
  cast_array: {
    arity: 1,
    fn: (a) => {
      const v = a[0]!;
      if (Array.isArray(v)) return v;
      if (v instanceof RSet) return v.values();
      throw typeErr('cast_array', 1, 'one of {array, set}', v);
    },
  },
  cast_set: {
    arity: 1,
    fn: (a) => {
      const v = a[0]!;
      if (v instanceof RSet) return v;
      if (Array.isArray(v)) return new RSet(v);
      throw typeErr('cast_set', 1, 'one of {array, set}', v);
    },
  },
  cast_string: { arity: 1, fn: (a) => (typeof a[0] === 'string' ? a[0] : undefined) },
  cast_boolean: { arity: 1, fn: (a) => (typeof a[0] === 'boolean' ? a[0] : undefined) },
  cast_null: { arity: 1, fn: (a) => (a[0] === null ? null : undefined) },
  cast_object: { arity: 1, fn: (a) => (isObject(a[0]!) ? (a[0] as Value) : undefined) },
};
