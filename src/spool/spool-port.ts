import type { DeliveredPosition, SpoolReader } from './spool-types.js';

/**
 * What the batcher needs of a spool, and no more: read records in order, move the delivered
 * position, set records aside as dead letters. The disk spool implements it; unit tests use an
 * in-memory one.
 */
export interface SpoolPort {
  /** A reader from the delivered position; `next()` waits for records appended later. */
  reader(): SpoolReader;
  /** Everything before `position` is delivered; its space may be reclaimed. */
  markDelivered(position: DeliveredPosition): void;
  /** Keeps records no emitter can take (an entry-batch payload each), with the reason, durably. */
  deadLetter(records: readonly Buffer[], reason: string): Promise<void>;
}
