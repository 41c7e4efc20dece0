import { defineConfig } from 'vitest/config';
import { ChaosTableReporter } from './test/chaos/table-reporter.js';

/**
 * The chaos matrix (`npm run test:chaos`), apart from `npm test`: one file per scenario family under
 * test/chaos, run one after the other (each run starts real aggregators and collectors and needs the
 * machine's cores), then the table reporter prints the matrix.
 */
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.chaos.ts'],
    testTimeout: 30 * 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    poolOptions: { forks: { singleFork: true } },
    reporters: ['default', new ChaosTableReporter()],
  },
});
