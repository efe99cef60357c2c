import { formatAge } from '../../util/quantity.js';

import { CORE_GROUP, type KindDefinition } from './types.js';

/**
 * Namespace: a cluster-scoped grouping; its labels select policy (e.g. Pod Security levels). It is
 * Kubernetes' core v1 Namespace; `skiff.dev/v1`, where it lived first, stays an alias.
 */
export const namespaceKind: KindDefinition = {
  group: CORE_GROUP,
  version: 'v1',
  legacyApiVersions: ['skiff.dev/v1'],
  kind: 'Namespace',
  plural: 'namespaces',
  singular: 'namespace',
  shortNames: ['ns'],
  namespaced: false,
  description: 'Namespace groups namespaced objects under one name. Its labels select policy: Pod Security levels (pod-security.kubernetes.io/enforce) and Gatekeeper namespaceSelectors read them.',
  specRequired: false,
  specSchema: { type: 'object', description: 'Accepted for compatibility with Kubernetes; Skiff keeps nothing in a Namespace\'s spec.' },
  printerColumns: [{ name: 'AGE', value: (o) => formatAge(o.metadata.creationTimestamp) }],
};
