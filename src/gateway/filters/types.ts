import type { Logger } from 'pino';

import type { FieldError } from '../../api/kinds/types.js';
import type { HostDirs, UpstreamGuard } from '../../security/index.js';
import type { Handler } from '../context.js';
import type { Authorizer } from '../types.js';

/** FilterEnv is what a filter factory may use besides its own configuration. */
export interface FilterEnv {
  logger: Logger;
  authorizer?: Authorizer;
  /** Milliseconds clock; tests replace it. */
  now: () => number;
  /** Where the filter is declared (`default/hello spec.filters[0]`), for log lines. */
  where: string;
  /** The declaration's field path alone (`spec.filters[0].jwt`), for messages about its own fields. */
  field?: string;
  /** Mutable per-filter-instance state that must survive configuration swaps (rate-limit buckets). */
  carry: Map<string, unknown>;
  /** Where a filter may connect on the route's behalf (a JWKS URL): the operator's `--allow-upstream` grants. */
  upstreams: UpstreamGuard;
  /** Where a filter may read host files on the route's behalf (a JWKS file): the operator's `--allow-host-dir` grants. */
  hostDirs: HostDirs;
}

/**
 * FilterModule is one filter kind: `validate` checks a configuration without side effects (the API
 * calls it at apply time) and `create` precomputes everything and returns the per-request handler.
 */
// The registry holds modules of every config type; C sits in parameter position, so only `any` admits them all.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface FilterModule<C = any> {
  readonly name: string;
  validate(config: unknown, field: string): FieldError[];
  create(config: C, env: FilterEnv): Handler;
}
