import { ApiError, badRequest } from '../errors.js';

import { deepEqual, isJsonObject as isObject, setOwn } from './json-value.js';

/** The most operations one JSON patch may carry, as kube-apiserver bounds it. */
export const MAX_JSON_PATCH_OPERATIONS = 10_000;

/** One RFC 6902 operation, as decoded from the request. */
export interface JsonPatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: unknown;
}

const OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/**
 * parseJsonPointer splits an RFC 6901 pointer into its reference tokens (`~1` is `/`, `~0` is `~`).
 * The empty pointer is the whole document; anything else starts with `/`.
 *
 * @example
 * parseJsonPointer('/metadata/annotations/a~1b') // ['metadata', 'annotations', 'a/b']
 */
export function parseJsonPointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PointerError(`"${pointer}" is not a JSON pointer: it must be empty or start with "/"`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => {
      if (/~(?![01])/.test(t)) throw new PointerError(`"${pointer}" has "~" not followed by 0 or 1; write "~0" for "~" and "~1" for "/"`);
      return t.replace(/~1/g, '/').replace(/~0/g, '~');
    });
}

/**
 * decodeJsonPatch checks a JSON patch document's shape (400 when it is not a list of operations
 * with the members each op needs) before any of it is applied.
 */
export function decodeJsonPatch(doc: unknown): JsonPatchOperation[] {
  if (!Array.isArray(doc)) throw badRequest('a JSON patch (application/json-patch+json) must be a JSON array of operations');
  if (doc.length > MAX_JSON_PATCH_OPERATIONS) throw new ApiError(413, 'RequestEntityTooLarge', `the JSON patch has ${doc.length} operations; the limit is ${MAX_JSON_PATCH_OPERATIONS}`);
  return doc.map((raw, i) => {
    const where = `JSON patch operation ${i}`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw badRequest(`${where} is not an object`);
    const o = raw as Record<string, unknown>;
    if (typeof o.op !== 'string' || !OPS.has(o.op)) throw badRequest(`${where} has op ${JSON.stringify(o.op ?? null)}; use one of add, remove, replace, move, copy, test`);
    if (typeof o.path !== 'string') throw badRequest(`${where} (${o.op}) needs a string "path"`);
    if ((o.op === 'move' || o.op === 'copy') && typeof o.from !== 'string') throw badRequest(`${where} (${o.op} ${o.path}) needs a string "from"`);
    if ((o.op === 'add' || o.op === 'replace' || o.op === 'test') && !Object.hasOwn(o, 'value')) throw badRequest(`${where} (${o.op} ${o.path}) needs a "value"`);
    return { op: o.op as JsonPatchOperation['op'], path: o.path, ...(typeof o.from === 'string' ? { from: o.from } : {}), ...(Object.hasOwn(o, 'value') ? { value: o.value } : {}) };
  });
}

/**
 * applyJsonPatch applies RFC 6902 operations in order to a copy of `doc`. The first operation that
 * cannot apply (a missing path, a failed `test`, a bad index) ends the patch with a 422 that names it
 * by position, op and path; `doc` itself is never changed.
 */
export function applyJsonPatch(doc: unknown, ops: JsonPatchOperation[]): unknown {
  let root = structuredClone(doc);
  ops.forEach((op, i) => {
    try {
      root = applyOne(root, op);
    } catch (err) {
      if (!(err instanceof PointerError)) throw err;
      const what = op.from !== undefined ? `${op.op} ${op.from} -> ${op.path}` : `${op.op} ${op.path}`;
      throw new ApiError(422, 'Invalid', `the JSON patch's operation ${i} (${what}) cannot apply: ${err.message}`, {
        causes: [{ reason: op.op === 'test' ? 'FieldValueInvalid' : 'FieldValueNotFound', message: `operation ${i} (${what}): ${err.message}`, field: op.path }],
      });
    }
  });
  return root;
}

class PointerError extends Error {}

type Container = Record<string, unknown> | unknown[];

function applyOne(root: unknown, op: JsonPatchOperation): unknown {
  switch (op.op) {
    case 'add':
      return add(root, parseJsonPointer(op.path), structuredClone(op.value));
    case 'remove':
      return remove(root, parseJsonPointer(op.path));
    case 'replace': {
      const tokens = parseJsonPointer(op.path);
      get(root, tokens);
      if (tokens.length === 0) return structuredClone(op.value);
      const parent = parentOf(root, tokens);
      const last = tokens[tokens.length - 1]!;
      // In place, so that a replaced key keeps its position in the object.
      if (Array.isArray(parent)) parent[index(parent, last, false)] = structuredClone(op.value);
      else setOwn(parent, last, structuredClone(op.value));
      return root;
    }
    case 'move': {
      const from = parseJsonPointer(op.from!);
      const to = parseJsonPointer(op.path);
      if (to.length > from.length && from.every((t, i) => to[i] === t)) throw new PointerError('a value cannot move into one of its own children');
      const value = get(root, from);
      return add(remove(root, from), to, value);
    }
    case 'copy':
      return add(root, parseJsonPointer(op.path), structuredClone(get(root, parseJsonPointer(op.from!))));
    case 'test': {
      const actual = get(root, parseJsonPointer(op.path));
      if (!deepEqual(actual, op.value)) throw new PointerError(`test failed: the value is ${JSON.stringify(actual)}, not ${JSON.stringify(op.value)}`);
      return root;
    }
  }
}

/** get returns the value a pointer names, or throws when there is none. */
function get(root: unknown, tokens: string[]): unknown {
  let cur = root;
  for (const t of tokens) {
    if (Array.isArray(cur)) cur = cur[index(cur, t, false)];
    else if (isObject(cur) && Object.hasOwn(cur, t)) cur = cur[t];
    else throw new PointerError(missing(tokens));
  }
  return cur;
}

function parentOf(root: unknown, tokens: string[]): Container {
  const parent = get(root, tokens.slice(0, -1));
  if (Array.isArray(parent) || isObject(parent)) return parent;
  throw new PointerError(`the parent of the path is ${JSON.stringify(parent)}, not an object or an array`);
}

function add(root: unknown, tokens: string[], value: unknown): unknown {
  if (tokens.length === 0) return value;
  const parent = parentOf(root, tokens);
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) parent.splice(last === '-' ? parent.length : index(parent, last, true), 0, value);
  else setOwn(parent, last, value);
  return root;
}

function remove(root: unknown, tokens: string[]): unknown {
  if (tokens.length === 0) throw new PointerError('the whole document cannot be removed');
  const parent = parentOf(root, tokens);
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) parent.splice(index(parent, last, false), 1);
  else if (Object.hasOwn(parent, last)) delete parent[last];
  else throw new PointerError(missing(tokens));
  return root;
}

/** index reads an array index token: decimal without leading zeros, `-` only where a value is added. */
function index(arr: unknown[], token: string, adding: boolean): number {
  if (token === '-') throw new PointerError('"-" (the end of the array) names no element here; it is for add only');
  if (!/^(0|[1-9]\d*)$/.test(token)) throw new PointerError(`"${token}" is not an array index`);
  const n = Number(token);
  if (n > arr.length || (!adding && n === arr.length)) throw new PointerError(`index ${n} is out of range for an array of ${arr.length}`);
  return n;
}

function missing(tokens: string[]): string {
  return `the path /${tokens.map((t) => t.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')} does not exist`;
}
