import { Ajv, type ValidateFunction } from 'ajv';

import { PolicyEngine, type PreparedQuery, type PrepareOptions, RegoError, RegoErrors, type RObject } from '../../policy/index.js';
import { TemplateError } from '../errors.js';

import type { K8sObject } from './types.js';

/** The only Gatekeeper target Skiff implements (Kubernetes admission). */
export const TARGET = 'admission.k8s.gatekeeper.sh';

const TEMPLATE_GROUP = 'templates.gatekeeper.sh';
const CEL_ENGINE = 'K8sNativeValidation';

/** CompiledTemplate is a ConstraintTemplate ready to evaluate: its Rego prepared once, its parameter schema compiled once. */
export interface CompiledTemplate {
  /** metadata.name (the lower-cased kind) */
  name: string;
  /** the constraint kind this template creates */
  kind: string;
  regoVersion: 0 | 1;
  /** Rego package of the template, e.g. ['k8srequiredlabels'] */
  pkg: string[];
  engine: PolicyEngine;
  query: PreparedQuery;
  /** validates `spec.parameters` (undefined: any parameters accepted) */
  validateParameters?: ValidateFunction;
  /** the openAPIV3Schema of parameters, for printing */
  schema?: Record<string, unknown>;
  source: K8sObject;
}

interface RegoSource {
  rego: string;
  libs: string[];
  regoVersion: 0 | 1;
  /** where the Rego was found, e.g. `spec.targets[0].code[0].source` or `spec.targets[0]` */
  field: string;
}

/**
 * newSchemaCompiler returns an ajv instance that reads Kubernetes structural schemas: the
 * `x-kubernetes-*` extensions are known keywords and OpenAPI `format`s are not enforced, as the
 * API server does for CRD validation.
 */
export function newSchemaCompiler(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
  for (const k of ['x-kubernetes-preserve-unknown-fields', 'x-kubernetes-int-or-string', 'x-kubernetes-embedded-resource', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type', 'x-kubernetes-validations']) {
    ajv.addKeyword({ keyword: k, schemaType: ['boolean', 'string', 'array', 'object'] });
  }
  return ajv;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** regoRef renders a package path as a `data` reference, quoting segments that are not identifiers. */
export function regoRef(path: string[]): string {
  return 'data' + path.map((s) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`)).join('');
}

/**
 * OPA still accepts a few deprecated built-ins in Rego v0 that Gatekeeper library templates use
 * (re_match in k8srequiredlabels, any/all in older ones); Skiff's engine implements only current
 * built-ins, so v0 calls are routed to equivalents in a small module shipped with every template.
 */
const COMPAT_PKG = 'skiff_rego_v0_compat';
const COMPAT_MODULE = `package ${COMPAT_PKG}

re_match(pattern, value) := regex.match(pattern, value)

any(xs) := true if { some x in xs; x == true }
any(xs) := false if { not any_true(xs) }
any_true(xs) if { some x in xs; x == true }

all(xs) := true if { not any_false(xs) }
all(xs) := false if { any_false(xs) }
any_false(xs) if { some x in xs; x != true }

set_diff(a, b) := a - b
`;

/** routeDeprecated rewrites calls of deprecated v0 built-ins to the compat module (outside strings and comments). */
function routeDeprecated(text: string): { text: string; changed: boolean } {
  let changed = false;
  const out = text.replace(/("(?:[^"\\\n]|\\.)*"|`[^`]*`|#[^\n]*)|(?<![\w.])(re_match|any|all|set_diff)(\s*\()/g, (m, lit: string | undefined, fn: string, paren: string) => {
    if (lit !== undefined) return m;
    changed = true;
    return `data.${COMPAT_PKG}.${fn}${paren}`;
  });
  return { text: out, changed };
}

/**
 * forbiddenDataRefs lists the roots under `data` a module reads other than Gatekeeper's allowed
 * `data.inventory` and `data.lib` (strings and comments skipped), with their line numbers.
 */
function forbiddenDataRefs(text: string): Array<{ ref: string; line: number }> {
  const out: Array<{ ref: string; line: number }> = [];
  const re = /("(?:[^"\\\n]|\\.)*"|`[^`]*`|#[^\n]*)|(?<![\w.])data\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*"([^"]*)"\s*\])/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[1] !== undefined) continue;
    const root = m[2] ?? m[3] ?? '';
    if (root === 'inventory' || root === 'lib') continue;
    out.push({ ref: `data.${root}`, line: text.slice(0, m.index).split('\n').length });
  }
  return out;
}

