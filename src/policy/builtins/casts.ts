import { numberValue } from '../ast/parser.js';
import { isNumber } from '../value.js';

import { type Builtin,builtinErr, BuiltinError, typeErr } from './types.js';

/** MAX_NUMBER_TEXT bounds the text to_number converts: exact conversion of a longer one costs superlinear time. */
export const MAX_NUMBER_TEXT = 10_000;

/** Casts: to_number. */
export const register: Record<string, Builtin> = {
  to_number: {
    arity: 1,
    fn: (a) => {
      const v = a[0]!;
      if (v === null || v === false) return 0;
      if (v === true) return 1;
      if (isNumber(v)) return v;
      if (typeof v === 'string') {
        if (v.length > MAX_NUMBER_TEXT) throw builtinErr('to_number', `the number text is ${v.length} characters long; the limit is ${MAX_NUMBER_TEXT}`);
        const t = v.trim();
        if (/^[+-]?(inf|infinity|nan)$/i.test(t)) throw new BuiltinError('eval_type_error', `to_number: operand 1 must be a finite number but got ${v}`);
        if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(t) || t !== v) throw new BuiltinError('eval_builtin_error', `to_number: strconv.ParseFloat: parsing ${JSON.stringify(v)}: invalid syntax`);
        return numberValue(t.replace(/^\+/, ''));
      }
      throw typeErr('to_number', 1, 'one of {null, boolean, number, string}', v);
    },
  },
};
