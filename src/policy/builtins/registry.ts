import { signatureTable } from '../compile/typecheck.js';

import { register as aggregates } from './aggregates.js';
import { register as arrays } from './arrays.js';
import { register as bits } from './bits.js';
import { register as casts } from './casts.js';
import { register as crypto } from './crypto.js';
import { register as deprecated } from './deprecated.js';
import { register as encoding } from './encoding.js';
import { register as externalData } from './external-data.js';
import { register as glob } from './glob.js';
import { register as globsMatch } from './globs-match.js';
import { register as graphql } from './graphql.js';
import { register as graphs } from './graphs.js';
import { register as http } from './http.js';
import { register as json } from './json.js';
import { register as jsonschema } from './jsonschema.js';
import { register as jwt } from './jwt.js';
import { register as misc } from './misc.js';
import { register as net } from './net.js';
import { register as numbers } from './numbers.js';
import { register as objects } from './objects.js';
import { register as operators } from './operators.js';
import { register as providersAws } from './providers-aws.js';
import { register as regex } from './regex.js';
import { register as rego } from './rego.js';
import { register as semver } from './semver.js';
import { register as sets } from './sets.js';
import { SIGNATURES } from './signatures.js';
import { register as strings } from './strings.js';
import { register as time } from './time.js';
import type { Builtin } from './types.js';
import { register as types } from './types-family.js';
import { register as units } from './units.js';
import { register as uuid } from './uuid.js';

/** FAMILIES lists every built-in family's register table; add a family here. */
const FAMILIES: Array<Record<string, Builtin>> = [aggregates, arrays, bits, casts, crypto, deprecated, encoding, externalData, glob, globsMatch, graphql, graphs, http, json, jsonschema, jwt, misc, net, numbers, objects, operators, providersAws, regex, rego, semver, sets, strings, time, types, units, uuid];

/**
 * builtinTable merges the families into one name → built-in map (built once per engine). The `test.*`
 * built-ins (`test.sleep`) are left out unless `testBuiltins` is set: they exist for policy tests and
 * OPA's conformance suite, never for policies that serve requests.
 */
export function builtinTable(opts: { testBuiltins?: boolean } = {}): Map<string, Builtin> {
  const m = new Map<string, Builtin>();
  for (const f of FAMILIES) for (const [k, v] of Object.entries(f)) if (opts.testBuiltins || !k.startsWith('test.')) m.set(k, v);
  for (const [k, sig] of signatures()) {
    const b = m.get(k);
    if (b) m.set(k, { ...b, sig });
  }
  m.set('eq', { arity: 2, fn: () => true });
  m.set('assign', { arity: 2, fn: () => true });
  return m;
}

let parsed: ReturnType<typeof signatureTable> | undefined;
/** signatures parses SIGNATURES once per process. */
function signatures(): ReturnType<typeof signatureTable> {
  return (parsed ??= signatureTable(SIGNATURES));
}
