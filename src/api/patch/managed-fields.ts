import type { FieldError } from '../kinds/types.js';

import { FieldSet } from './field-set.js';
import { isJsonObject } from './json-value.js';

/** One entry of `metadata.managedFields`, in kube's shape. */
export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time?: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Record<string, unknown>;
  subresource?: string;
}

/** A decoded entry: who, how, and the fields it owns. */
export interface Manager {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time?: string;
  subresource?: string;
  set: FieldSet;
}

/** How many `Update` entries an object keeps before the oldest are folded into one, as kube caps them. */
export const MAX_UPDATE_MANAGERS = 10;

/** The manager the oldest `Update` entries are folded into beyond {@link MAX_UPDATE_MANAGERS}. */
export const ANCIENT_MANAGER = 'ancient-changes';

/** The longest field manager name kube accepts. */
export const MAX_MANAGER_LENGTH = 128;

/**
 * decodeManagedFields reads `metadata.managedFields`; malformed entries are FieldErrors naming them.
 * Two entries for the same manager, operation and subresource are one manager, as kube merges them.
 */
export function decodeManagedFields(raw: unknown): { managers: Manager[]; errors: FieldError[] } {
  const managers: Manager[] = [];
  const errors: FieldError[] = [];
  if (raw === undefined || raw === null) return { managers, errors };
  if (!Array.isArray(raw)) return { managers, errors: [{ field: 'metadata.managedFields', message: 'must be a list of entries' }] };
  raw.forEach((e, i) => {
    const field = `metadata.managedFields[${i}]`;
    if (!isJsonObject(e)) return void errors.push({ field, message: 'must be an object' });
    if (typeof e.manager !== 'string') errors.push({ field: `${field}.manager`, message: 'Required value: a string' });
    if (e.operation !== 'Apply' && e.operation !== 'Update') errors.push({ field: `${field}.operation`, message: 'must be Apply or Update', reason: 'FieldValueNotSupported' });
    if (e.fieldsType !== undefined && e.fieldsType !== 'FieldsV1') errors.push({ field: `${field}.fieldsType`, message: 'must be FieldsV1', reason: 'FieldValueNotSupported' });
    let set = new FieldSet();
    try {
      set = FieldSet.fromFieldsV1(e.fieldsV1 ?? {});
    } catch (err) {
      errors.push({ field: `${field}.fieldsV1`, message: (err as Error).message });
    }
    if (errors.length) return;
    const m: Manager = { manager: e.manager as string, operation: e.operation as Manager['operation'], apiVersion: typeof e.apiVersion === 'string' ? e.apiVersion : '', set };
    if (typeof e.time === 'string') m.time = e.time;
    if (typeof e.subresource === 'string' && e.subresource) m.subresource = e.subresource;
    const same = managers.find((x) => sameManager(x, m));
    if (same) same.set = same.set.union(set);
    else managers.push(m);
  });
  return { managers, errors };
}

/**
 * sameManager tells whether two entries are one manager: kube tells `Update` managers apart by
 * apiVersion too, `Apply` managers by name and subresource only.
 */
export function sameManager(a: Pick<Manager, 'manager' | 'operation' | 'apiVersion' | 'subresource'>, b: Pick<Manager, 'manager' | 'operation' | 'apiVersion' | 'subresource'>): boolean {
  return a.manager === b.manager && a.operation === b.operation && (a.subresource ?? '') === (b.subresource ?? '') && (a.operation === 'Apply' || a.apiVersion === b.apiVersion);
}

/**
 * encodeManagedFields writes managers back in kube's order (Apply before Update, then oldest first,
 * then by name), without empty ones, with at most {@link MAX_UPDATE_MANAGERS} Update entries.
 */
export function encodeManagedFields(managers: Manager[]): ManagedFieldsEntry[] | undefined {
  const kept = capUpdates(managers.filter((m) => !m.set.empty()));
  if (!kept.length) return undefined;
  kept.sort((a, b) => cmp(a.operation, b.operation) || cmp(a.time ?? '', b.time ?? '') || cmp(a.manager, b.manager) || cmp(a.apiVersion, b.apiVersion) || cmp(a.subresource ?? '', b.subresource ?? ''));
  return kept.map((m) => ({
    manager: m.manager,
    operation: m.operation,
    apiVersion: m.apiVersion,
    ...(m.time ? { time: m.time } : {}),
    fieldsType: 'FieldsV1',
    fieldsV1: m.set.toFieldsV1(),
    ...(m.subresource ? { subresource: m.subresource } : {}),
  }));
}

function capUpdates(managers: Manager[]): Manager[] {
  const updates = managers.filter((m) => m.operation === 'Update');
  if (updates.length <= MAX_UPDATE_MANAGERS) return managers;
  const existing = updates.find((m) => m.manager === ANCIENT_MANAGER);
  const candidates = updates.filter((m) => m !== existing).sort((a, b) => cmp(a.time ?? '', b.time ?? ''));
  // Fold the oldest into one entry so that, with it, MAX_UPDATE_MANAGERS Update entries remain; what
  // they owned stays owned, by a manager that says it is history.
  const oldest = candidates.slice(0, updates.length - MAX_UPDATE_MANAGERS + (existing ? 0 : 1));
  const ancient: Manager = { manager: ANCIENT_MANAGER, operation: 'Update', apiVersion: existing?.apiVersion ?? oldest[0]!.apiVersion, set: existing?.set ?? new FieldSet() };
  for (const m of oldest) ancient.set = ancient.set.union(m.set);
  return [...managers.filter((m) => !oldest.includes(m) && m !== existing), ancient];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** nowTime is a managedFields timestamp: RFC 3339 to the second, as kube writes it. */
export function nowTime(now = new Date()): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
