import { defineConfig } from 'vitest/config';

/** `npm run test:interop`: against the real Aeron C media driver (see test/interop/aeron-driver.ts). */
export default defineConfig({
  test: {
    include: ['test/interop/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // One media driver at a time: two cores, and each driver spins a thread.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 1, minForks: 1 } },
    fileParallelism: false,
    reporters: ['default'],
  },
});
