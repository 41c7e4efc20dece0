import type { Entry } from '../wire/entry-batch.js';
import type { Batch } from './emitter.js';

/** A batch over entries already decoded (tests, the replay command, rejected subsets). */
export function arrayBatch(id: number, entries: readonly Entry[]): Batch {
  return {
    id,
    count: entries.length,
    entries: () => entries,
    lines: () => entries.map((e) => e.line),
  };
}
