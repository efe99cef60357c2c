import { badRequest } from './errors.js';
import type { KindDefinition, ResourceObject } from './kinds/types.js';

interface Requirement {
  field: string;
  op: '=' | '!=';
  value: string;
}

/** A compiled field selector: call `matches(obj)`. */
export interface FieldSelector {
  matches(obj: ResourceObject): boolean;
  readonly empty: boolean;
  /** The value every `field=value` requirement pins the field to (e.g. `metadata.name` for a watch of one object). */
  pinned(field: string): string | undefined;
}

/** Every kind can be selected on these, as in Kubernetes. */
const COMMON_FIELDS = ['metadata.name', 'metadata.namespace'];

/** selectableFields lists the field selector keys a kind supports. */
export function selectableFields(def: KindDefinition): string[] {
  return [...COMMON_FIELDS, ...(def.selectableFields ?? [])];
}

/**
 * parseFieldSelector reads Kubernetes' field selector syntax: `field=value`, `field==value`,
 * `field!=value`, joined by commas; `\,`, `\=` and `\\` escape those characters in a value. Only the
 * fields the kind supports are accepted (400 otherwise, naming the field and the supported ones).
 */
export function parseFieldSelector(def: KindDefinition, text: string | null | undefined): FieldSelector {
  const src = text ?? '';
  const reqs: Requirement[] = [];
  const known = selectableFields(def);
  for (const term of splitUnescaped(src, ',')) {
    if (term.trim() === '') continue;
    const m = /^([^=!]+?)\s*(==|=|!=)(.*)$/s.exec(term.trim());
    if (!m) throw badRequest(`invalid fieldSelector "${src}": "${term}" is not field=value, field==value or field!=value`);
    const field = m[1]!.trim();
    if (!known.includes(field)) throw badRequest(`field label not supported: ${field} (${def.plural} can be selected on ${known.join(', ')})`);
    reqs.push({ field, op: m[2] === '!=' ? '!=' : '=', value: unescape(m[3]!) });
  }
  return {
    empty: reqs.length === 0,
    matches: (obj) => reqs.every((r) => (fieldValue(obj, r.field) === r.value) === (r.op === '=')),
    pinned: (field) => reqs.find((r) => r.field === field && r.op === '=')?.value,
  };
}

/** fieldValue reads a dotted field path as a selector compares it: a missing field is the empty string. */
export function fieldValue(obj: ResourceObject, path: string): string {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return '';
    cur = (cur as Record<string, unknown>)[part];
  }
  if (cur === undefined || cur === null) return '';
  return typeof cur === 'object' ? JSON.stringify(cur) : String(cur);
}

function splitUnescaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && i + 1 < s.length) {
      cur += s[i]! + s[i + 1]!;
      i++;
    } else if (s[i] === sep) {
      out.push(cur);
      cur = '';
    } else {
      cur += s[i];
    }
  }
  out.push(cur);
  return out;
}

function unescape(v: string): string {
  return v.replace(/\\(.)/g, '$1');
}
