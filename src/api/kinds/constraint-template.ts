import { formatAge } from '../../util/quantity.js';

import type { FieldError, KindDefinition, ResourceObject } from './types.js';

/** The API group of Gatekeeper constraint kinds (one kind per ConstraintTemplate). */
export const CONSTRAINTS_GROUP = 'constraints.gatekeeper.sh';

/**
 * constraintTemplateKind is Gatekeeper's ConstraintTemplate (templates.gatekeeper.sh/v1,
 * cluster-scoped). `check` compiles the template so that a bad one is refused with 422 naming
 * the problem (Rego error with its line, CEL-only engine, missing violation rule).
 */
export function constraintTemplateKind(check: (obj: ResourceObject) => FieldError[]): KindDefinition {
  return {
    group: 'templates.gatekeeper.sh',
    version: 'v1',
    kind: 'ConstraintTemplate',
    plural: 'constrainttemplates',
    singular: 'constrainttemplate',
    shortNames: ['ct'],
    namespaced: false,
    specSchema: {
      type: 'object',
      required: ['crd', 'targets'],
      properties: {
        crd: { type: 'object', required: ['spec'], properties: { spec: { type: 'object', required: ['names'], properties: { names: { type: 'object', required: ['kind'], properties: { kind: { type: 'string', minLength: 1 } } } } } } },
        targets: { type: 'array', minItems: 1, items: { type: 'object', required: ['target'] } },
      },
    },
    validate: check,
    printerColumns: [
      { name: 'KIND', description: 'The constraint kind the template creates', jsonPath: '.spec.crd.spec.names.kind', value: (o) => String(o.spec?.crd?.spec?.names?.kind ?? '') },
      { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
    ],
  };
}

/**
 * constraintKind is the kind a template creates (constraints.gatekeeper.sh/v1beta1, cluster-scoped,
 * plural = lower-cased kind as Gatekeeper names its CRDs). `parameters` is checked against the
 * template's schema by `check`, which also validates `spec.match` and `enforcementAction`.
 */
export function constraintKind(kind: string, check: (obj: ResourceObject) => FieldError[]): KindDefinition {
  const lower = kind.toLowerCase();
  return {
    group: CONSTRAINTS_GROUP,
    version: 'v1beta1',
    kind,
    plural: lower,
    singular: lower,
    namespaced: false,
    // Gatekeeper constraints may omit spec; `check` validates what is there.
    specRequired: false,
    specSchema: {
      type: 'object',
      properties: {
        match: { type: 'object' },
        parameters: {},
        enforcementAction: { type: 'string' },
      },
    },
    validate: check,
    printerColumns: [
      { name: 'ENFORCEMENT-ACTION', description: 'What a violation does: deny, dryrun or warn', jsonPath: '.spec.enforcementAction', value: (o) => String(o.spec?.enforcementAction ?? 'deny') },
      { name: 'TOTAL-VIOLATIONS', type: 'integer', description: 'Violations found by the last audit', jsonPath: '.status.totalViolations', value: (o) => (o.status?.totalViolations === undefined ? '<none>' : String(o.status.totalViolations)) },
      { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
    ],
  };
}
