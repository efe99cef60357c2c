import { badRequest } from '../errors.js';

import { isJsonObject, type JsonObject, setOwn } from './json-value.js';

/**
 * applyStrategicAsMerge applies a strategic merge patch the way kube-apiserver would for a kind
 * without patch strategies (a custom resource): as a JSON merge patch, every list replaced whole.
 * The directives a client may still send are honoured where they mean something without merge keys
 * (`$patch: replace|delete|merge` on a map, `$retainKeys`, `$deleteFromPrimitiveList/NAME`) or
 * ignored where they only order (`$setElementOrder/NAME`); any other `$` key, or a directive inside a
 * list item, is a 400 rather than data stored by mistake.
 */
export function applyStrategicAsMerge(target: unknown, patch: unknown): unknown {
  return merge(target, patch, '');
}

function merge(target: unknown, patch: unknown, path: string): unknown {
  if (Array.isArray(patch)) {
    checkNoDirectives(patch, path);
    return patch;
  }
  if (!isJsonObject(patch)) return patch;
  const directive = patch.$patch;
  if (directive !== undefined && directive !== 'replace' && directive !== 'delete' && directive !== 'merge') {
    throw badRequest(`the strategic merge patch has "$patch": ${JSON.stringify(directive)} at ${path || '<root>'}; use replace, delete or merge`);
  }
  if (directive === 'delete') return undefined;
  const base: JsonObject = directive !== 'replace' && isJsonObject(target) ? { ...target } : {};
  let retain: string[] | undefined;
  for (const [k, v] of Object.entries(patch)) {
    const here = `${path}.${k}`;
    if (k === '$patch' || k.startsWith('$setElementOrder/')) continue;
    if (k === '$retainKeys') {
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw badRequest(`the strategic merge patch's $retainKeys at ${path || '<root>'} must be a list of field names`);
      retain = v as string[];
      continue;
    }
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      if (!Array.isArray(v)) throw badRequest(`the strategic merge patch's ${k} at ${path || '<root>'} must be a list`);
      const list = base[field];
      if (Array.isArray(list)) setOwn(base, field, list.filter((x) => !v.some((d) => d === x)));
      continue;
    }
    if (k.startsWith('$')) throw badRequest(`the strategic merge patch has the directive "${k}" at ${path || '<root>'}, which Skiff's kinds do not support (they have no patch strategies); send a merge patch`);
    const merged = v === null ? undefined : merge(Object.hasOwn(base, k) ? base[k] : undefined, v, here);
    if (merged === undefined) delete base[k];
    else setOwn(base, k, merged);
  }
  if (retain) for (const k of Object.keys(base)) if (!retain.includes(k)) delete base[k];
  return base;
}

function checkNoDirectives(list: unknown[], path: string): void {
  for (const item of list) {
    if (isJsonObject(item) && Object.keys(item).some((k) => k.startsWith('$'))) {
      throw badRequest(`the strategic merge patch has a directive inside the list at ${path}; Skiff's lists have no merge keys for strategic merge, so a list is replaced whole: send the whole list`);
    }
  }
}
