import type { Clock, TimerHandle } from '../util/clock.js';
import { EntryBatchWriter } from '../wire/entry-batch.js';
import type { CursorRange, FileCursor } from './file-cursor.js';
import type { OffsetEvidence } from './file-identity.js';

/** A sealed chunk: one EntryBatch payload and the file ranges it carries. */
export interface SealedChunk {
  readonly id: number;
  readonly payload: Buffer;
  readonly entryCount: number;
  readonly ranges: readonly CursorRange[];
  /** Length of its longest line (to tell whether it still fits limits learned after it was sealed). */
  readonly longestLine?: number;
}

export interface ChunkBuilderOptions {
  readonly maxBytes: number;
  readonly timeoutMs: number;
  /** Most entries in one chunk (default: no bound). */
  readonly maxEntries?: number;
}

/**
 * Collects entries of any files into one EntryBatch and seals it into a chunk when it holds
 * `maxBytes` or `maxEntries`, or when its first entry is `timeoutMs` old. A chunk never outgrows
 * `maxBytes`: the tailer asks `fits` before each entry and seals first when it would not (one entry
 * alone always goes in: the line cutter keeps lines small enough for an empty chunk). A chunk
 * remembers, per file cursor, the range of the file it carries, so that its acknowledgement can move
 * exactly those checkpoints.
 */
export class ChunkBuilder {
  private readonly writer: EntryBatchWriter;
  private ranges = new Map<FileCursor, CursorRange>();
  private timer: TimerHandle | undefined;
  private nextId = 1;
  private maxBytes: number;
  private maxEntries: number;

  constructor(
    header: Buffer,
    private readonly options: ChunkBuilderOptions,
    private readonly clock: Clock,
    private readonly onSeal: (chunk: SealedChunk) => void,
  ) {
    this.writer = new EntryBatchWriter(header, Math.min(options.maxBytes + 64 * 1024, 4 * 1024 * 1024));
    this.maxBytes = options.maxBytes;
    this.maxEntries = options.maxEntries ?? Number.POSITIVE_INFINITY;
  }

  /** New bounds (the aggregator advertised its limits); the open chunk is sealed at its next entry if it is past them. */
  setLimits(maxBytes: number, maxEntries: number): void {
    this.maxBytes = maxBytes;
    this.maxEntries = maxEntries;
  }

  /** Would a line of `dataLen` bytes at `offset` of `cursor` fit in the open chunk? Always true when it is empty. */
  fits(cursor: FileCursor, dataLen: number, offset: number): boolean {
    if (this.writer.entryCount === 0) return true;
    return this.writer.entryCount < this.maxEntries && this.writer.byteLengthWith(cursor.head, dataLen, offset) <= this.maxBytes;
  }

  get byteLength(): number {
    return this.writer.entryCount === 0 ? 0 : this.writer.byteLength;
  }

  get full(): boolean {
    return this.writer.byteLength >= this.maxBytes || this.writer.entryCount >= this.maxEntries;
  }

  addLine(cursor: FileCursor, src: Buffer, start: number, end: number, offset: number, timeUnixNano: bigint, flags: number): void {
    if (this.writer.entryCount === 0 && this.timer === undefined) {
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.seal();
      }, this.options.timeoutMs);
      this.timer.unref();
    }
    this.writer.addLine(cursor.head, src, start, end, offset, timeUnixNano, flags);
  }

  /**
   * Records that this chunk carries `cursor`'s bytes up to `endOffset` (hash: of the bytes before
   * it: window hash and prefix crc), with `lines` entries and `bytes` of line data added since the last call.
   */
  noteRange(cursor: FileCursor, endOffset: number, evidence: OffsetEvidence, lines: number, bytes: number): void {
    let range = this.ranges.get(cursor);
    if (range === undefined) {
      range = cursor.openRange();
      this.ranges.set(cursor, range);
    }
    range.extend(endOffset, evidence, lines, bytes);
  }

  /** Seals what has been collected (nothing when empty). */
  seal(): void {
    if (this.timer !== undefined) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    const entryCount = this.writer.entryCount;
    if (entryCount === 0) return;
    const longestLine = this.writer.longestLine;
    const payload = this.writer.finish();
    const ranges = [...this.ranges.values()];
    this.ranges = new Map();
    this.onSeal({ id: this.nextId++, payload, entryCount, ranges, longestLine });
  }

  close(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
