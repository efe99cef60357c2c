import type { FieldError } from '../kinds/types.js';

import { type FieldPath, FieldSet } from './field-set.js';
import { deepEqual, isJsonObject, type JsonObject, setOwn } from './json-value.js';
import { type FieldType, itemElement, resolveType } from './object-type.js';

const DEDUCED: FieldType = { kind: 'deduced' };

function childType(t: Extract<FieldType, { kind: 'map' }>, key: string): { type: FieldType; declared: boolean } {
  return Object.hasOwn(t.fields, key) ? { type: t.fields[key]!, declared: true } : { type: t.element, declared: false };
}

/**
 * fieldsOf is the set of fields a value sets, as kube counts them for ownership: every leaf (scalars,
 * atomic lists and maps), every item of a set or keyed list, and every entry of a map whose keys are
 * not declared fields (labels' keys). A declared field that holds a map is not itself a member.
 */
export function fieldsOf(v: unknown, t: FieldType, path: FieldPath = [], into = new FieldSet()): FieldSet {
  const r = resolveType(t, v);
  if (r.shape === 'leaf') into.insert(path);
  else if (r.shape === 'map') {
    for (const [k, child] of Object.entries(v as JsonObject)) {
      const { type, declared } = childType(r.type, k);
      const p = [...path, `f:${k}`];
      fieldsOf(child, type, p, into);
      if (!declared) into.insert(p);
    }
  } else {
    (v as unknown[]).forEach((item, i) => {
      const p = [...path, r.elements[i]!];
      fieldsOf(item, r.type.element, p, into);
      into.insert(p);
    });
  }
  return into;
}

/** What changed between two versions of an object, field by field. */
export interface Comparison {
  added: FieldSet;
  modified: FieldSet;
  removed: FieldSet;
}

/**
 * compare walks two versions of a value together: a field only on the right is added (with everything
 * under it), only on the left removed, on both with a different leaf value modified. A list item or
 * map entry present on both sides is not itself modified; its fields are compared.
 */
export function compare(lhs: unknown, rhs: unknown, t: FieldType): Comparison {
  const out: Comparison = { added: new FieldSet(), modified: new FieldSet(), removed: new FieldSet() };
  walkCompare(lhs, rhs, t, [], out);
  return out;
}

function walkCompare(lhs: unknown, rhs: unknown, t: FieldType, path: FieldPath, out: Comparison): void {
  if (lhs === undefined && rhs === undefined) return;
  if (lhs === undefined) return void fieldsOf(rhs, t, path, out.added);
  if (rhs === undefined) return void fieldsOf(lhs, t, path, out.removed);
  const l = resolveType(t, lhs);
  const r = resolveType(t, rhs);
  if (l.shape !== r.shape || l.shape === 'leaf') {
    if (!deepEqual(lhs, rhs)) {
      // A value that changed shape (a leaf that became a map) is removed and added, not modified.
      if (l.shape === r.shape) out.modified.insert(path);
      else {
        fieldsOf(lhs, t, path, out.removed);
        fieldsOf(rhs, t, path, out.added);
      }
    }
    return;
  }
  if (l.shape === 'map' && r.shape === 'map') {
    const a = lhs as JsonObject;
    const b = rhs as JsonObject;
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const { type, declared } = childType(l.type, k);
      const p = [...path, `f:${k}`];
      const av = Object.hasOwn(a, k) ? a[k] : undefined;
      const bv = Object.hasOwn(b, k) ? b[k] : undefined;
      walkCompare(av, bv, type, p, out);
      if (!declared && av === undefined && bv !== undefined) out.added.insert(p);
      if (!declared && bv === undefined && av !== undefined) out.removed.insert(p);
    }
    return;
  }
  if (l.shape === 'items' && r.shape === 'items') {
    const a = new Map(l.elements.map((pe, i) => [pe, (lhs as unknown[])[i]]));
    const b = new Map(r.elements.map((pe, i) => [pe, (rhs as unknown[])[i]]));
    for (const pe of new Set([...a.keys(), ...b.keys()])) {
      const p = [...path, pe];
      walkCompare(a.get(pe), b.get(pe), l.type.element, p, out);
      if (!a.has(pe)) out.added.insert(p);
      if (!b.has(pe)) out.removed.insert(p);
    }
  }
}

/**
 * mergeApplied puts an applied configuration over the live object: maps merge field by field, set and
 * keyed-list items merge by name (in structured-merge-diff's order, `mergeItems`), anything else the
 * configuration sets replaces the live value. A `null` in the configuration removes the field.
 */
export function mergeApplied(live: unknown, config: unknown, t: FieldType): unknown {
  if (config === undefined) return live;
  if (live === undefined || live === null) return structuredClone(config);
  const l = resolveType(t, live);
  const c = resolveType(t, config);
  if (l.shape !== c.shape || l.shape === 'leaf') return structuredClone(config);
  if (l.shape === 'map' && c.shape === 'map') {
    const out: JsonObject = { ...(live as JsonObject) };
    for (const [k, v] of Object.entries(config as JsonObject)) {
      if (v === null) delete out[k];
      else setOwn(out, k, mergeApplied(Object.hasOwn(out, k) ? out[k] : undefined, v, childType(l.type, k).type));
    }
    return out;
  }
  if (l.shape === 'items' && c.shape === 'items') {
    return mergeItems(live as unknown[], l.elements, config as unknown[], c.elements, (a, b) => (a === undefined ? structuredClone(b) : mergeApplied(a, b, l.type.element)));
  }
  return structuredClone(config);
}

