import { randomInt } from 'node:crypto';

/**
 * Knobs of the chaos matrix, read once from the environment: how many runs per row, how long each run
 * writes, and the seed every random timing derives from (printed with the table, so a failing row can be
 * replayed with `CHAOS_SEED=<seed> npm run test:chaos -- -t '<row>'`).
 */
function positive(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return n;
}

export const CHAOS_RUNS = Math.floor(positive('CHAOS_RUNS', 3));
/** Seconds each run writes lines (drain time comes on top). */
export const CHAOS_SECONDS = positive('CHAOS_SECONDS', 8);
/** How long delivery may stay without progress before the remaining lines are counted as lost. */
export const CHAOS_QUIET_SECONDS = positive('CHAOS_QUIET_SECONDS', 5);
export const CHAOS_SEED = Math.floor(positive('CHAOS_SEED', randomInt(1, 2 ** 31 - 1)));

export const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
