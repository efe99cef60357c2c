import YAML, { type ScalarTag } from 'yaml';

import { parseYamlValueLikeGo, VALUE_MEND_LIMITS } from '../../util/yaml-go.js';
import { numberValue } from '../ast/parser.js';
import { fromJSON, isObject, ObjectBuilder, objEntries, RDecimal, RSet, stringifyJSON, toJSON, type Value } from '../value.js';

import { capString } from './limits.js';
import { elems, obj, str } from './operands.js';
import { type Builtin, type BuiltinContext,builtinErr, BuiltinError, typeErr } from './types.js';

/** capped returns a built-in's string result, refusing it over the engine's string limit. */
function capped(name: string, s: string, ctx: BuiltinContext): string {
  capString(name, s.length, ctx);
  return s;
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const B64URL = /^[A-Za-z0-9_-]*={0,2}$/;

function b64decode(name: string, s: string, url: boolean): string {
  const re = url ? B64URL : B64;
  const padded = url ? s : s;
  if (!re.test(padded) || (!url && padded.length % 4 !== 0)) throw builtinErr(name, 'illegal base64 data at input byte ' + Math.max(0, [...padded].findIndex((c) => !/[A-Za-z0-9+/=_-]/.test(c))));
  if (url && s.length % 4 === 1) throw builtinErr(name, 'illegal base64 data at input byte ' + (s.length - 1));
  return Buffer.from(padded, url ? 'base64url' : 'base64').toString('utf8');
}

/** jsonText serialises a value as JSON (sets as arrays, keys sorted) like OPA's json.marshal. */
export function jsonText(v: Value, indent?: string | number): string {
  return stringifyJSON(toJSON(v), typeof indent === 'number' ? indent : undefined) as string;
}

/** parseJSON parses JSON text into a value, keeping big integers exact. */
export function parseJSON(text: string): Value {
  // Integers beyond 2^53 lose precision in JSON.parse; YAML's core schema keeps them as bigint.
  // Decimals with more digits than a float holds, or beyond its range, are kept exact the same way.
  if (/\d{16,}|[eE][+-]?\d{3}/.test(text)) {
    JSON.parse(text);
    // exact conversion of a very long digit run costs superlinear time
    if (longestDigitRun(text) > 10_000) throw new Error('a number in the document has more than 10000 digits');
    return fromJSON(YAML.parse(text, { intAsBigInt: true, schema: 'json', customTags: withDecimals }));
  }
  return fromJSON(JSON.parse(text));
}

/** longestDigitRun is the length of the longest run of decimal digits in text (one pass). */
function longestDigitRun(text: string): number {
  let best = 0;
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (++run > best) best = run;
    } else run = 0;
  }
  return best;
}

/** A YAML number tag ahead of the schema's own: decimals a float cannot hold become RDecimal (numberValue decides). */
const DECIMAL_TAG: ScalarTag = {
  identify: (v) => v instanceof RDecimal,
  default: true,
  tag: 'tag:yaml.org,2002:float',
  test: /^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/,
  resolve: (src: string) => {
    const v = numberValue(src.replace(/^\+/, ''));
    return (v === 0 ? 0 : v) as unknown as number;
  },
  stringify: (item) => String(item.value),
};

/** withDecimals puts DECIMAL_TAG first in a YAML schema's tags (for YAML.parse's customTags). */
export function withDecimals(tags: YAML.Tags): YAML.Tags {
  return [DECIMAL_TAG, ...tags];
}

function urlEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+').replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** Encoding: base64, base64url, hex, urlquery, json, yaml. */
export const register: Record<string, Builtin> = {
  'base64.encode': {
    arity: 1,
    fn: (a, ctx) => {
      const s = str('base64.encode', a, 0);
      capString('base64.encode', Math.ceil(s.length / 3) * 4, ctx);
      return Buffer.from(s).toString('base64');
    },
  },
  'base64.decode': { arity: 1, fn: (a) => b64decode('base64.decode', str('base64.decode', a, 0), false) },
  'base64.is_valid': { arity: 1, fn: (a) => { const s = str('base64.is_valid', a, 0); return B64.test(s) && s.length % 4 === 0; } },
  'base64url.encode': { arity: 1, fn: (a) => Buffer.from(str('base64url.encode', a, 0)).toString('base64url').padEnd(Math.ceil(Buffer.from(a[0] as string).toString('base64url').length / 4) * 4, '=') },
  'base64url.encode_no_pad': { arity: 1, fn: (a) => Buffer.from(str('base64url.encode_no_pad', a, 0)).toString('base64url') },
  'base64url.decode': { arity: 1, fn: (a) => b64decode('base64url.decode', str('base64url.decode', a, 0), true) },
  'hex.encode': {
    arity: 1,
    fn: (a, ctx) => {
      const s = str('hex.encode', a, 0);
      capString('hex.encode', s.length * 2, ctx);
      return Buffer.from(s).toString('hex');
    },
  },
  'hex.decode': {
    arity: 1,
    fn: (a) => {
      const s = str('hex.decode', a, 0);
      if (!/^([0-9a-fA-F]{2})*$/.test(s)) {
        const bad = [...s].findIndex((c) => !/[0-9a-fA-F]/.test(c));
        throw builtinErr('hex.decode', bad >= 0 ? `encoding/hex: invalid byte: U+${s.charCodeAt(bad).toString(16).toUpperCase().padStart(4, '0')} ${JSON.stringify(s[bad]).replace(/"/g, "'")}` : 'encoding/hex: odd length hex string');
      }
      return Buffer.from(s, 'hex').toString('utf8');
    },
  },
  'urlquery.encode': { arity: 1, fn: (a) => urlEncode(str('urlquery.encode', a, 0)) },
  'urlquery.decode': {
    arity: 1,
    fn: (a) => {
      try {
        return decodeURIComponent(str('urlquery.decode', a, 0).replace(/\+/g, ' '));
      } catch {
        throw builtinErr('urlquery.decode', 'invalid URL escape');
      }
    },
  },
  'urlquery.encode_object': {
    arity: 1,
    fn: (a) => {
      const o = obj('urlquery.encode_object', a, 0);
      const parts: string[] = [];
      for (const [k, v] of objEntries(o)) {
        if (typeof k !== 'string') throw typeErr('urlquery.encode_object', 1, 'object[string: string|array[string]|set[string]]', o);
        const vals = typeof v === 'string' ? [v] : Array.isArray(v) || v instanceof RSet ? elems('urlquery.encode_object', [v], 0) : null;
        if (!vals) throw typeErr('urlquery.encode_object', 1, 'object[string: string|array[string]|set[string]]', o);
        for (const x of vals) parts.push(`${urlEncode(k)}=${urlEncode(String(x))}`);
      }
      return parts.join('&');
    },
  },
  'urlquery.decode_object': {
    arity: 1,
    fn: (a) => {
      const s = str('urlquery.decode_object', a, 0);
      const out = new Map<string, string[]>();
      for (const part of s.split(/[&;]/)) {
        if (!part) continue;
        const [k, v = ''] = part.split(/=(.*)/s);
        const dk = decodeURIComponent(k!.replace(/\+/g, ' '));
        const dv = decodeURIComponent(v.replace(/\+/g, ' '));
        out.set(dk, [...(out.get(dk) ?? []), dv]);
      }
      const b = new ObjectBuilder();
      for (const [k, v] of out) b.set(k, v);
      return b.build();
    },
  },
  'json.marshal': { arity: 1, fn: (a, ctx) => capped('json.marshal', jsonText(a[0]!), ctx) },
  'json.marshal_with_options': {
    arity: 2,
    fn: (a, ctx) => {
      const o = obj('json.marshal_with_options', a, 1);
      let pretty = false;
      let prefix = '';
      let indent = '\t';
      let sawIndentOpt = false;
      for (const [k, v] of objEntries(o)) {
        if (k === 'pretty') {
          if (typeof v !== 'boolean') throw typeErr('json.marshal_with_options', 2, 'boolean', v);
          pretty = v;
        } else if (k === 'prefix') {
          if (typeof v !== 'string') throw builtinErr('json.marshal_with_options', `prefix must be a string`);
          prefix = v;
          sawIndentOpt = true;
        } else if (k === 'indent') {
          if (typeof v !== 'string') throw builtinErr('json.marshal_with_options', `indent must be a string`);
          indent = v;
          sawIndentOpt = true;
        } else throw new BuiltinError('eval_type_error', `json.marshal_with_options: object contained unknown key ${JSON.stringify(k)}`);
      }
      if (!isObject(o) || (!pretty && !(sawIndentOpt && !objEntries(o).some(([k]) => k === 'pretty')))) return jsonText(a[0]!);
      const text = JSON.stringify(toJSON(a[0]!), (_k, x) => (typeof x === 'bigint' ? Number(x) : x), indent);
      capString('json.marshal_with_options', text.length, ctx);
      return capped('json.marshal_with_options', text.split('\n').map((l) => prefix + l).join('\n'), ctx);
    },
  },
  'json.unmarshal': {
    arity: 1,
    fn: (a) => {
      const text = str('json.unmarshal', a, 0);
      try {
        return parseJSON(text);
      } catch (e) {
        throw builtinErr('json.unmarshal', (e as Error).message);
      }
    },
  },
  'json.is_valid': {
    arity: 1,
    fn: (a) => {
      if (typeof a[0] !== 'string') return false;
      try {
        JSON.parse(a[0]);
        return true;
      } catch {
        return false;
      }
    },
  },
  'yaml.marshal': { arity: 1, fn: (a, ctx) => capped('yaml.marshal', YAML.stringify(toJSON(a[0]!), { customTags: withDecimals }), ctx) },
  'yaml.unmarshal': {
    arity: 1,
    fn: (a) => {
      try {
        return fromJSON(parseYamlValueLikeGo(str('yaml.unmarshal', a, 0), { intAsBigInt: true, customTags: withDecimals }, VALUE_MEND_LIMITS) as Value);
      } catch (e) {
        const m = /line (\d+)/.exec((e as Error).message);
        throw builtinErr('yaml.unmarshal', `yaml: line ${m ? m[1] : 1}: did not find expected node content (${(e as Error).message.split('\n')[0]})`);
      }
    },
  },
  'yaml.is_valid': {
    arity: 1,
    fn: (a) => {
      if (typeof a[0] !== 'string') return false;
      try {
        parseYamlValueLikeGo(a[0], {}, VALUE_MEND_LIMITS);
        return true;
      } catch {
        return false;
      }
    },
  },
};
void BuiltinError;
