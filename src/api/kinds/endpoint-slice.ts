import { formatAge } from '../../util/quantity.js';

import type { FieldError, KindDefinition, ResourceObject } from './types.js';

/** The label that ties an EndpointSlice to the Function whose replicas it lists (Kubernetes' service-name label). */
export const ENDPOINT_SLICE_FUNCTION_LABEL = 'kubernetes.io/service-name';
/** The label naming the node whose replicas a slice lists: each node writes only its own slices. */
export const ENDPOINT_SLICE_NODE_LABEL = 'skiff.dev/node';
/** The label naming who manages a slice (Kubernetes' managed-by label). */
export const ENDPOINT_SLICE_MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';

/** One replica as a slice lists it: where it runs and whether it takes traffic. */
export interface Endpoint {
  addresses: string[];
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  nodeName?: string;
  targetRef?: { kind?: string; namespace?: string; name?: string; uid?: string };
  zone?: string;
}

/** A port of the endpoints in a slice. */
export interface EndpointPort {
  name?: string;
  port?: number;
  protocol?: string;
  appProtocol?: string;
}

const ADDRESS_TYPES = ['IPv4', 'IPv6', 'FQDN'];

/**
 * EndpointSlice: Kubernetes' discovery.k8s.io/v1 EndpointSlice (top-level fields, no spec): where the
 * replicas of a Function run. Each node lists the replicas it runs of each Function in one slice,
 * labelled with the Function (`kubernetes.io/service-name`) and the node (`skiff.dev/node`), whose
 * address and port are that node's mesh listener; gateways on other nodes route there over mTLS.
 */
export const endpointSliceKind: KindDefinition = {
  group: 'discovery.k8s.io',
  version: 'v1',
  statusSubresource: false,
  kind: 'EndpointSlice',
  plural: 'endpointslices',
  singular: 'endpointslice',
  namespaced: true,
  description:
    'EndpointSlice lists where the replicas of a Function run: each node writes one slice per Function it runs, naming its mesh address and the replicas that are ready, and gateways on every node route through them.',
  specRequired: false,
  specSchema: { type: 'object' },
  rootFields: {
    addressType: { type: 'string', enum: ADDRESS_TYPES, description: 'The kind of address every endpoint of this slice has: IPv4, IPv6 or FQDN.' },
    endpoints: {
      type: 'array',
      maxItems: 1000,
      description: 'The replicas, each with its addresses, readiness and node.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['addresses'],
        properties: {
          addresses: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'string' }, description: 'Addresses of the replica (its node\'s mesh address).' },
          conditions: {
            type: 'object',
            additionalProperties: false,
            properties: {
              ready: { type: 'boolean', description: 'Whether the replica takes new requests.' },
              serving: { type: 'boolean', description: 'Whether the replica answers, even while terminating.' },
              terminating: { type: 'boolean', description: 'Whether the replica is going away.' },
            },
          },
          nodeName: { type: 'string', description: 'The node that runs the replica.' },
          zone: { type: 'string', description: 'The zone of that node.' },
          hostname: { type: 'string', description: 'A name for the replica.' },
          deprecatedTopology: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, description: 'Accepted for compatibility.' },
          hints: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, description: 'Topology hints; accepted for compatibility.' },
          targetRef: {
            type: 'object',
            additionalProperties: false,
            properties: {
              apiVersion: { type: 'string' },
              kind: { type: 'string' },
              namespace: { type: 'string' },
              name: { type: 'string' },
              uid: { type: 'string' },
              resourceVersion: { type: 'string' },
              fieldPath: { type: 'string' },
            },
            description: 'The Function replica the endpoint stands for.',
          },
        },
      },
    },
    ports: {
      type: 'array',
      maxItems: 100,
      description: 'The ports every endpoint of this slice answers on.',
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          name: { type: 'string' },
          port: { type: 'integer', minimum: 1, maximum: 65535 },
          protocol: { type: 'string', enum: ['TCP', 'UDP', 'SCTP'] },
          appProtocol: { type: 'string' },
        },
      },
    },
  },
  // The top-level fields are documentation for OpenAPI; the checks that keep a slice usable are here.
  validate(obj: ResourceObject): FieldError[] {
    const errs: FieldError[] = [];
    const bad = (field: string, message: string) => errs.push({ field, message: `Invalid value: ${message}`, reason: 'FieldValueInvalid' });
    if (obj.addressType === undefined) errs.push({ field: 'addressType', message: 'Required value: one of IPv4, IPv6 or FQDN', reason: 'FieldValueRequired' });
    else if (!ADDRESS_TYPES.includes(obj.addressType as string)) bad('addressType', `${JSON.stringify(obj.addressType)}: must be one of ${ADDRESS_TYPES.join(', ')}`);
    const endpoints: unknown = obj.endpoints ?? [];
    if (!Array.isArray(endpoints) || endpoints.length > 1000) bad('endpoints', 'must be a list of at most 1000 endpoints');
    else {
      endpoints.forEach((e: unknown, i) => {
        const ep = e as Partial<Endpoint> | null;
        if (!ep || typeof ep !== 'object') return void bad(`endpoints[${i}]`, 'must be an object');
        const a = ep.addresses;
        if (!Array.isArray(a) || a.length < 1 || a.length > 100 || a.some((x) => typeof x !== 'string' || !x)) bad(`endpoints[${i}].addresses`, 'must list between 1 and 100 addresses');
        if (ep.nodeName !== undefined && typeof ep.nodeName !== 'string') bad(`endpoints[${i}].nodeName`, 'must be a string');
        const c = ep.conditions;
        if (c !== undefined && (typeof c !== 'object' || c === null || Object.values(c).some((v) => typeof v !== 'boolean'))) bad(`endpoints[${i}].conditions`, 'ready, serving and terminating are booleans');
      });
    }
    const ports: unknown = obj.ports ?? [];
    if (!Array.isArray(ports) || ports.length > 100) bad('ports', 'must be a list of at most 100 ports');
    else {
      ports.forEach((p: unknown, i) => {
        const port = (p as EndpointPort | null)?.port;
        if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) bad(`ports[${i}].port`, `${JSON.stringify(port)}: must be between 1 and 65535`);
      });
    }
    return errs;
  },
  printerColumns: [
    { name: 'ADDRESSTYPE', value: (o) => String(o.addressType ?? '') },
    { name: 'PORTS', value: (o) => ((o.ports as EndpointPort[] | undefined) ?? []).map((p) => String(p.port ?? '')).join(',') || '<unset>' },
    {
      name: 'ENDPOINTS',
      value: (o) => {
        const eps = (o.endpoints as Endpoint[] | undefined) ?? [];
        const addrs = [...new Set(eps.flatMap((e) => e.addresses))];
        return addrs.length ? addrs.slice(0, 3).join(',') + (addrs.length > 3 ? ` + ${addrs.length - 3} more...` : '') : '<unset>';
      },
    },
    { name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) },
  ],
};
