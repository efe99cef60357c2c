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
  namespaced: true,
  specSchema: {
    type: 'object',
    required: ['endpoints'],
    properties: {
      endpoints: {
        type: 'array',
        items: {
          type: 'object',
          required: ['address', 'port'],
          properties: {
            address: { type: 'string', minLength: 1 },
            port: { type: 'integer', minimum: 1, maximum: 65535 },
            version: { type: 'string' },
            weight: { type: 'integer', minimum: 1 },
            labels: { type: 'object', additionalProperties: { type: 'string' } },
          },
        },
      },
      trafficPolicy: { type: 'object' },
      tls: {
        type: 'object',
        properties: {
          mode: { type: 'string', enum: ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'] },
          sni: { type: 'string' },
          caFile: { type: 'string' },
          caCertificates: { type: 'string' },
          clientCertificate: { type: 'string' },
          privateKey: { type: 'string' },
        },
      },
    },
  },
  specRequired: true,
  printerColumns: [
    { name: 'ENDPOINTS', type: 'integer', description: 'Number of endpoints', value: (o) => String(Array.isArray(o.spec?.endpoints) ? o.spec.endpoints.length : 0) },
    { name: 'VERSIONS', value: (o) => [...new Set(endpointsOf(o).map((e) => e?.version ?? e?.labels?.version).filter(Boolean))].join(',') },
    { name: 'LB', wide: true, value: (o) => o.spec?.trafficPolicy?.loadBalancer?.simple ?? (o.spec?.trafficPolicy?.loadBalancer?.consistentHash ? 'CONSISTENT_HASH' : 'ROUND_ROBIN') },
  ],
};
