import { seededRandom as uniform } from '../helpers/seeded-random.js';
import { CHAOS_SEED } from './settings.js';

/** A seeded pseudo-random source (mulberry32): the same seed gives the same timings and sizes. */
export interface Random {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [lo, hi). */
  int(lo: number, hi: number): number;
  /** Milliseconds in [lo, hi). */
  ms(lo: number, hi: number): number;
  pick<T>(items: readonly T[]): T;
}

export function seededRandom(seed: number): Random {
  const next = uniform(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo));
  return {
    seed,
    next,
    int,
    ms: int,
    pick: (items) => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[int(0, items.length)] as (typeof items)[number];
    },
  };
}

/** The seed of one run of one row: derived from the matrix seed and the row's name, so filtering rows keeps it. */
export function runSeed(row: string, run: number): number {
  let h = (CHAOS_SEED ^ 0x9e3779b9) >>> 0;
  for (const ch of `${row}#${run}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h === 0 ? 1 : h;
}
