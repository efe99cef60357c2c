import type http from 'node:http';

import { LineCounter, parseDocument } from 'yaml';

import { type DuplicateField, jsonDuplicates, yamlDuplicates } from './duplicate-keys.js';
import { ApiError, badRequest } from './errors.js';
import { jsonNestingExceeds, MAX_NESTING, valueNestingExceeds, YAML_SCAN_LIMIT, yamlNestingBoundExceeds } from './nesting.js';

/** BodyMediaType is what a request body's Content-Type says about how to decode and apply it. */
export interface BodyMediaType {
  /** `type/subtype`, lower-cased, without parameters. */
  essence: string;
  format: 'json' | 'yaml';
  /** How a PATCH body applies: a JSON merge patch, or server-side apply treated as create-or-merge. */
  patch?: 'merge' | 'apply';
}

const OBJECT_TYPES = 'application/json or application/yaml (or application/*+json, application/*+yaml)';
const PATCH_TYPES = 'application/merge-patch+json, application/strategic-merge-patch+json (applied as a merge patch) or application/apply-patch+yaml';

/**
 * hasBody tells whether a request carries a body, from its framing headers: what a server reads
 * whatever the method.
 */
export function hasBody(req: http.IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const len = req.headers['content-length'];
  return len !== undefined && len !== '0';
}

/**
 * bodyMediaType reads a body's Content-Type and refuses, with 415 `UnsupportedMediaType`, anything the
 * API cannot decode: a missing type, `text/plain` and the form encodings a cross-site page may send
 * without a CORS preflight, JSON Patch (not implemented), and charsets other than UTF-8.
 *
 * @example
 * bodyMediaType('application/merge-patch+json; charset=utf-8') // { essence: ..., format: 'json', patch: 'merge' }
 */
export function bodyMediaType(header: string | undefined): BodyMediaType {
  if (header === undefined || header.trim() === '') throw unsupported('the request has a body but no Content-Type');
  const [typePart, ...params] = header.split(';');
  const essence = typePart!.trim().toLowerCase();
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    if (p.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    const charset = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
    if (charset !== 'utf-8' && charset !== 'utf8') throw unsupported(`charset "${charset}" is not supported: send UTF-8`);
  }
  switch (essence) {
    case 'application/merge-patch+json':
    case 'application/strategic-merge-patch+json':
      return { essence, format: 'json', patch: 'merge' };
    case 'application/apply-patch+yaml':
      return { essence, format: 'yaml', patch: 'apply' };
    case 'application/json-patch+json':
      throw unsupported(`JSON Patch (application/json-patch+json) is not supported; send ${PATCH_TYPES}`);
  }
  const slash = essence.indexOf('/');
  const subtype = essence.slice(slash + 1);
  if (essence.slice(0, slash) === 'application' && /^[a-z0-9][a-z0-9!#$&^_.+-]*$/.test(subtype)) {
    if (subtype === 'json' || subtype.endsWith('+json')) return { essence, format: 'json' };
    if (subtype === 'yaml' || subtype.endsWith('+yaml')) return { essence, format: 'yaml' };
  }
  throw unsupported(`Content-Type "${essence}" is not supported`);
}

/** objectMediaType checks that a POST or PUT body is a whole object, not a patch. */
export function objectMediaType(header: string | undefined, method: string): BodyMediaType {
  const media = bodyMediaType(header);
  if (media.patch) throw unsupported(`${method} takes a whole object, not a patch ("${media.essence}")`);
  return media;
}

/**
 * patchMediaType checks that a PATCH body is a patch. Plain application/json is taken as a merge patch,
 * as Skiff always has; a body with no Content-Type is refused like any other.
 */
export function patchMediaType(header: string | undefined): BodyMediaType {
  const media = bodyMediaType(header);
  if (media.patch) return media;
  if (media.essence === 'application/json') return { ...media, patch: 'merge' };
  throw new ApiError(415, 'UnsupportedMediaType', `unsupported patch type "${media.essence}": use ${PATCH_TYPES}`);
}

/**
 * readBodyBytes collects a request body up to `maxBytes` (413 beyond it). A moderately oversized body
 * is read and discarded so the client sees the answer instead of a reset; beyond that the connection
 * is closed after the answer.
 */
export function readBodyBytes(req: http.IncomingMessage, res: http.ServerResponse, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > maxBytes) {
    if (declared <= 8 * maxBytes) req.resume();
    else req.socket.once('finish', () => req.socket.destroy());
    return Promise.reject(tooLarge(maxBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        req.removeAllListeners('data');
        req.resume();
        res.setHeader('connection', 'close');
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

/**
 * decodeBody parses a JSON or YAML body. Nesting beyond {@link MAX_NESTING} is a 400 found before any
 * recursive code sees the document: JSON by a linear pre-scan, YAML by a lexer bound before parsing and
 * an iterative walk after it.
 */
export function decodeBody(bytes: Buffer, media: BodyMediaType): unknown {
  return decodeBodyFields(bytes, media).value;
}

/**
 * decodeBodyFields is {@link decodeBody} that also reports keys appearing twice in one object (the
 * later value is kept, as Go's decoders do), for field validation to refuse, warn about or ignore.
 */
export function decodeBodyFields(bytes: Buffer, media: BodyMediaType): { value: unknown; duplicates: DuplicateField[] } {
  const text = bytes.toString('utf8');
  const what = media.format === 'yaml' ? 'YAML' : 'JSON';
  if (text.trim() === '') throw badRequest(`the request has no body; send the object as ${what}`);
  if (media.format === 'json') {
    if (jsonNestingExceeds(bytes, MAX_NESTING)) throw tooDeep(what);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw badRequest(`the request body is not valid JSON: ${(err as Error).message}`);
    }
    return { value, duplicates: jsonDuplicates(text) };
  }
  if (yamlNestingBoundExceeds(text, YAML_SCAN_LIMIT)) throw tooDeep(what);
  let value: unknown;
  let duplicates: DuplicateField[];
  try {
    const lines = new LineCounter();
    // Duplicate keys are field validation's business (refused, warned about or ignored), not a parse error.
    // Warnings would go to the process's stderr, where a client could flood the server log with them.
    const doc = parseDocument(text, { logLevel: 'error', uniqueKeys: false, lineCounter: lines });
    if (doc.errors.length) throw doc.errors[0];
    value = doc.toJS({ maxAliasCount: 100 });
    duplicates = yamlDuplicates(doc.contents, (offset) => lines.linePos(offset).line);
  } catch (err) {
    // The parser reports its own stack running out as a parse error; either way the body is too deep.
    if (err instanceof RangeError || /Maximum call stack size exceeded/.test((err as Error).message)) throw tooDeep(what);
    throw badRequest(`the request body is not valid YAML: ${(err as Error).message}`);
  }
  if (valueNestingExceeds(value, MAX_NESTING)) throw tooDeep(what);
  return { value, duplicates };
}

function tooDeep(what: string): ApiError {
  return badRequest(`the ${what} request body nests objects and arrays deeper than the limit of ${MAX_NESTING} levels`);
}

function unsupported(why: string): ApiError {
  return new ApiError(415, 'UnsupportedMediaType', `${why}; the API accepts ${OBJECT_TYPES} for objects and ${PATCH_TYPES} for PATCH`);
}

function tooLarge(limit: number): ApiError {
  return new ApiError(413, 'RequestEntityTooLarge', `the request body is larger than the limit of ${limit} bytes`);
}
