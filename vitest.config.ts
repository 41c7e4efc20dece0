import { defineConfig } from 'vitest/config';

/**
 * `npm test` runs both layers; `npm run test:unit` (vitest run --project unit) only the first:
 *   - unit: test/unit, pure logic in virtual time. test/helpers/unit-purity.ts makes sockets, child
 *     processes, file writes, reads outside code and fixtures, and real sleeps throw there.
 *   - integration: test/integration, real processes, gRPC on loopback, UDP, files, the repository's
 *     documents and deploy files.
 * Suites that need tools from outside the repository run on their own (npm run test:interop,
 * npm run test:tools, npm run test:chaos).
 */

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real processes and sockets; two cores, so keep parallelism modest.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ['default'],
    // fast-check's seed for every property (TEST_SEED; see test/helpers/seeded-random.ts).
    setupFiles: ['test/helpers/seed-randomness.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // After the root's seed-randomness.ts (vitest appends a project's setup files to the root's).
          setupFiles: ['test/helpers/unit-purity.ts'],
          testTimeout: 10_000,
          // Forks, as the root: measured on 2 cores, `--pool=threads` took 23.5 s for this layer and
          // forks 18 s (loading the modules, not the tests, dominates).
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
        },
      },
    ],
  },
});
