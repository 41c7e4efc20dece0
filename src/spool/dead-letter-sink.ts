import type { Clock } from '../util/clock.js';
import { scanEntryBatch } from '../wire/entry-batch.js';
import { appendDeadLetters } from './dead-letters.js';
import type { DeadLetter } from './dead-letters.js';
import type { SpoolLog } from './spool-types.js';

/** Entries of an EntryBatch; 0 for bytes that are not one (an undecodable record is dead-lettered whole). */
function countEntries(data: Buffer): number {
  try {
    return scanEntryBatch(data, { maxLineBytes: Number.MAX_SAFE_INTEGER }).entryCount;
  } catch {
    return 0;
  }
}

/**
 * The spool's dead-letter forwarding: records an emitter can never accept go to `dead-letters.log`
 * (dead-letters.ts) durably, with the reason and the time; it keeps the file's entry count and the
 * writes in flight (the spool waits for them before it releases its lock).
 */
export class DeadLetterSink {
  private readonly writes = new Set<Promise<unknown>>();

  constructor(
    private readonly dir: string,
    private count: number,
    private readonly clock: Clock,
    private readonly log: SpoolLog,
  ) {}

  /** Entries in the dead-letter file. */
  get entries(): number {
    return this.count;
  }

  /** Appends `records` (EntryBatch buffers) with `reason`; resolves once durable. */
  async write(records: readonly Buffer[], reason: string): Promise<void> {
    const timeMs = this.clock.now();
    const letters: DeadLetter[] = records.map((data) => ({ data, entryCount: countEntries(data), reason, timeMs }));
    const entries = letters.reduce((n, l) => n + l.entryCount, 0);
    const write = appendDeadLetters(this.dir, letters);
    this.writes.add(write);
    try {
      this.count = await write;
    } finally {
      this.writes.delete(write);
    }
    this.log.warn({ dir: this.dir, entries, reason }, 'spool: entries moved to the dead-letter file');
  }

  /** Resolves when the writes in flight are done (whatever their outcome). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.writes]);
  }
}