const withoutData = (p: string[]): string[] => (p[0] === 'data' ? p.slice(1) : p);

/**
 * pickRego finds the template's Rego and its version as Gatekeeper does: the `code[]` entry with
 * `engine: Rego` (Rego v1 when its `source.version` is `v1`, v0 when absent or `v0`), else the
 * legacy `rego`/`libs` fields (always v0).
 */
function pickRego(name: string, target: Record<string, unknown>): RegoSource {
  const code = Array.isArray(target.code) ? (target.code as unknown[]) : [];
  const at = code.findIndex((c) => isObj(c) && c.engine === 'Rego');
  if (at >= 0) {
    const regoCode = code[at] as Record<string, unknown>;
    const field = `spec.targets[0].code[${at}].source`;
    const src = isObj(regoCode.source) ? regoCode.source : {};
    if (typeof src.rego !== 'string' || !src.rego.trim()) throw new TemplateError(name, `${field}.rego is empty; put the Rego module there`);
    if (src.version !== undefined && src.version !== 'v0' && src.version !== 'v1') throw new TemplateError(name, `${field}.version must be "v0" or "v1" (the Rego syntax of the module), not ${JSON.stringify(src.version)}`);
    return { rego: src.rego, libs: stringList(name, src.libs, `code[${at}].source.libs`), regoVersion: src.version === 'v1' ? 1 : 0, field };
  }
  const engines = code.filter(isObj);
  if (typeof target.rego === 'string' && target.rego.trim()) return { rego: target.rego, libs: stringList(name, target.libs, 'libs'), regoVersion: 0, field: 'spec.targets[0]' };
  if (engines.some((c) => c.engine === CEL_ENGINE))
    throw new TemplateError(name, `its only engine is CEL (${CEL_ENGINE}), which Skiff does not support yet; add a Rego implementation (spec.targets[0].rego, or code[] with engine: Rego) to use it`, 'template_cel_unsupported');
  throw new TemplateError(name, 'spec.targets[0] has no Rego: set spec.targets[0].rego (or code[] with engine: Rego)');
}

function stringList(name: string, v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new TemplateError(name, `spec.targets[0].${field} must be a list of Rego modules (strings)`);
  return v as string[];
}

/**
 * compileTemplate checks a ConstraintTemplate and compiles it: one engine per template (so each
 * template's libraries stay its own, as in Gatekeeper), Rego v0 unless the Rego source declares
 * `version: v1` (a v0 module may still opt in to v1 checks with `import rego.v1`), a `violation` rule required, libs confined to `package lib...`, and the
 * parameters' openAPIV3Schema compiled with ajv. Templates whose only engine is CEL are refused.
 * `data` becomes the engine's base document (the client passes one holding the live inventory);
 * `queryOptions` (time budget, decision log) are bound into the prepared `violation` query, so that
 * each evaluation passes only its input and the engine need not merge options per call.
 */
