import { badRequest } from './errors.js';

/** RequestUrl is a request target split into decoded path segments and query parameters. */
export interface RequestUrl {
  /** The path as sent (still percent-encoded), without trailing slashes; `/` for the root. */
  path: string;
  /** The decoded path segments; none is empty, `.`, `..`, or holds `/`, `\` or a control character. */
  segments: string[];
  query: URLSearchParams;
}

const HEX = /^[0-9A-Fa-f]{2}$/;

/**
 * parseRequestUrl splits a raw request target (`req.url`) itself instead of handing it to the WHATWG
 * URL parser, which silently resolves `..`, `%2e%2e` and `\` and would let `functions/%2e%2e` name
 * the collection's parent. Anything ambiguous is refused with 400 rather than normalised: dot
 * segments (raw or encoded, in any case), empty segments, malformed or non-UTF-8 percent escapes,
 * an encoded `/` or `\` inside a segment, raw backslashes and control characters (NUL included).
 * Trailing slashes are dropped, as the API always did.
 *
 * @example
 * parseRequestUrl('/apis/skiff.dev/v1/namespaces/default/functions?watch=true').segments
 * // ['apis', 'skiff.dev', 'v1', 'namespaces', 'default', 'functions']
 */
export function parseRequestUrl(raw: string): RequestUrl {
  if (!raw.startsWith('/')) throw badRequest('the request target must be a path starting with "/" (absolute URLs are not accepted)');
  const q = raw.indexOf('?');
  const rawPath = q < 0 ? raw : raw.slice(0, q);
  const rawQuery = q < 0 ? '' : raw.slice(q + 1);
  if (rawPath.includes('#') || rawQuery.includes('#')) throw badRequest('the request target must not contain "#"');
  if (rawPath.includes('\\')) throw badRequest('the request path must not contain "\\"');
  // Clients percent-encode everything else; a raw non-ASCII or control byte has no single meaning.
  if (/[^\x21-\x7e]/.test(raw)) throw badRequest('the request target must be printable ASCII: percent-encode other characters');
  checkEscapes(rawQuery, 'query string');

  let end = rawPath.length;
  while (end > 1 && rawPath.charCodeAt(end - 1) === 0x2f) end--;
  const path = rawPath.slice(0, end);
  const segments: string[] = [];
  if (path !== '/') {
    const parts = path.slice(1).split('/');
    for (let i = 0; i < parts.length; i++) segments.push(decodeSegment(parts[i]!, i + 1));
  }
  return { path, segments, query: new URLSearchParams(rawQuery) };
}

function decodeSegment(raw: string, position: number): string {
  if (raw === '') throw badRequest(`the request path has an empty segment (at position ${position}): remove the doubled "/"`);
  checkEscapes(raw, 'request path');
  let seg: string;
  try {
    seg = raw.includes('%') ? utf8.decode(percentDecode(raw)) : raw;
  } catch {
    throw badRequest(`path segment ${position} is not valid UTF-8 once percent-decoded`);
  }
  if (seg === '.' || seg === '..') throw badRequest(`the request path must not contain "." or ".." segments (segment ${position} is "${raw}")`);
  if (seg.includes('/') || seg.includes('\\')) throw badRequest(`path segment ${position} ("${raw}") encodes "/" or "\\", which no name may contain`);
  if (/[\u0000-\u001f\u007f]/.test(seg)) throw badRequest(`path segment ${position} contains a control character`);
  return seg;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** checkEscapes refuses a `%` not followed by two hex digits, which decoders either reject late or keep literally. */
function checkEscapes(s: string, where: string): void {
  for (let i = s.indexOf('%'); i >= 0; i = s.indexOf('%', i + 1)) {
    if (!HEX.test(s.slice(i + 1, i + 3))) throw badRequest(`the ${where} has a malformed percent escape "${s.slice(i, i + 3)}": "%" must be followed by two hex digits`);
  }
}

function percentDecode(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out.push(c);
    }
  }
  return Uint8Array.from(out);
}
