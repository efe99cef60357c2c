import { signingFigures } from '../lib/signing-figures.js';

import type { FigureProducer } from './context.js';

/**
 * verify measures signature verification against the shared loopback registry: `verify_key_ms`,
 * `verify_keyless_ms`, `verify_cached_us`, and the CPU milliseconds of the first two (see
 * bench/lib/signing-figures.ts for what each covers).
 */
export const verify: FigureProducer = {
  name: 'verify',
  async run({ registry, runs }) {
    return { figures: await signingFigures({ registryHost: registry.host, runs }) };
  },
};