export function compileTemplate(obj: K8sObject, ajv: Ajv, data?: RObject, queryOptions: PrepareOptions = {}): CompiledTemplate {
  const name = String(obj?.metadata?.name ?? '');
  const label = name || '<unnamed>';
  if (!isObj(obj) || obj.kind !== 'ConstraintTemplate' || !String(obj.apiVersion ?? '').startsWith(`${TEMPLATE_GROUP}/`))
    throw new TemplateError(label, `expected apiVersion ${TEMPLATE_GROUP}/v1 and kind ConstraintTemplate, got ${String(obj?.apiVersion)} ${String(obj?.kind)}`);
  const spec = isObj(obj.spec) ? obj.spec : {};
  const crdSpec = isObj(spec.crd) && isObj(spec.crd.spec) ? spec.crd.spec : {};
  const kind = isObj(crdSpec.names) && typeof crdSpec.names.kind === 'string' ? crdSpec.names.kind : '';
  if (!kind) throw new TemplateError(label, 'spec.crd.spec.names.kind is required: it names the constraint kind this template creates');
  if (!name) throw new TemplateError(label, `metadata.name is required (it must be "${kind.toLowerCase()}")`);
  if (name !== kind.toLowerCase()) throw new TemplateError(name, `metadata.name must be the lower-cased kind "${kind.toLowerCase()}" (Gatekeeper's rule)`);
  const targets = Array.isArray(spec.targets) ? spec.targets.filter(isObj) : [];
  if (targets.length !== 1) throw new TemplateError(name, `spec.targets must hold exactly one target (${TARGET}), found ${targets.length}`);
  const target = targets[0]!;
  if (target.target !== TARGET) throw new TemplateError(name, `spec.targets[0].target must be "${TARGET}", not "${String(target.target)}"`);
  const src = pickRego(name, target);

  const bad = [src.rego, ...src.libs].flatMap((t, i) => forbiddenDataRefs(t).map((r) => `${r.ref} (${i === 0 ? 'rego' : `lib ${i - 1}`} line ${r.line})`));
  if (bad.length) throw new TemplateError(name, `invalid data references: ${bad.join(', ')}; templates may read only data.inventory and data.lib (Gatekeeper's rule)`, 'template_data_ref');

  const engine = new PolicyEngine();
  if (data) engine.setData(data);
  let pkg: string[];
  // modules are named after the fields that hold them, so a Rego error names template, field and line
  const regoFile = `${name}/${src.field}.rego`;
  const libFile = (i: number) => `${name}/${src.field}.libs[${i}]`;
  try {
    const route = (t: string) => {
      // a v0 module that imports rego.v1 is checked as v1, where OPA refuses deprecated built-ins
      if (src.regoVersion !== 0 || /^\s*import\s+rego\.v1\b/m.test(t)) return t;
      const r = routeDeprecated(t);
      if (r.changed && !engine.moduleFiles().includes(`${name}/compat.rego`)) engine.addModule(`${name}/compat.rego`, COMPAT_MODULE, { regoVersion: 1 });
      return r.text;
    };
    pkg = withoutData(engine.addModule(regoFile, route(src.rego), { regoVersion: src.regoVersion }).pkg);
    src.libs.forEach((lib, i) => {
      const m = engine.addModule(libFile(i), route(lib), { regoVersion: src.regoVersion });
      if (withoutData(m.pkg)[0] !== 'lib') throw new TemplateError(name, `library ${i} declares package "${withoutData(m.pkg).join('.')}"; libraries must use a package under "lib" (e.g. package lib.helpers)`);
    });
    engine.compile();
  } catch (e) {
    if (e instanceof TemplateError) throw e;
    if (e instanceof RegoError || e instanceof RegoErrors) {
      const v0Syntax = src.regoVersion === 1 && /`(if|contains)` keyword is required/.test(e.message);
      const hint = v0Syntax ? `\n${src.field}.version is "v1": write Rego v1 (\`if\` before rule bodies, \`contains\` for multi-value rules), or drop version to read the module as Rego v0` : '';
      throw new TemplateError(name, `Rego (v${src.regoVersion}) does not compile:\n${e.message}${hint}`, 'template_rego', { cause: e });
    }
    throw e;
  }
  if (!engine.rules().some((r) => r.path.length === pkg.length + 1 && r.path[pkg.length] === 'violation' && pkg.every((p, i) => r.path[i] === p)))
    throw new TemplateError(name, `the Rego has no "violation" rule in package ${pkg.join('.')}; Gatekeeper templates report violations as violation[{"msg": msg}]`, 'template_no_violation');
  const query = engine.prepare(regoRef([...pkg, 'violation']), queryOptions);

  const validation = isObj(crdSpec.validation) ? crdSpec.validation : {};
  const schema = isObj(validation.openAPIV3Schema) ? validation.openAPIV3Schema : isObj(validation.legacySchema) ? undefined : undefined;
  let validateParameters: ValidateFunction | undefined;
  if (schema) {
    try {
      validateParameters = ajv.compile(schema);
    } catch (e) {
      throw new TemplateError(name, `spec.crd.spec.validation.openAPIV3Schema is not a valid schema: ${(e as Error).message}`, 'template_schema');
    }
  }
  return { name, kind, regoVersion: src.regoVersion, pkg, engine, query, validateParameters, schema, source: obj };
}
