import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    hookTimeout: 60_000,
    // Two cores on every machine here: integration tests start real processes, so keep the fan-out small.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
