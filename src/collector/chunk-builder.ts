import type { Clock, TimerHandle } from '../util/clock.js';
import { CHUNK_HEADROOM, CHUNK_TAILROOM } from '../wire/chunk-message.js';
import { EntryBatchWriter } from '../wire/entry-batch.js';
import type { LineTime } from '../wire/line-time.js';
import type { CursorRange, FileCursor } from './file-cursor.js';
import type { OffsetEvidence } from './file-identity.js';

/** A sealed chunk: one EntryBatch payload and the file ranges it carries. */
export interface SealedChunk {
  readonly id: number;
  readonly payload: Buffer;
  /**
   * The buffer `payload` is a view of, with room around it for the gRPC Chunk's fields (sent without
   * a copy: chunk-message.ts); absent when `payload` is a buffer of its own.
   */
  readonly backing?: Buffer;
  readonly entryCount: number;
  readonly ranges: readonly CursorRange[];
  /** Length of its longest line (to tell whether it still fits limits learned after it was sealed). */
  readonly longestLine?: number;
  /** It holds LineBlocks: an aggregator that does not advertise them gets it re-cut into Lines. */
  readonly lineBlocks?: boolean;
}

/** The memory a sealed chunk holds until it is acknowledged: its buffer, not only its payload. */
export function chunkMemory(chunk: SealedChunk): number {
  return chunk.backing?.length ?? chunk.payload.length;
}

/** Bytes of a chunk's buffer kept for the gRPC Chunk's fields around the batch. */
const ROOM = CHUNK_HEADROOM + CHUNK_TAILROOM;

/** Most buffers of acknowledged chunks kept for reuse, unless the options say otherwise. */
const FREE_BUFFERS = 2;

export interface ChunkBuilderOptions {
  readonly maxBytes: number;
  readonly timeoutMs: number;
  /** Most entries in one chunk (default: no bound). */
  readonly maxEntries?: number;
  /**
   * Most buffers of acknowledged chunks kept for the next chunks (default 2). The collector keeps as
   * many as its in-flight bound can hold, so a steady stream allocates none after the first ones.
   */
  readonly spareBuffers?: number;
}

/**
 * Collects entries of any files into one EntryBatch and seals it into a chunk when it holds
 * `maxBytes` or `maxEntries`, or when its first entry is `timeoutMs` old (one timer, re-armed for
 * the open chunk's deadline when it fires, not set and cleared per chunk). A chunk never outgrows
 * `maxBytes`: the tailer asks `fits` before each entry and seals first when it would not (one entry
 * alone always goes in: the line cutter keeps lines small enough for an empty chunk). A chunk
 * remembers, per file cursor, the range of the file it carries, so that its acknowledgement can move
 * exactly those checkpoints.
 */
export class ChunkBuilder {
  private readonly writer: EntryBatchWriter;
  private ranges = new Map<FileCursor, CursorRange>();
  private timer: TimerHandle | undefined;
  /** When the open chunk is due (its first entry + timeoutMs); undefined while it is empty. */
  private dueAt: number | undefined;
  private nextId = 1;
  /** Buffers of acknowledged chunks, for the next chunks (see `release`). */
  private readonly free: Buffer[] = [];
  private maxBytes: number;
  private maxEntries: number;

  constructor(
    header: Buffer,
    private readonly options: ChunkBuilderOptions,
    private readonly clock: Clock,
    private readonly onSeal: (chunk: SealedChunk) => void,
  ) {
    this.writer = new EntryBatchWriter(header, {
      capacity: this.capacityFor(options.maxBytes),
      headroom: CHUNK_HEADROOM,
      tailroom: CHUNK_TAILROOM,
      allocate: (size) => this.takeBuffer(size),
      // Runs of plain lines as LineBlocks: the tailer does not touch its read buffer between a cut and
      // that cut's noteRange, where the held run is written.
      lineBlocks: true,
    });
    this.maxBytes = options.maxBytes;
    this.maxEntries = options.maxEntries ?? Number.POSITIVE_INFINITY;
  }

  /** New bounds (the aggregator advertised its limits); the open chunk is sealed at its next entry if it is past them. */
  setLimits(maxBytes: number, maxEntries: number): void {
    if (maxBytes !== this.maxBytes) this.writer.setCapacity(this.capacityFor(maxBytes));
    this.maxBytes = maxBytes;
    this.maxEntries = maxEntries;
  }

