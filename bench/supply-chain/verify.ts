import { signingFigures } from '../lib/signing-figures.js';

/**
 * verify is the supply-chain benchmark's signature figures (`verify_key_ms`, `verify_keyless_ms`,
 * `verify_cached_us`, and the CPU milliseconds of the first two): a figure producer for the report's
 * list of producers, sharing its loopback registry.
 */
export const verify = {
  name: 'verify',
  async run(ctx: { registry: { host: string }; runs: number }): Promise<{ figures: Record<string, number> }> {
    return { figures: await signingFigures({ registryHost: ctx.registry.host, runs: ctx.runs }) };
  },
};
