import { formatAge } from '../../util/quantity.js';

import { readyOf } from './conditions.js';
import { replayStatusSchema, rolloutSchema } from './policy-rollout.js';
import type { KindDefinition } from './types.js';

/**
 * Policy: a Rego module stored as a resource. Every Policy is loaded into the platform's one policy
 * engine (one `data` tree, as in OPA); gateway `authz` filters query it by rule path, e.g.
 * `data.http.authz.allow`. Status reports whether it compiled, with the error locations if not.
 *
 * @example
 * apiVersion: skiff.dev/v1
 * kind: Policy
 * metadata: { name: http-authz }
 * spec:
 *   rego: |
 *     package http.authz
 *     default allow := false
 *     allow if input.attributes.request.http.method == "GET"
 */
export const policyKind: KindDefinition = {
  kind: 'Policy',
  plural: 'policies',
  singular: 'policy',
  shortNames: ['pol'],
  namespaced: true,
  description:
    'Policy is a Rego module loaded into the platform\'s one policy engine, where every Policy shares one data tree as in OPA. Gateway authz filters query its rules by path (data.http.authz.allow).',
  specSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['rego'],
    properties: {
      rego: { type: 'string', minLength: 1, description: 'The Rego module\'s source, starting with its package line. A module that does not parse or compile is refused (422) or, when it conflicts with other Policies, reported in status.' },
      regoVersion: { enum: ['v0', 'v1'], description: 'Rego syntax of the module: v1 (the default: if and contains are required) or v0 (the older syntax).' },
      rollout: rolloutSchema('generation'),
    },
  },
  statusSchema: {
    type: 'object',
    description: 'Whether the module is loaded into the engine, written by the policy controller.',
    properties: {
      package: { type: 'string', description: 'The module\'s package as a data path (data.http.authz).' },
      errors: { type: 'array', items: { type: 'string' }, description: 'Why the module is not loaded, with locations; empty when it is.' },
      replay: replayStatusSchema,
      active: { type: 'object', description: 'The generation still deciding while a newer one is held back or does not compile: generation, rego, regoVersion.', 'x-kubernetes-preserve-unknown-fields': true },
      observedGeneration: { type: 'integer', description: 'The metadata.generation the status describes.' },
      conditions: { type: 'array', items: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Condition' }, description: 'Ready: True once the module is loaded; False (CompileError, RolloutHeld) with the reason otherwise.' },
    },
  },
  printerColumns: [
    { name: 'READY', jsonPath: '.status.conditions[0].status', value: (o) => readyOf(o) },
    { name: 'PACKAGE', jsonPath: '.status.package', value: (o) => String(o.status?.package ?? '<none>') },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
  ],
};
