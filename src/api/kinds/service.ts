import type { KindDefinition, ResourceObject } from './types.js';

interface EndpointView { version?: string; labels?: { version?: string } }
const endpointsOf = (o: ResourceObject): Array<EndpointView | undefined> => (Array.isArray(o.spec?.endpoints) ? o.spec.endpoints : []);

/**
 * serviceKind is the Service resource (skiff.dev/v1, short name `svc`): HTTP upstreams (`endpoints`
 * with an address, port and version label) and their traffic policy in Istio DestinationRule terms
 * (load balancer, connection-pool limits, outlier detection, slow start, retry budget), plus upstream TLS.
 *
 * @example
 * apiVersion: skiff.dev/v1
 * kind: Service
 * metadata: { name: api, namespace: default }
 * spec:
 *   endpoints:
 *     - { address: 127.0.0.1, port: 9001, version: v1 }
 *     - { address: 127.0.0.1, port: 9002, version: v2 }
 *   trafficPolicy:
 *     loadBalancer: { simple: LEAST_REQUEST }
 *     outlierDetection: { consecutive5xxErrors: 5, baseEjectionTime: 30s, maxEjectionPercent: 50 }
 */
export const serviceKind: KindDefinition = {
  kind: 'Service',
  plural: 'services',
  singular: 'service',
  shortNames: ['svc'],
  categories: ['all'],
  namespaced: true,
  description:
    'Service is a set of HTTP upstreams (endpoints with an address, a port and a version) and the traffic policy for reaching them, in Istio DestinationRule terms: load balancing, connection-pool limits, outlier detection, slow start, a retry budget, and upstream TLS. Routes send traffic to it.',
  specSchema: {
    type: 'object',
    required: ['endpoints'],
    properties: {
      endpoints: {
        type: 'array',
        description: 'The upstream instances. Every connection goes through the operator\'s --allow-upstream rules.',
        items: {
          type: 'object',
          required: ['address', 'port'],
          properties: {
            address: { type: 'string', minLength: 1, description: 'Host name or IP address.' },
            port: { type: 'integer', minimum: 1, maximum: 65535, description: 'TCP port.' },
            version: { type: 'string', description: 'The version this endpoint runs; a Route destination\'s subset selects endpoints by it.' },
            weight: { type: 'integer', minimum: 1, description: 'Relative share of requests for weighted balancing (1 to 1000, default 1).' },
            labels: { type: 'object', additionalProperties: { type: 'string' }, description: 'Labels of the endpoint; labels.version stands in for version.' },
          },
        },
      },
      ports: { description: 'Accepted for compatibility; the gateway uses each endpoint\'s port.' },
      trafficPolicy: {
        type: 'object',
        description: 'How requests are spread over the endpoints and how failing endpoints are treated.',
        properties: {
          loadBalancer: {
            type: 'object',
            description: 'simple: ROUND_ROBIN (default), LEAST_REQUEST or RANDOM; or consistentHash: {httpHeaderName} or {httpCookie: {name}}; warmupDuration (slow start of new endpoints, e.g. 30s).',
            'x-kubernetes-preserve-unknown-fields': true,
          },
          connectionPool: {
            type: 'object',
            description: 'Limits per endpoint: tcp {maxConnections, connectTimeout} and http {http1MaxPendingRequests, maxRequests, idleTimeout}. Requests beyond them fail fast (circuit breaking).',
            'x-kubernetes-preserve-unknown-fields': true,
          },
          outlierDetection: {
            type: 'object',
            description: 'Eject failing endpoints for a while: consecutive5xxErrors, consecutiveGatewayErrors, baseEjectionTime, maxEjectionTime, maxEjectionPercent.',
            'x-kubernetes-preserve-unknown-fields': true,
          },
          retryBudget: {
            type: 'object',
            description: 'Bound retries to this Service: budgetPercent of active requests (default 20) and minRetryConcurrency (default 3).',
            'x-kubernetes-preserve-unknown-fields': true,
          },
        },
      },
      tls: {
        type: 'object',
        description: 'TLS to the endpoints (Istio ClientTLSSettings names). Every file named must lie inside an --allow-host-dir.',
        properties: {
          mode: { type: 'string', enum: ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'], description: 'DISABLE: plain HTTP. SIMPLE: verify the server. MUTUAL: also present a client certificate from files. ISTIO_MUTUAL: the mesh identity, verified against the internal CA.' },
          sni: { type: 'string', description: 'Server name to send and to verify (except under ISTIO_MUTUAL); default the endpoint address.' },
          caFile: { type: 'string', description: 'PEM file of the CAs that verify the server (default: the system CAs).' },
          caCertificates: { type: 'string', description: 'Istio\'s name for caFile; set one of them.' },
          clientCertificate: { type: 'string', description: 'PEM file of the client certificate (MUTUAL).' },
          privateKey: { type: 'string', description: 'PEM file of the client key (MUTUAL).' },
        },
      },
    },
  },
  specRequired: true,
  printerColumns: [
    { name: 'ENDPOINTS', value: (o) => String(Array.isArray(o.spec?.endpoints) ? o.spec.endpoints.length : 0) },
    { name: 'VERSIONS', value: (o) => [...new Set(endpointsOf(o).map((e) => e?.version ?? e?.labels?.version).filter(Boolean))].join(',') },
    { name: 'LB', wide: true, value: (o) => o.spec?.trafficPolicy?.loadBalancer?.simple ?? (o.spec?.trafficPolicy?.loadBalancer?.consistentHash ? 'CONSISTENT_HASH' : 'ROUND_ROBIN') },
  ],
};
