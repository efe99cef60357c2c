import type { AdmissionHook } from '../api/admission.js';

import type { Informer } from './runtime/index.js';

/**
 * referenceWarnings warns (without refusing) when a Function that Routes send traffic to is deleted:
 * the routes stay, report FunctionNotFound in their status, and their requests get 503.
 */
export function referenceWarnings(routes: Informer): AdmissionHook {
  return {
    name: 'references',
    admit(req) {
      if (req.operation !== 'DELETE' || req.kind !== 'Function') return { allowed: true };
      const users = routes
        .list()
        .filter((r) => (r.metadata.namespace ?? 'default') === (req.namespace ?? 'default'))
        .filter((r) => JSON.stringify(r.spec ?? {}).includes(`"function":${JSON.stringify(req.name)}`))
        .map((r) => r.metadata.name);
      if (!users.length) return { allowed: true };
      return { allowed: true, warnings: [`function ${req.name} is used by route${users.length > 1 ? 's' : ''} ${users.join(', ')}; requests to it will get 503 until it exists again`] };
    },
  };
}