/**
 * mergeItems interleaves the items of a live set or keyed list (`live`, named `liveNames`) with an
 * applied configuration's (`config`, `configNames`) in structured-merge-diff's order: the items both
 * hold come in the configuration's order; an item only the live list has keeps its place before the
 * next item of the configuration; an item only the configuration has lands just before the next item
 * both hold (so a new container applied between two existing ones goes between them, not at the end).
 * `merge` makes one output item from a live item (undefined when new) and a configuration item.
 */
function mergeItems(live: unknown[], liveNames: string[], config: unknown[], configNames: string[], merge: (live: unknown, config: unknown) => unknown): unknown[] {
  const liveByName = new Map(liveNames.map((n, i) => [n, live[i]]));
  const configByName = new Map(configNames.map((n, i) => [n, config[i]]));
  const shared = configNames.filter((n) => liveByName.has(n));
  let nextShared = 0;
  const emitted = new Set<string>();
  const out: unknown[] = [];
  const emitConfig = (name: string) => {
    out.push(merge(liveByName.get(name), configByName.get(name)));
    emitted.add(name);
    if (shared[nextShared] === name) nextShared++;
  };
  let li = 0;
  let ci = 0;
  while (li < liveNames.length || ci < configNames.length) {
    const ln = liveNames[li];
    const cn = configNames[ci];
    if (ln !== undefined && cn !== undefined) {
      if (ln === cn) {
        emitConfig(cn);
        li++;
        ci++;
        continue;
      }
      // A shared item the configuration places later: it comes when the configuration reaches it.
      if (configByName.has(ln) && nextShared < shared.length && shared[nextShared] !== ln) {
        li++;
        continue;
      }
    }
    if (ln !== undefined) {
      if (!configByName.has(ln)) {
        out.push(live[li]);
        li++;
        continue;
      }
      if (emitted.has(ln)) {
        li++;
        continue;
      }
    }
    if (cn !== undefined) {
      emitConfig(cn);
      ci++;
    } else li++;
  }
  return out;
}

/**
 * removePath deletes the field at a path from `root` in place. A map left empty by the removal goes
 * too, unless `keep` says some manager still owns it. Returns whether anything was removed.
 */
export function removePath(root: unknown, path: FieldPath, t: FieldType, keep: (p: FieldPath) => boolean): boolean {
  return removeAt(root, path, 0, t, keep).removed;
}

function removeAt(node: unknown, path: FieldPath, depth: number, t: FieldType, keep: (p: FieldPath) => boolean): { removed: boolean; nowEmpty: boolean } {
  const pe = path[depth]!;
  const last = depth === path.length - 1;
  const r = resolveType(t, node);
  if (r.shape === 'map' && pe.startsWith('f:')) {
    const obj = node as JsonObject;
    const k = pe.slice(2);
    if (!Object.hasOwn(obj, k)) return { removed: false, nowEmpty: false };
    if (last) delete obj[k];
    else {
      const sub = removeAt(obj[k], path, depth + 1, childType(r.type, k).type, keep);
      if (!sub.removed) return sub;
      if (sub.nowEmpty && !keep(path.slice(0, depth + 1))) delete obj[k];
    }
    return { removed: true, nowEmpty: Object.keys(obj).length === 0 };
  }
  if (r.shape === 'items') {
    const list = node as unknown[];
    const i = r.elements.indexOf(pe);
    if (i < 0) return { removed: false, nowEmpty: false };
    if (last) list.splice(i, 1);
    else if (!removeAt(list[i], path, depth + 1, r.type.element, keep).removed) return { removed: false, nowEmpty: false };
    // A list emptied by pruning stays (an empty list is a value); only maps are tidied away.
    return { removed: true, nowEmpty: false };
  }
  return { removed: false, nowEmpty: false };
}

/**
 * configProblems finds what makes an applied configuration ambiguous: an item of a keyed list without
 * its key, or two items under one key (kube refuses these with 422, as no field could be owned).
 */
export function configProblems(v: unknown, t: FieldType, field = ''): FieldError[] {
  if (t.kind === 'list' && t.listType !== 'atomic' && Array.isArray(v)) {
    const errs: FieldError[] = [];
    const seen = new Set<string>();
    v.forEach((item, i) => {
      const pe = itemElement(t, item);
      const where = `${field}[${i}]`;
      if (pe === undefined) errs.push({ field: where, message: t.listType === 'set' ? 'a set holds scalars only' : `Required value: the list is keyed by ${t.keys.join(', ')}; each item needs them as scalars`, reason: 'FieldValueRequired' });
      else if (seen.has(pe)) errs.push({ field: where, message: `Duplicate value: another item has the same ${t.listType === 'set' ? 'value' : t.keys.join(', ')}`, reason: 'FieldValueDuplicate' });
      else seen.add(pe);
      errs.push(...configProblems(item, t.element, where));
    });
    return errs;
  }
  if ((t.kind === 'map' && !t.atomic) || t.kind === 'deduced') {
    if (!isJsonObject(v)) return [];
    const m = t.kind === 'map' ? t : { kind: 'map' as const, fields: {}, element: DEDUCED, atomic: false };
    return Object.entries(v).flatMap(([k, child]) => configProblems(child, childType(m, k).type, field ? `${field}.${k}` : k));
  }
  return [];
}
