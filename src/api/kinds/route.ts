import { readyOf } from './conditions.js';
import type { KindDefinition, ResourceObject } from './types.js';

const stringMatch = {
  type: 'object',
  properties: { exact: { type: 'string' }, prefix: { type: 'string' }, regex: { type: 'string' } },
  additionalProperties: false,
};

const destination = {
  type: 'object',
  properties: { function: { type: 'string', minLength: 1 }, service: { type: 'string', minLength: 1 }, subset: { type: 'string' }, port: { type: 'integer' } },
};

const filterList = { type: 'array', items: { type: 'object', minProperties: 1, maxProperties: 1 } };

const rule = (o: ResourceObject): Array<Record<string, unknown>> => (Array.isArray(o.spec?.http) ? o.spec.http : []);

/**
 * routeKind is the Route resource (skiff.dev/v1, short name `rt`): Istio VirtualService semantics —
 * hosts, ordered match rules, weighted Function or Service destinations, rewrites, redirects, faults,
 * mirroring, CORS, header edits, timeouts, retries — plus a declared filter chain (`spec.filters`).
 *
 * @example
 * apiVersion: skiff.dev/v1
 * kind: Route
 * metadata: { name: hello, namespace: default }
 * spec:
 *   hosts: ["*"]
 *   http:
 *     - match: [{ uri: { prefix: /hello } }]
 *       route: [{ destination: { function: hello }, weight: 100 }]
 */
export const routeKind: KindDefinition = {
  kind: 'Route',
  plural: 'routes',
  singular: 'route',
  shortNames: ['rt'],
  namespaced: true,
  specSchema: {
    type: 'object',
    required: ['http'],
    properties: {
      hosts: { type: 'array', items: { type: 'string' } },
      filters: filterList,
      http: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            match: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  uri: stringMatch,
                  method: stringMatch,
                  authority: stringMatch,
                  headers: { type: 'object', additionalProperties: stringMatch },
                  withoutHeaders: { type: 'object', additionalProperties: stringMatch },
                  queryParams: { type: 'object', additionalProperties: stringMatch },
                  ignoreUriCase: { type: 'boolean' },
                },
              },
            },
            route: { type: 'array', items: { type: 'object', required: ['destination'], properties: { destination, weight: { type: 'integer', minimum: 0 } } } },
            mirror: destination,
            filters: filterList,
            timeout: { type: ['string', 'number'] },
          },
        },
      },
    },
  },
  specRequired: true,
  printerColumns: [
    { name: 'READY', value: (o) => readyOf(o) },
    { name: 'HOSTS', description: 'Host names the route matches (* for any)', value: (o) => (Array.isArray(o.spec?.hosts) ? o.spec.hosts.join(',') : '*') },
    { name: 'RULES', type: 'integer', description: 'Number of HTTP rules', value: (o) => String(rule(o).length) },
    {
      name: 'DESTINATIONS',
      wide: true,
      value: (o) =>
        rule(o)
          .flatMap((r) => (Array.isArray(r.route) ? r.route : []))
          .map((d) => d?.destination?.function ?? (d?.destination?.service ? `svc/${d.destination.service}` : '?'))
          .join(','),
    },
    { name: 'FILTERS', wide: true, value: (o) => (Array.isArray(o.spec?.filters) ? o.spec.filters.map((f: object) => Object.keys(f)[0]).join(',') : '') },
  ],
};
