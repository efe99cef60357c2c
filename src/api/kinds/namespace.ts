import { formatAge } from '../../util/quantity.js';

import type { KindDefinition } from './types.js';

/** Namespace: a cluster-scoped grouping; its labels select policy (e.g. Pod Security levels). */
export const namespaceKind: KindDefinition = {
  kind: 'Namespace',
  plural: 'namespaces',
  singular: 'namespace',
  shortNames: ['ns'],
  namespaced: false,
  specRequired: false,
  specSchema: { type: 'object' },
  printerColumns: [{ name: 'AGE', type: 'date', value: (o) => formatAge(o.metadata.creationTimestamp) }],
};
