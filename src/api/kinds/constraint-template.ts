import { formatAge } from '../../util/quantity.js';

import type { FieldError, KindDefinition, ResourceObject } from './types.js';

/** The API group of Gatekeeper constraint kinds (one kind per ConstraintTemplate). */
export const CONSTRAINTS_GROUP = 'constraints.gatekeeper.sh';

/**
 * The versions Gatekeeper's ConstraintTemplate CRD serves beside v1, its storage version: the same
 * schema, files from older library releases name them.
 */
export const TEMPLATE_SERVED_VERSIONS = ['v1beta1', 'v1alpha1'];

/**
 * The versions Gatekeeper serves constraint kinds in beside v1beta1, their storage version (the CRD
 * that the constraint framework's CreateCRD builds for each template).
 */
export const CONSTRAINT_SERVED_VERSIONS = ['v1alpha1'];

/**
 * constraintTemplateKind is Gatekeeper's ConstraintTemplate (templates.gatekeeper.sh/v1, also served
 * as v1beta1 and v1alpha1; cluster-scoped). `check` compiles the template so that a bad one is refused with 422 naming
 * the problem (Rego error with its line, CEL-only engine, missing violation rule).
 */
export function constraintTemplateKind(check: (obj: ResourceObject) => FieldError[]): KindDefinition {
  return {
    group: 'templates.gatekeeper.sh',
    version: 'v1',
    servedVersions: TEMPLATE_SERVED_VERSIONS,
    versionDefaults: defaultLegacySchema,
    kind: 'ConstraintTemplate',
    plural: 'constrainttemplates',
    singular: 'constrainttemplate',
    // Gatekeeper's CRD has neither short names nor categories; `ct` is Skiff's own shorthand.
    shortNames: ['ct'],
    namespaced: false,
    description: 'ConstraintTemplate is Gatekeeper\'s policy template: Rego that finds violations, and the constraint kind it creates (constraints.gatekeeper.sh/v1beta1) whose objects say where the policy applies and with which parameters.',
    specSchema: {
      type: 'object',
      required: ['crd', 'targets'],
      properties: {
        crd: {
          type: 'object',
          required: ['spec'],
          description: 'The constraint kind this template creates.',
          properties: {
            spec: {
              type: 'object',
              required: ['names'],
              description: 'Names and schema of the constraint kind.',
              properties: {
                names: {
                  type: 'object',
                  required: ['kind'],
                  description: 'Names of the constraint kind.',
                  properties: {
                    kind: { type: 'string', minLength: 1, description: 'The constraint kind, in CamelCase; its plural is the lower-cased kind, which must be the template\'s name.' },
                    shortNames: { type: 'array', items: { type: 'string' }, description: 'Accepted for compatibility with Gatekeeper.' },
                  },
                },
                validation: {
                  type: 'object',
                  description: 'Schema of the constraints\' spec.parameters.',
                  properties: {
                    openAPIV3Schema: { type: 'object', description: 'OpenAPI v3 schema that parameters must satisfy.', 'x-kubernetes-preserve-unknown-fields': true },
                    legacySchema: { type: 'boolean', description: 'Keep parameters the schema does not list, as Gatekeeper\'s legacy schemas did. Defaults to false in v1 and to true in v1beta1 and v1alpha1.' },
                  },
                },
              },
            },
          },
        },
        targets: {
          type: 'array',
          // Atomic, as Gatekeeper's CRD leaves it: one manager owns the whole list of targets.
          'x-kubernetes-list-type': 'atomic',
          minItems: 1,
          description: 'The policy code. Skiff runs the admission.k8s.gatekeeper.sh target with the Rego engine.',
          items: {
            type: 'object',
            required: ['target'],
            'x-kubernetes-preserve-unknown-fields': true,
            properties: {
              target: { type: 'string', description: 'admission.k8s.gatekeeper.sh.' },
              rego: { type: 'string', description: 'The Rego module with violation[{"msg": msg}] rules.' },
              libs: { type: 'array', items: { type: 'string' }, description: 'Rego library modules the main one imports (data.lib...).' },
              code: { type: 'array', description: 'Code by engine (engine: Rego with source.rego and source.libs; K8sNativeValidation (CEL) alone is refused).', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
            },
          },
        },
      },
    },
    statusSchema: { type: 'object', description: 'Gatekeeper\'s template status.', 'x-kubernetes-preserve-unknown-fields': true },
    validate: check,
    printerColumns: [
      { name: 'KIND', description: 'The constraint kind the template creates', jsonPath: '.spec.crd.spec.names.kind', value: (o) => String(o.spec?.crd?.spec?.names?.kind ?? '') },
      { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
    ],
  };
}

/**
 * defaultLegacySchema applies the defaults of Gatekeeper's template CRD: `spec.crd.spec.validation`
 * and its `legacySchema` default to true in v1beta1 and v1alpha1 (schemas written for them were never
 * required to be structural, so unknown parameters are kept) and to false in v1.
 */
function defaultLegacySchema(obj: ResourceObject, version: string): void {
  const crdSpec = obj.spec?.crd?.spec;
  if (!isObject(crdSpec)) return;
  const legacySchema = version !== 'v1';
  if (crdSpec.validation === undefined || crdSpec.validation === null) crdSpec.validation = { legacySchema };
  else if (isObject(crdSpec.validation) && crdSpec.validation.legacySchema === undefined) crdSpec.validation.legacySchema = legacySchema;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * constraintKind is the kind a template creates (constraints.gatekeeper.sh/v1beta1, cluster-scoped,
 * plural = lower-cased kind as Gatekeeper names its CRDs). `parameters` is checked against the
 * template's schema by `check`, which also validates `spec.match` and `enforcementAction`;
 * `templateValidation` gives the template's `spec.crd.spec.validation` at each call, so OpenAPI and
 * field validation follow a changed template.
 */
export function constraintKind(kind: string, check: (obj: ResourceObject) => FieldError[], templateValidation?: () => { openAPIV3Schema?: unknown; legacySchema?: unknown } | undefined): KindDefinition {
  const lower = kind.toLowerCase();
  const specSchema = constraintSpecSchema({});
  return {
    group: CONSTRAINTS_GROUP,
    version: 'v1beta1',
    servedVersions: CONSTRAINT_SERVED_VERSIONS,
    kind,
    plural: lower,
    singular: lower,
    // As Gatekeeper's constraint CRDs: `kubectl get constraints` lists every constraint kind.
    categories: ['constraint', 'constraints'],
    namespaced: false,
    description: `${kind} is a Gatekeeper constraint: it applies the ConstraintTemplate named ${lower} to the objects it matches, with the given parameters.`,
    // Gatekeeper constraints may omit spec; `check` validates what is there.
    specRequired: false,
    specSchema,
    statusSchema: {
      type: 'object',
      description: 'Results of the last audit, written by Skiff\'s audit.',
      properties: {
        auditTimestamp: { type: 'string', description: 'When the last audit ran.' },
        totalViolations: { type: 'integer', description: 'How many stored objects violate the constraint.' },
        violations: { type: 'array', description: 'The violations found (kind, name, namespace, message, enforcementAction).', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
      'x-kubernetes-preserve-unknown-fields': true,
    },
    // parameters are checked by `check` against the template's schema; OpenAPI shows that schema.
    publishedSpecSchema: () => {
      const v = templateValidation?.();
      const params = v?.openAPIV3Schema;
      if (params === null || typeof params !== 'object' || Array.isArray(params)) return specSchema;
      // As Gatekeeper builds the constraint CRD: a legacySchema template keeps unknown parameters.
      return constraintSpecSchema(v?.legacySchema === true ? { ...params, 'x-kubernetes-preserve-unknown-fields': true } : (params as Record<string, unknown>));
    },
    validate: check,
    printerColumns: [
      { name: 'ENFORCEMENT-ACTION', description: 'What a violation does: deny, dryrun or warn', jsonPath: '.spec.enforcementAction', value: (o) => String(o.spec?.enforcementAction ?? 'deny') },
      { name: 'TOTAL-VIOLATIONS', type: 'integer', description: 'Violations found by the last audit', jsonPath: '.status.totalViolations', value: (o) => (o.status?.totalViolations === undefined ? '<none>' : String(o.status.totalViolations)) },
      { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
    ],
  };
}

/** The spec of a constraint kind, with `parameters` described by `parameters` (the template's openAPIV3Schema). */
function constraintSpecSchema(parameters: Record<string, unknown>): Record<string, unknown> {
  return {
    type: 'object',
    description: 'Which objects the constraint applies to, what its template is given, and what happens to a violation.',
    properties: {
      match: {
        type: 'object',
        description: 'Which objects the constraint applies to; an object must meet every criterion given. Fields: kinds, namespaces, excludedNamespaces, labelSelector, namespaceSelector, name, scope.',
        properties: {
          kinds: { type: 'array', description: 'Kinds to match, as API groups and kinds ("*" for any).', items: { type: 'object', properties: { apiGroups: { type: 'array', items: { type: 'string' }, description: 'API groups ("" is the core group, "*" any).' }, kinds: { type: 'array', items: { type: 'string' }, description: 'Kinds ("*" for any).' } } } },
          namespaces: { type: 'array', items: { type: 'string' }, description: 'Only objects in these namespaces (a trailing * matches a prefix).' },
          excludedNamespaces: { type: 'array', items: { type: 'string' }, description: 'Never objects in these namespaces (a trailing * matches a prefix).' },
          labelSelector: { type: 'object', description: 'Only objects whose labels match (matchLabels, matchExpressions).', 'x-kubernetes-preserve-unknown-fields': true },
          namespaceSelector: { type: 'object', description: 'Only objects whose namespace\'s labels match (matchLabels, matchExpressions).', 'x-kubernetes-preserve-unknown-fields': true },
          name: { type: 'string', description: 'Only the object of this name (a trailing * matches a prefix).' },
          scope: { type: 'string', description: 'Cluster, Namespaced or * (the default): which objects by their scope.' },
          source: { type: 'string', description: 'Accepted for compatibility with Gatekeeper (All, Generated, Original).' },
        },
      },
      parameters: { description: 'Values handed to the template\'s Rego as input.parameters, checked against the template\'s schema.', ...parameters },
      enforcementAction: { type: 'string', description: 'deny (refuse violating requests; the default), dryrun (record violations in audit only) or warn (admit with a warning).' },
      scopedEnforcementActions: { type: 'array', description: 'Accepted for compatibility with Gatekeeper; Skiff applies enforcementAction.', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
    },
  };
}
