/**
 * Every random choice in the tests comes from a seed: TEST_SEED from the environment (to replay or to
 * explore), or a fixed default, so a run repeats. test/helpers/seed-randomness.ts hands it to
 * fast-check for every property; tests that pick timings or sizes draw from `seededRandom`.
 */
export const TEST_SEED: number = ((): number => {
  const fromEnv = process.env.TEST_SEED;
  if (fromEnv === undefined || fromEnv === '') return 20_261_130;
  const seed = Number(fromEnv);
  if (!Number.isSafeInteger(seed)) throw new Error(`TEST_SEED must be an integer, not ${JSON.stringify(fromEnv)}`);
  return seed;
})();

/** Deterministic uniform [0, 1) (mulberry32), so a failing run can be replayed with its seed. */
export function seededRandom(seed: number = TEST_SEED): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
