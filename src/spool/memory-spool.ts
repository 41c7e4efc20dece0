import { ErrorCode, McError } from '../errors.js';
import type { DeliveredPosition, RecordPosition, SpoolReader, SpoolRecord } from './spool-types.js';
import type { SpoolPort } from './spool-port.js';

/** A record kept in memory, with the entry count its appender declared. */
interface Held {
  readonly data: Buffer;
  readonly entryCount: number;
}

/**
 * A spool in memory, beside MemoryEmitter: for unit tests of the batcher and anything else that needs
 * only SpoolPort. One "segment" (0); a record's offset is its index, so positions compare like the disk
 * spool's. Nothing is durable; `delivered` and `deadLetters` are there to be asserted on.
 */
export class MemorySpool implements SpoolPort {
  private readonly records: Held[] = [];
  private readonly waiters = new Set<() => void>();
  private closed = false;
  /** Every position handed to markDelivered, in order. */
  readonly deliveredHistory: DeliveredPosition[] = [];
  /** Records set aside, with their reasons. */
  readonly deadLetters: Array<{ readonly data: Buffer; readonly reason: string }> = [];
  /** Set to make the next deadLetter call fail (once per error in the list). */
  readonly deadLetterFailures: Error[] = [];

  /** Where reading starts (a restart after `delivered`). */
  constructor(private readonly from: DeliveredPosition = { segment: 0, offset: 0, entry: 0 }) {}

  get delivered(): DeliveredPosition {
    return this.deliveredHistory[this.deliveredHistory.length - 1] ?? this.from;
  }

  append(data: Buffer, entryCount: number): RecordPosition {
    if (this.closed) throw new McError(ErrorCode.SpoolClosed, 'spool is closed');
    this.records.push({ data, entryCount });
    this.wake();
    return { segment: 0, offset: this.records.length - 1 };
  }

  reader(): SpoolReader {
    let index = this.from.offset;
    let skip = this.from.entry;
    return {
      next: async (signal?: AbortSignal): Promise<SpoolRecord> => {
        for (;;) {
          signal?.throwIfAborted();
          if (this.closed) throw new McError(ErrorCode.SpoolClosed, 'spool is closed');
          const held = this.records[index];
          if (held !== undefined) {
            const record: SpoolRecord = {
              position: { segment: 0, offset: index },
              next: { segment: 0, offset: index + 1 },
              data: held.data,
              entryCount: held.entryCount,
              skipEntries: skip,
            };
            index++;
            skip = 0;
            return record;
          }
          await this.progress(signal);
        }
      },
    };
  }

  markDelivered(position: DeliveredPosition): void {
    this.deliveredHistory.push(position);
  }

  async deadLetter(records: readonly Buffer[], reason: string): Promise<void> {
    const failure = this.deadLetterFailures.shift();
    if (failure !== undefined) throw failure;
    for (const data of records) this.deadLetters.push({ data, reason });
  }

  close(): void {
    this.closed = true;
    this.wake();
  }

  private progress(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        this.waiters.delete(done);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        this.waiters.delete(done);
        reject(signal?.reason);
      };
      this.waiters.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
