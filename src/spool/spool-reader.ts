import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, McError } from '../errors.js';
import type { RecentRecord } from './recent-records.js';
import type { SegmentView } from './segment-index.js';
import { SEGMENT_HEADER_BYTES, segmentFileName } from './segment-format.js';
import { findNextRecord, readRecordAt } from './segment-scan.js';
import type { DeliveredPosition, SpoolReader, SpoolRecord } from './spool-types.js';

/**
 * What a reader sees of the spool: the live segments, read only, and two ways to talk back (wait for
 * progress; report a damaged record, which the spool records and every reader then skips).
 */
export interface ReaderView {
  readonly dir: string;
  isClosed(): boolean;
  segment(n: number): SegmentView | undefined;
  /** The first live segment after `n`, if any. */
  segmentAfter(n: number): SegmentView | undefined;
  /** Resolves on the next durable append, roll or close; rejects with the signal's reason when aborted. */
  waitForProgress(signal?: AbortSignal): Promise<void>;
  /** A durable record failed its checksum: readers skip [start, end) of `segment` from now on. */
  reportCorrupt(segment: number, start: number, end: number, reason: string): void;
  /**
   * The durable record at (segment, offset) if this process appended it and still holds it
   * (recent-records.ts); records before it are let go.
   */
  takeRecent?(segment: number, offset: number): RecentRecord | undefined;
}

/** Wakes readers waiting for the spool to move (an append became durable, a roll, close). */
export class Progress {
  private readonly waiters = new Set<() => void>();

  wait(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolveWait, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        this.waiters.delete(wake);
        reject(signal?.reason);
      };
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolveWait();
      };
      this.waiters.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  wake(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }
}

/**
 * Reads durable records in order from a delivered position, verifying each record's checksum. It keeps
 * its own cursor and open file; it changes nothing of the spool's state (damage is reported through
 * the view).
 */
export class SegmentReader implements SpoolReader {
  private segment: number;
  private offset: number;
  private skip: number;
  private fh: FileHandle | undefined;
  private fhSegment = -1;

  constructor(
    private readonly view: ReaderView,
    from: DeliveredPosition,
  ) {
    this.segment = from.segment;
    this.offset = Math.max(from.offset, SEGMENT_HEADER_BYTES);
    this.skip = from.entry;
  }

  async next(signal?: AbortSignal): Promise<SpoolRecord> {
    try {
      for (;;) {
        signal?.throwIfAborted();
        if (this.view.isClosed()) throw new McError(ErrorCode.SpoolClosed, 'spool is closed');
        const seg = this.view.segment(this.segment);
        if (seg === undefined) {
          // Deleted (delivered) or not created yet.
          const after = this.view.segmentAfter(this.segment);
          if (after !== undefined) {
            this.moveTo(after.number);
            continue;
          }
          await this.view.waitForProgress(signal);
          continue;
        }
        const bad = seg.badRanges.find((r) => this.offset >= r.start && this.offset < r.end);
        if (bad !== undefined) {
          this.offset = bad.end;
          this.skip = 0;
          continue;
        }
        const end = seg.durableEnd;
        if (this.offset < end) {
          const record = await this.read(seg, end);
          if (record !== undefined) return record;
          continue; // corrupt: the range was reported and is skipped
        }
        if (seg.sealed) {
          const after = this.view.segmentAfter(this.segment);
          if (after !== undefined) {
            this.moveTo(after.number);
            continue;
          }
        }
        await this.view.waitForProgress(signal);
      }
    } catch (err) {
      await this.closeFile();
      throw err;
    }
  }

  private moveTo(segment: number): void {
    this.segment = segment;
    this.offset = SEGMENT_HEADER_BYTES;
    this.skip = 0;
  }

  /** Releases the open segment file; the next read reopens it. */
  async closeFile(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    this.fhSegment = -1;
    if (fh !== undefined) await fh.close().catch(() => undefined);
  }

  /**
   * The record at the cursor: from memory when this process appended it and still holds it (durable,
   * and checked when it was appended), else read from the file and verified by its checksum;
   * undefined when it is corrupt (reported, cursor moved on).
   */
  private async read(seg: SegmentView, end: number): Promise<SpoolRecord | undefined> {
    const held = this.view.takeRecent?.(seg.number, this.offset);
    if (held !== undefined && held.next <= end) return this.advance(seg.number, this.offset, held.next, held.data, held.entryCount, held.spans);
    if (this.fhSegment !== seg.number) {
      await this.closeFile();
      this.fh = await open(join(this.view.dir, segmentFileName(seg.number)), 'r');
      this.fhSegment = seg.number;
    }
    const fh = this.fh as FileHandle;
    const start = this.offset;
    const r = await readRecordAt(fh, start, end);
    if (!r.ok) {
      // Resynchronise on the next valid record within what is durable; none: skip to the durable end
      // (appends continue from there, so a damaged active segment does not stop delivery).
      const resume = (await findNextRecord(fh, start + 1, end)) ?? end;
      this.view.reportCorrupt(seg.number, start, resume, r.problem);
      return undefined;
    }
    return this.advance(seg.number, start, r.next, r.payload, r.entryCount);
  }

  /** Moves the cursor past the record at `start` of `segment` and returns it. */
  private advance(segment: number, start: number, next: number, data: Buffer, entryCount: number, spans?: Uint32Array): SpoolRecord {
    const skip = Math.min(this.skip, entryCount);
    this.offset = next;
    this.skip = 0;
    const record = {
      position: { segment, offset: start },
      next: { segment, offset: next },
      data,
      entryCount,
      skipEntries: skip,
    };
    return spans === undefined ? record : { ...record, spans };
  }
}
