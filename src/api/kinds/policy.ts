import { formatAge } from '../../util/quantity.js';

import { readyOf } from './conditions.js';
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
  specSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['rego'],
    properties: {
      rego: { type: 'string', minLength: 1, description: 'The Rego module' },
      regoVersion: { enum: ['v0', 'v1'], description: 'Rego syntax of the module (v1 by default)' },
    },
  },
  printerColumns: [
    { name: 'READY', jsonPath: '.status.conditions[0].status', value: (o) => readyOf(o) },
    { name: 'PACKAGE', jsonPath: '.status.package', value: (o) => String(o.status?.package ?? '<none>') },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
  ],
};
