import { createHash } from 'node:crypto';

/**
 * JSON as OPA's bundle code reads it: numbers keep the text they were written with (OPA decodes
 * them as `json.Number`), objects keep every key (the last of a repeated key wins, as in Go). The
 * signature hash of a structured file is computed over this tree, and `skiff policy build` writes
 * merged data from it, so a number is never rounded through a float on its way into a bundle.
 */
export type RawJSON = string | RawNumber | boolean | null | RawJSON[] | RawObject;

/** RawObject is a JSON object in the order its keys were written. */
export type RawObject = Map<string, RawJSON>;

/** RawNumber is a JSON number as written (`1.0` stays `1.0`). */
export class RawNumber {
  constructor(readonly text: string) {}
}

/** JSONSyntaxError says where a JSON text stops being JSON (1-based line and column). */
export class JSONSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly col: number,
    detail: string,
  ) {
    super(`line ${line}, column ${col}: ${detail}`);
  }
}

const MAX_DEPTH = 1000;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** parseRawJSON reads one JSON value (RFC 8259, as strictly as Go's decoder) into a RawJSON tree. */
export function parseRawJSON(text: string): RawJSON {
  let i = 0;
  const fail = (detail: string): never => {
    const before = text.slice(0, i);
    const line = before.split('\n').length;
    throw new JSONSyntaxError(line, i - before.lastIndexOf('\n'), detail);
  };
  const ws = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else return;
    }
  };
  const str = (): string => {
    // a string without escapes is one slice; otherwise JSON.parse decodes the escapes of the literal
    const start = i++;
    let escaped = false;
    for (;;) {
      const c = text.charCodeAt(i);
      if (Number.isNaN(c)) fail('unterminated string');
      if (c < 0x20) fail('control character in string');
      if (c === 92) {
        escaped = true;
        i += 2;
        continue;
      }
      i++;
      if (c === 34) break;
    }
    const lit = text.slice(start, i);
    if (!escaped) return lit.slice(1, -1);
    try {
      return JSON.parse(lit) as string;
    } catch {
      i = start;
      return fail('invalid escape in string');
    }
  };
  const value = (depth: number): RawJSON => {
    if (depth > MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH} levels`);
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: RawObject = new Map();
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a string key');
        const k = str();
        ws();
        if (text[i] !== ':') fail('expected :');
        i++;
        const v = value(depth + 1);
        obj.delete(k);
        obj.set(k, v);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const arr: RawJSON[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail('expected , or ]');
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) return (i += 4), true;
    if (text.startsWith('false', i)) return (i += 5), false;
    if (text.startsWith('null', i)) return (i += 4), null;
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m && m[0].length) {
      i += m[0].length;
      return new RawNumber(m[0]);
    }
    return fail(c === undefined ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`);
  };
  const v = value(0);
  ws();
  if (i < text.length) fail('unexpected text after the JSON value');
  return v;
}

/** rawFromPlain turns a parsed value (YAML data) into a RawJSON tree; numbers print as JavaScript prints them. */
export function rawFromPlain(v: unknown): RawJSON {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return new RawNumber(String(v));
  if (Array.isArray(v)) return v.map(rawFromPlain);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [String(k), rawFromPlain(x)]));
  if (typeof v === 'object') return new Map(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, rawFromPlain(x)]));
  return String(v);
}

/** rawToPlain gives the plain JSON value the policy engine loads (objects without a prototype). */
export function rawToPlain(v: RawJSON): unknown {
  if (v instanceof RawNumber) return Number(v.text);
  if (Array.isArray(v)) return v.map(rawToPlain);
  if (v instanceof Map) {
    const o = Object.create(null) as Record<string, unknown>;
    for (const [k, x] of v) o[k] = rawToPlain(x);
    return o;
  }
  return v;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** goString encodes a string as Go's encoding/json does without HTML escaping (OPA's hashing encoder). */
export function goString(s: string): string {
  // Go replaces unpaired surrogates (invalid UTF-8) with U+FFFD and escapes the two JavaScript line separators
  return JSON.stringify(s.replace(LONE_SURROGATE, '\uFFFD')).replace(/[\u2028\u2029]/g, (c) => (c === '\u2028' ? '\\u2028' : '\\u2029'));
}

const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/**
 * canonicalText is the byte stream OPA hashes for a structured bundle file: objects as `{` then each
 * key (sorted by its UTF-8 bytes, as Go sorts strings) `:` value, comma-separated, `}`; arrays as
 * `[` values `]`; scalars as Go's JSON encoder writes them, numbers as written.
 */
export function canonicalText(v: RawJSON): string {
  const out: string[] = [];
  const walk = (x: RawJSON): void => {
    if (x instanceof Map) {
      out.push('{');
      const keys = [...x.keys()].sort(byUtf8);
      keys.forEach((k, n) => {
        if (n) out.push(',');
        out.push(goString(k), ':');
        walk(x.get(k)!);
      });
      out.push('}');
    } else if (Array.isArray(x)) {
      out.push('[');
      x.forEach((e, n) => {
        if (n) out.push(',');
        walk(e);
      });
      out.push(']');
    } else if (x instanceof RawNumber) out.push(x.text);
    else if (typeof x === 'string') out.push(goString(x));
    else out.push(String(x));
  };
  walk(v);
  return out.join('');
}

/** Hash algorithms a signature's `files[].algorithm` may name (OPA's names); MD5 and SHA-1 are refused as broken. */
export const HASH_ALGORITHMS: Readonly<Record<string, string>> = Object.freeze({
  'SHA-224': 'sha224',
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
  'SHA-512-224': 'sha512-224',
  'SHA-512-256': 'sha512-256',
});

/** hashHex is the hex digest of bytes or text with one of HASH_ALGORITHMS' algorithms. */
export function hashHex(algorithm: string, content: Uint8Array | string): string {
  return createHash(HASH_ALGORITHMS[algorithm] ?? algorithm).update(content).digest('hex');
}

/** rawToJSONText writes a RawJSON tree as compact JSON text with sorted keys (how `opa build` writes data.json). */
export function rawToJSONText(v: RawJSON): string {
  if (v instanceof Map) return `{${[...v.keys()].sort(byUtf8).map((k) => `${JSON.stringify(k)}:${rawToJSONText(v.get(k)!)}`).join(',')}}`;
  if (Array.isArray(v)) return `[${v.map(rawToJSONText).join(',')}]`;
  if (v instanceof RawNumber) return v.text;
  return JSON.stringify(v);
}
