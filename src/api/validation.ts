import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

import { apiVersionOf, type FieldError, type KindDefinition, type ResourceObject } from './kinds/types.js';

export const API_VERSION = 'skiff.dev/v1';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(|[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;

/**
 * namespaceProblem says why a string cannot be a namespace name (an RFC 1123 label), or undefined when it can.
 */
export function namespaceProblem(ns: string): string | undefined {
  if (ns.length <= 63 && DNS_LABEL.test(ns)) return undefined;
  return `"${ns}" must be a lowercase RFC 1123 label (a-z, 0-9, '-'), at most 63 characters`;
}

/**
 * nameProblem says why a string cannot name an object of a kind, or undefined when it can: Namespaces
 * are RFC 1123 labels (they appear as one URL segment and in other objects' metadata), every other kind
 * an RFC 1123 subdomain.
 */
export function nameProblem(def: KindDefinition, name: string): string | undefined {
  if (def.kind === 'Namespace' && !def.group) return namespaceProblem(name);
  if (name.length <= 253 && DNS_SUBDOMAIN.test(name)) return undefined;
  return `"${name}" must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-', '.'), at most 253 characters`;
}

/**
 * Validator checks whole objects: envelope and metadata by Kubernetes' naming rules, `spec` by the
 * kind's JSON Schema (ajv, all errors), then the kind's own semantic checks. It reports every bad field
 * at once so that a person fixes a manifest in one pass. Unknown fields are not its business: field
 * validation (`field-validation.ts`) prunes them before, and refuses, warns or ignores as asked.
 */
export class Validator {
  private readonly ajv = new Ajv({ allErrors: true, strict: false });
  private readonly compiled = new WeakMap<KindDefinition, ValidateFunction>();

  validate(def: KindDefinition, obj: unknown, expectNamespace?: string): FieldError[] {
    const errs: FieldError[] = [];
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return [{ field: '<root>', message: 'must be an object', reason: 'FieldValueInvalid' }];
    const o = obj as Record<string, unknown>;
    const apiVersion = apiVersionOf(def);
    if (o.apiVersion !== apiVersion) errs.push({ field: 'apiVersion', message: o.apiVersion === undefined ? `Required value: use ${apiVersion}` : `unsupported value "${String(o.apiVersion)}": use ${apiVersion}`, reason: o.apiVersion === undefined ? 'FieldValueRequired' : 'FieldValueNotSupported' });
    if (o.kind !== def.kind) errs.push({ field: 'kind', message: `expected "${def.kind}", got "${String(o.kind)}"`, reason: 'FieldValueInvalid' });
    errs.push(...this.validateMeta(def, o.metadata, expectNamespace));
    if (def.specRequired !== false) {
      if (o.spec === undefined) errs.push({ field: 'spec', message: 'Required value', reason: 'FieldValueRequired' });
      else {
        errs.push(...this.validateSpec(def, o.spec));
        if (def.requiredFields && o.spec !== null && typeof o.spec === 'object') errs.push(...def.requiredFields(o.spec as Record<string, unknown>));
      }
    }
    if (errs.length === 0 && def.validate) errs.push(...def.validate(obj as ResourceObject));
    return errs;
  }

  private validateMeta(def: KindDefinition, meta: unknown, expectNamespace?: string): FieldError[] {
    const errs: FieldError[] = [];
    if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return [{ field: 'metadata', message: 'Required value: an object with at least a name', reason: 'FieldValueRequired' }];
    const m = meta as Record<string, unknown>;
    if (typeof m.name !== 'string' || m.name === '') errs.push({ field: 'metadata.name', message: 'Required value', reason: 'FieldValueRequired' });
    else {
      const bad = nameProblem(def, m.name);
      if (bad) errs.push({ field: 'metadata.name', message: bad });
    }
    if (def.namespaced) {
      if (m.namespace !== undefined && (typeof m.namespace !== 'string' || namespaceProblem(m.namespace))) {
        errs.push({ field: 'metadata.namespace', message: namespaceProblem(String(m.namespace))! });
      } else if (expectNamespace !== undefined && m.namespace !== undefined && m.namespace !== expectNamespace) {
        errs.push({ field: 'metadata.namespace', message: `does not match the namespace of the request ("${expectNamespace}")` });
      }
    } else if (m.namespace !== undefined && m.namespace !== '') {
      errs.push({ field: 'metadata.namespace', message: `${def.kind} is cluster-scoped and takes no namespace` });
    }
    for (const which of ['labels', 'annotations'] as const) {
      const v = m[which];
      if (v === undefined) continue;
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        errs.push({ field: `metadata.${which}`, message: 'must be a map of strings' });
        continue;
      }
      for (const [k, val] of Object.entries(v)) {
        if (typeof val !== 'string') errs.push({ field: `metadata.${which}.${k}`, message: 'value must be a string' });
        else if (which === 'labels' && (!LABEL_VALUE.test(val) || val.length > 63)) errs.push({ field: `metadata.labels.${k}`, message: `"${val}" is not a valid label value (alphanumerics, '-', '_', '.', at most 63)` });
        if (!LABEL_KEY.test(k)) errs.push({ field: `metadata.${which}.${k}`, message: `"${k}" is not a valid ${which === 'labels' ? 'label' : 'annotation'} key` });
      }
    }
    return errs;
  }

  private validateSpec(def: KindDefinition, spec: unknown): FieldError[] {
    // Keyed by the definition object: a kind registered again (a changed template) gets a fresh schema.
    let fn = this.compiled.get(def);
    if (!fn) {
      fn = this.ajv.compile(def.specSchema);
      this.compiled.set(def, fn);
    }
    if (fn(spec)) return [];
    return dedupe((fn.errors ?? []).filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'oneOf' && e.keyword !== 'if').map(toFieldError));
  }
}

function pointerToPath(prefix: string, pointer: string): string {
  let out = prefix;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(seg) ? `[${seg}]` : `.${seg}`;
  }
  return out;
}

function toFieldError(e: ErrorObject): FieldError {
  const base = pointerToPath('spec', e.instancePath);
  switch (e.keyword) {
    case 'required':
      return { field: `${base}.${(e.params as { missingProperty: string }).missingProperty}`, message: 'Required value', reason: 'FieldValueRequired' };
    case 'additionalProperties':
      return { field: `${base}.${(e.params as { additionalProperty: string }).additionalProperty}`, message: `unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`, reason: 'FieldValueNotSupported' };
    case 'enum':
      return { field: base, message: `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`, reason: 'FieldValueNotSupported' };
    case 'type':
      return { field: base, message: `must be of type ${(e.params as { type: string }).type}`, reason: 'FieldValueInvalid' };
    default:
      return { field: base, message: e.message ?? 'is invalid', reason: 'FieldValueInvalid' };
  }
}

function dedupe(errs: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errs.filter((e) => {
    const k = `${e.field}\0${e.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
