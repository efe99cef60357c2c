import { authzFilter } from './authz/index.js';
import { corsFilter } from './cors/index.js';
import { faultFilter } from './fault/index.js';
import { headersFilter } from './headers/index.js';
import { hedgeFilter } from './hedge/index.js';
import { jwtFilter } from './jwt/index.js';
import { rateLimitFilter } from './rate-limit/index.js';
import { retryFilter } from './retry/index.js';
import { timeoutFilter } from './timeout/index.js';
import type { FilterModule } from './types.js';

/** FILTERS lists every filter a Route may declare in `spec.filters` or `spec.http[].filters`, by name. */
export const FILTERS: ReadonlyMap<string, FilterModule> = new Map<string, FilterModule>(
  [jwtFilter, authzFilter, rateLimitFilter, corsFilter, faultFilter, headersFilter, hedgeFilter, retryFilter, timeoutFilter].map((f) => [f.name, f]),
);
