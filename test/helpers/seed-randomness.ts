import fc from 'fast-check';
import { TEST_SEED } from './seeded-random.js';

/**
 * Setup file of every vitest project (vitest.config.ts): fast-check draws every property's cases from
 * TEST_SEED (test/helpers/seeded-random.ts) instead of a new seed per run, so a red run is red again
 * on the next try; a failure prints the seed and path to replay it, and TEST_SEED=<n> explores others.
 */
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: TEST_SEED });
