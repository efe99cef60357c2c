import { fromJSON, isObject, objGet, RSet, toJSON, type Value } from '../value.js';

import { type Builtin, builtinErr, typeErr } from './types.js';

/**
 * Gatekeeper's `external_data({"provider": NAME, "keys": [...]})`: asks a named provider about each
 * key and answers `{"responses": [[key, value], ...], "errors": [[key, message], ...],
 * "status_code": 200, "system_error": ""}`. Providers are given per evaluation (`EvalOptions.
 * externalData`) and answer synchronously from what the caller fetched before evaluating, so a
 * policy never waits on the network inside the evaluator. An unknown provider is a system error, as
 * in Gatekeeper, never an exception.
 */
export const register: Record<string, Builtin> = {
  external_data: {
    arity: 1,
    sideEffect: true,
    fn: (args, ctx) => {
      const req = args[0]!;
      if (!isObject(req)) throw typeErr('external_data', 1, 'object', req);
      const provider = objGet(req, 'provider');
      if (typeof provider !== 'string') throw builtinErr('external_data', 'the request needs a string "provider"');
      const rawKeys = objGet(req, 'keys');
      const keys: Value[] = Array.isArray(rawKeys) ? rawKeys : rawKeys instanceof RSet ? rawKeys.values() : [];
      if (!Array.isArray(rawKeys) && !(rawKeys instanceof RSet)) throw builtinErr('external_data', 'the request needs "keys", an array or set');
      const answer = ctx.externalData?.(provider, keys.map((k) => toJSON(k)));
      if (!answer) return fromJSON({ responses: [], errors: [], status_code: 200, system_error: `external data provider "${provider}" is not available here` });
      return fromJSON({ status_code: 200, ...answer });
    },
  },
};
