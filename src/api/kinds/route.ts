import { readyOf } from './conditions.js';
import type { KindDefinition, ResourceObject } from './types.js';

const stringMatch = (what: string) => ({
  type: 'object',
  description: `How ${what} must look: exactly one of exact, prefix or regex.`,
  properties: {
    exact: { type: 'string', description: 'The whole value.' },
    prefix: { type: 'string', description: 'A prefix of the value.' },
    regex: { type: 'string', description: 'An RE2 regular expression matching the whole value (at most 1024 characters).' },
  },
  additionalProperties: false,
});

const destination = (what: string) => ({
  type: 'object',
  description: `${what}: a Function ({function: NAME}) or a Service ({service: NAME, subset?, port?}) in the Route's namespace.`,
  properties: {
    function: { type: 'string', minLength: 1, description: 'Name of a Function.' },
    service: { type: 'string', minLength: 1, description: 'Name of a Service.' },
    subset: { type: 'string', description: 'Only the Service endpoints of this version.' },
    port: { type: 'integer', description: 'Only the Service endpoints on this port.' },
  },
});

const filterList = (where: string) => ({
  type: 'array',
  description: `Filters run ${where}, in order. Each entry has one key, the filter's name, whose value is its configuration: jwt, authz, rateLimit, cors, fault, headers, timeout, retry, hedge.`,
  items: { type: 'object', minProperties: 1, maxProperties: 1 },
});

/** A rule field whose configuration a gateway filter checks (its own fields are described in words). */
const filterConfig = (description: string) => ({ type: 'object', description, 'x-kubernetes-preserve-unknown-fields': true });

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
  categories: ['all'],
  namespaced: true,
  description:
    'Route sends HTTP requests that reach the gateway to Functions and Services, with Istio VirtualService semantics: hosts, ordered match rules, weighted destinations, rewrites, redirects, faults, mirroring, CORS, header edits, timeouts, retries, and a declared filter chain.',
  specSchema: {
    type: 'object',
    required: ['http'],
    properties: {
      hosts: { type: 'array', items: { type: 'string' }, description: 'Host names the Route serves: exact names, *.suffix wildcards, or * (any). The most specific host wins. Default: *.' },
      filters: filterList('for every rule of the Route, before the rule\'s own'),
      http: {
        type: 'array',
        minItems: 1,
        description: 'Rules, tried in order: the first whose match holds handles the request. Each sets exactly one of route, redirect or directResponse.',
        items: {
          type: 'object',
          properties: {
            name: { type: 'string', description: 'A name for the rule, shown in logs and metrics.' },
            match: {
              type: 'array',
              description: 'Conditions; the rule applies when any entry holds (every field of one entry must hold). Without match the rule takes every request.',
              items: {
                type: 'object',
                properties: {
                  name: { type: 'string', description: 'A name for this match entry.' },
                  uri: stringMatch('the request path'),
                  method: stringMatch('the request method'),
                  authority: stringMatch('the Host (authority)'),
                  headers: { type: 'object', additionalProperties: stringMatch('the header'), description: 'Headers that must be present and match, by lower-case name.' },
                  withoutHeaders: { type: 'object', additionalProperties: stringMatch('the header'), description: 'Headers that must not match, by lower-case name.' },
                  queryParams: { type: 'object', additionalProperties: stringMatch('the query parameter'), description: 'Query parameters that must match, by name.' },
                  ignoreUriCase: { type: 'boolean', description: 'Match uri without regard to case.' },
                },
              },
            },
            route: {
              type: 'array',
              description: 'Weighted destinations: each request goes to one, in proportion to the weights.',
              items: {
                type: 'object',
                required: ['destination'],
                properties: {
                  destination: destination('Where to send the request'),
                  weight: { type: 'integer', minimum: 0, description: 'Share of the requests (all left out: equal shares).' },
                },
              },
            },
            redirect: {
              type: 'object',
              description: 'Answer with a redirect instead of forwarding.',
              properties: {
                uri: { type: 'string', description: 'Replace the path.' },
                authority: { type: 'string', description: 'Replace the host.' },
                scheme: { type: 'string', description: 'Replace the scheme (http or https).' },
                port: { type: 'integer', description: 'Replace the port.' },
                redirectCode: { type: 'integer', description: '301 (default), 302, 303, 307 or 308.' },
              },
            },
            directResponse: {
              type: 'object',
              description: 'Answer at once with a fixed status and body.',
              properties: {
                status: { type: 'integer', description: 'The HTTP status (200 to 599).' },
                body: { type: 'object', description: 'The body.', properties: { string: { type: 'string', description: 'The body as text.' } } },
              },
            },
            rewrite: {
              type: 'object',
              description: 'Change the request before forwarding it.',
              properties: {
                uri: { type: 'string', description: 'Replaces the part of the path the uri prefix matched.' },
                authority: { type: 'string', description: 'Replaces the Host header.' },
                uriRegexRewrite: {
                  type: 'object',
                  description: 'Rewrite the path with a regular expression: every match is replaced.',
                  properties: { match: { type: 'string', description: 'An RE2 regular expression.' }, rewrite: { type: 'string', description: 'The replacement; \\1 refers to a group.' } },
                },
              },
            },
            timeout: { type: ['string', 'number'], description: 'Deadline for the whole request, as a duration (2s, 500ms); the gateway answers 504 after it.' },
            retries: filterConfig('Retry failed attempts: attempts, perTryTimeout, retryOn (5xx, reset, connect-failure, retriable-4xx, ...).'),
            hedge: filterConfig('Send a second attempt when the first is slow: delay, maxAttempts.'),
            fault: filterConfig('Inject faults for testing: delay ({fixedDelay, percentage}) and abort ({httpStatus, percentage}).'),
            mirror: destination('A destination that gets a copy of each request; its answer is discarded'),
            mirrorPercentage: { description: 'Share of requests mirrored, as {value: PERCENT} (default 100).' },
            corsPolicy: filterConfig('Answer CORS preflights and add CORS headers: allowOrigins, allowMethods, allowHeaders, exposeHeaders, maxAge, allowCredentials.'),
            headers: filterConfig('Edit headers: request and response, each with set, add and remove.'),
            filters: filterList('for this rule, after the Route\'s'),
          },
        },
      },
    },
  },
  statusSchema: {
    type: 'object',
    description: 'Whether the gateway serves the Route, written by the route controller.',
    properties: {
      observedGeneration: { type: 'integer', description: 'The metadata.generation the status describes.' },
      conditions: { type: 'array', items: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Condition' }, description: 'Ready: True when the route is programmed in the gateway; False with InvalidRoute or FunctionNotFound otherwise.' },
    },
  },
  specRequired: true,
  printerColumns: [
    { name: 'READY', value: (o) => readyOf(o) },
    { name: 'HOSTS', value: (o) => (Array.isArray(o.spec?.hosts) ? o.spec.hosts.join(',') : '*') },
    { name: 'RULES', value: (o) => String(rule(o).length) },
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
