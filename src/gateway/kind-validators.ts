import type { KindValidators } from '../api/kinds/types.js';

import { compileRoute } from './router/compile-route.js';
import { compileService } from './upstream/service-spec.js';

/**
 * gatewayKindValidators refuse, at admission (422), a Route or Service the gateway could not compile,
 * with the compilers' own field paths and messages. The composition root registers them with the API
 * (`builtinKinds`), so that the API never imports the gateway.
 */
export const gatewayKindValidators: KindValidators = Object.freeze({
  Route: (obj) => compileRoute(obj).errors,
  Service: (obj) => compileService(obj).errors,
});