  /** Would a line of `dataLen` bytes at `offset` of `cursor` fit in the open chunk? Always true when it is empty. */
  fits(cursor: FileCursor, dataLen: number, offset: number): boolean {
    if (this.writer.entryCount === 0) return true;
    return this.writer.entryCount < this.maxEntries && this.writer.byteLengthWith(cursor.head, dataLen, offset) <= this.maxBytes - ROOM;
  }

  /**
   * Hands back the buffer of a chunk nothing reads any more (acknowledged or dropped: the ship client
   * keeps no view of it), for a later chunk: a 1 MiB buffer per chunk made garbage that waited for a
   * major GC outside the heap (tens of MiB of RSS) and made the GC run more often; a buffer dropped
   * because the spares were full (two, while eight chunks were in flight) did the same.
   */
  release(chunk: SealedChunk): void {
    const b = chunk.backing;
    if (b === undefined || this.free.length >= (this.options.spareBuffers ?? FREE_BUFFERS) || b.length !== this.capacityFor(this.maxBytes)) return;
    this.free.push(b);
  }

  private takeBuffer(size: number): Buffer {
    const b = this.free.pop();
    if (b !== undefined && b.length === size) return b;
    this.free.length = 0;
    return Buffer.allocUnsafe(size);
  }

  /**
   * A whole chunk in one buffer of `maxBytes`, the room for the gRPC fields around it included (the
   * batch stays ROOM bytes under maxBytes), so a chunk's memory is within the in-flight bound's unit.
   */
  private capacityFor(maxBytes: number): number {
    return Math.max(maxBytes, ROOM + 1024);
  }

  get byteLength(): number {
    return this.writer.entryCount === 0 ? 0 : this.writer.byteLength;
  }

  get full(): boolean {
    return this.writer.byteLength >= this.maxBytes - ROOM || this.writer.entryCount >= this.maxEntries;
  }

  addLine(cursor: FileCursor, src: Buffer, start: number, end: number, offset: number, time: LineTime, flags: number): void {
    if (this.dueAt === undefined) {
      this.dueAt = this.clock.now() + this.options.timeoutMs;
      if (this.timer === undefined) this.arm(this.options.timeoutMs);
    }
    this.writer.append(cursor.head, src, start, end, offset, time, flags);
  }

  private arm(ms: number): void {
    this.timer = this.clock.setTimeout(() => this.onTimer(), ms);
    this.timer.unref();
  }

  /** The timer fired: seal the open chunk if it is due, or wait for its deadline (it is younger). */
  private onTimer(): void {
    this.timer = undefined;
    if (this.dueAt === undefined) return;
    const left = this.dueAt - this.clock.now();
    if (left > 0) this.arm(left);
    else this.seal();
  }

  /**
   * Records that this chunk carries `cursor`'s bytes up to `endOffset` (hash: of the bytes before
   * it: window hash and prefix crc), with `lines` entries and `bytes` of line data added since the last call.
   */
  noteRange(cursor: FileCursor, endOffset: number, evidence: OffsetEvidence, lines: number, bytes: number): void {
    // The tailer notes each range before it reads into its buffer again: lines held there are written now.
    this.writer.settle();
    let range = this.ranges.get(cursor);
    if (range === undefined) {
      range = cursor.openRange();
      this.ranges.set(cursor, range);
    }
    range.extend(endOffset, evidence, lines, bytes);
  }

  /** Seals what has been collected (nothing when empty). */
  seal(): void {
    // The timer stays armed: it fires at most once per timeoutMs and re-arms for the next chunk's deadline.
    this.dueAt = undefined;
    const entryCount = this.writer.entryCount;
    if (entryCount === 0) return;
    const longestLine = this.writer.longestLine;
    const { payload, backing, lineBlocks } = this.writer.finishView();
    const ranges = [...this.ranges.values()];
    this.ranges = new Map();
    this.onSeal({ id: this.nextId++, payload, backing, entryCount, ranges, longestLine, lineBlocks });
  }

  close(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.dueAt = undefined;
  }
}
