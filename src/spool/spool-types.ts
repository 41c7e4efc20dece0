/**
 * The spool's record and position types, shared by the spool's parts, the batcher (through SpoolPort)
 * and the offline commands.
 */

export interface RecordPosition {
  readonly segment: number;
  readonly offset: number;
}

/** Everything before `offset` in `segment`, plus the first `entry` entries of the record at it, is delivered. */
export interface DeliveredPosition extends RecordPosition {
  readonly entry: number;
}

export interface SpoolRecord {
  /** Where this record starts. */
  readonly position: RecordPosition;
  /** Where the following record starts (possibly the end of a segment: readers move on by themselves). */
  readonly next: RecordPosition;
  /** The EntryBatch bytes exactly as appended. */
  readonly data: Buffer;
  readonly entryCount: number;
  /** Entries of this record already delivered (non-zero only for the first record after a restart). */
  readonly skipEntries: number;
  /**
   * Where its lines lie (lineSpans of data), when known without a walk: a record this process appended
   * and handed over from memory, with the spans its admission scan found.
   */
  readonly spans?: Uint32Array;
}

export interface SpoolReader {
  /**
   * Resolves with the next durable record, waiting for appends if there is none yet. Rejects with the
   * signal's reason when aborted, and with McError(SpoolClosed) when the spool closes.
   */
  next(signal?: AbortSignal): Promise<SpoolRecord>;
}

export interface SpoolStats {
  readonly dir: string;
  readonly segments: number;
  readonly bytes: number;
  readonly maxBytes: number;
  readonly appendPosition: RecordPosition;
  readonly delivered: DeliveredPosition;
  /** Since open. */
  readonly appendedRecords: number;
  /** Since open. */
  readonly appendedEntries: number;
  /** Appended but not delivered (best effort count). */
  readonly pendingEntries: number;
  /** Entries in the dead-letter file. */
  readonly deadLetters: number;
  /** Corrupt byte ranges found in the middle of segments (logged with their range, skipped by readers). */
  readonly corruptRanges: number;
  /** Group commits (one writev + one fdatasync of the active segment each) since open. */
  readonly groupCommits: number;
  /** Bytes of delivered segments kept for replay (AGGREGATOR_SPOOL_RETENTION). */
  readonly retainedBytes: number;
  /** When the oldest retained segment was sealed, ms since the epoch; undefined when none is retained. */
  readonly oldestRetainedMs: number | undefined;
}

/** The logging the spool does; a pino Logger fits. */
export interface SpoolLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const NO_LOG: SpoolLog = { info: () => undefined, warn: () => undefined, error: () => undefined };
