import { isUtf8 } from 'node:buffer';
import type { LineTime } from './line-time.js';
import { WireError, varintSize, writeVarint } from './varint.js';
import { EntryBatchWalker, Met, TAG_COLLECTOR_ID, TAG_TAGS, TAG_RUNS, TAG_KEY, TAG_VALUE, TAG_PATH, TAG_FILE_ID, TAG_LINES, TAG_BLOCKS, TAG_DATA, TAG_OFFSET, TAG_TIME, TAG_FLAGS } from './entry-batch-walker.js';

/**
 * The entry encoding: `EntryBatch` of api/api.proto, written and read by hand on the hot path.
 *
 *   EntryBatch { 1: collector_id string; 2: repeated Tag; 3: repeated FileRun }
 *   Tag        { 1: key string; 2: value string }
 *   FileRun    { 1: path string; 2: file_id string; 3: repeated Line; 4: repeated LineBlock }
 *   Line       { 1: data bytes; 2: offset uint64; 3: time_unix_nano fixed64; 4: flags uint32 }
 *   LineBlock  { 1: data bytes; 2: offset uint64; 3: time_unix_nano fixed64 }
 *
 * A LineBlock is a run of whole lines as the file holds them, each ended by its newline, the first at
 * `offset`, read at one time, without flags: what a tailer reads of a file in one go. Readers see each
 * of its lines as a Line (data without the newline, offset of its first byte, flags 0), in wire order
 * with the Lines around it, so nothing downstream tells them apart.
 *
 * The collector writes it once per chunk, the aggregator validates it with `scanEntryBatch` and stores
 * it byte for byte, the batcher checks each spool record with `countEntries`, and emitters read it with
 * `entryLines` (line bytes only) or `decodeEntries` (entry objects); line bytes stay views into the
 * record. The four readers share one walk (entry-batch-walker.ts). About 700 lines: the writer and the
 * readers of one encoding stay side by side, so a change to the format is made in one place.
 */

export const LineFlag = {
  Partial: 1,
  PartialLast: 2,
  Multiline: 4,
  NoNewline: 8,
} as const;

export interface Tag {
  readonly key: string;
  readonly value: string;
}

export interface EntrySource {
  readonly collectorId: string;
  readonly path: string;
  readonly fileId: string;
}

export interface Entry {
  /** The line's bytes exactly as read (a view into the record it came from). */
  readonly line: Buffer;
  /** Byte offset of the line in its file: with source.collectorId and source.fileId, its identity. */
  readonly offset: number;
  readonly timeUnixNano: bigint;
  readonly flags: number;
  readonly source: EntrySource;
  readonly tags: readonly Tag[];
}

function encodeString(tag: number, value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const out = Buffer.allocUnsafe(1 + varintSize(bytes.length) + bytes.length);
  out[0] = tag;
  const pos = writeVarint(out, 1, bytes.length);
  bytes.copy(out, pos);
  return out;
}

function encodeMessageField(tag: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(1 + varintSize(body.length) + body.length);
  out[0] = tag;
  body.copy(out, writeVarint(out, 1, body.length));
  return out;
}

/** The encoded (path, file_id) head of a FileRun; build one per file and reuse it for every line. */
export class RunHead {
  readonly encoded: Buffer;

  constructor(
    readonly path: string,
    readonly fileId: string,
  ) {
    this.encoded = Buffer.concat([encodeString(TAG_PATH, path), encodeString(TAG_FILE_ID, fileId)]);
  }
}

/** The header of every batch from one collector: collector id and tags, encoded once. */
export function encodeBatchHeader(collectorId: string, tags: readonly Tag[]): Buffer {
  const parts = [encodeString(TAG_COLLECTOR_ID, collectorId)];
  for (const t of tags) {
    parts.push(encodeMessageField(TAG_TAGS, Buffer.concat([encodeString(TAG_KEY, t.key), encodeString(TAG_VALUE, t.value)])));
  }
  return Buffer.concat(parts);
}

/** Bytes of the fixed-width length prefix of a FileRun, patched in place when the run closes. */
const RUN_PREFIX = 5;
/** A varint of `n` (< 2^35) in exactly 5 bytes: not minimal for small `n`, which protobuf allows. */
function writeVarint5(buf: Buffer, pos: number, n: number): void {
  buf[pos] = (n & 0x7f) | 0x80;
  buf[pos + 1] = ((n >>> 7) & 0x7f) | 0x80;
  buf[pos + 2] = ((n >>> 14) & 0x7f) | 0x80;
  buf[pos + 3] = ((n >>> 21) & 0x7f) | 0x80;
  buf[pos + 4] = Math.floor(n / 2 ** 28) & 0x7f;
}

/** Line or LineBlock tag, data tag, offset tag, time field (varint sizes added per item). */
const ITEM_FIXED_OVERHEAD = 1 + 1 + 1 + 9;
const NEWLINE = 0x0a;

/** time_unix_nano (tag and fixed64 from its low and high 32 bits) at `pos`; returns the position after it. */
function writeTime(buf: Buffer, pos: number, lo: number, hi: number): number {
  buf[pos] = TAG_TIME;
  buf[pos + 1] = lo;
  buf[pos + 2] = lo >>> 8;
  buf[pos + 3] = lo >>> 16;
  buf[pos + 4] = lo >>> 24;
  buf[pos + 5] = hi;
  buf[pos + 6] = hi >>> 8;
  buf[pos + 7] = hi >>> 16;
  buf[pos + 8] = hi >>> 24;
  return pos + 9;
}

export interface EntryBatchWriterOptions {
  /** Bytes the first buffer holds (it grows when a batch needs more). */
  readonly capacity?: number;
  /**
   * Bytes kept free before and after the batch in the same buffer (see `finish`): room for the fields
   * of a message that carries the batch (the gRPC Chunk), written around it without a copy.
   */
  readonly headroom?: number;
  readonly tailroom?: number;
  /** Where new buffers come from (default Buffer.allocUnsafe): a pool of buffers handed back after use. */
  readonly allocate?: (size: number) => Buffer;
  /**
   * Write runs of plain lines as LineBlocks (FileRun.blocks: one copy per run instead of one per line,
   * and no per-line fields): consecutive lines of one file, adjacent in the same source buffer, each
   * followed there by its newline, read at the same time and without flags. Only for a receiver that
   * reads them (an aggregator that advertises `mc-line-blocks`). Such lines are held as a view of the
   * caller's buffer until `settle()` or `finishView()`: the caller keeps those bytes unchanged until
   * then. Default false.
   */
  readonly lineBlocks?: boolean;
}

/** What `finish()` returns: the batch, and the buffer it is a view of (with the head- and tailroom). */
export interface FinishedBatch {
  readonly payload: Buffer;
  /** `payload` lies at `[headroom, headroom + payload.length)` of it. */
  readonly backing: Buffer;
  /** The batch holds LineBlocks (see EntryBatchWriterOptions.lineBlocks). */
  readonly lineBlocks: boolean;
}

/**
 * Builds one EntryBatch in place: the header, then each FileRun as its tag, a 5-byte length prefix
 * (patched when the run closes) and its head, and each line copied once from the read buffer after
 * it (with `lineBlocks`, a run of plain lines copied at once as a LineBlock). `finishView()` hands the buffer over (a view, no copy) when the batch fills at least half of it,
 * and copies a smaller batch into an exact-size buffer (so a small batch does not pin a large
 * buffer, and the writer keeps its buffer). Reusable after `finish()`.
 */
export class EntryBatchWriter {
  private buf: Buffer | undefined;
  private capacity: number;
  private readonly headroom: number;
  private readonly tailroom: number;
  private readonly allocate: (size: number) => Buffer;
  /** Write position in `buf`. */
  private pos: number;
  private current: RunHead | undefined;
  /** Where the open run's 5-byte length prefix is. */
  private runPrefixAt = 0;
  private count = 0;
  private longest = 0;
  private readonly blocks: boolean;
  /** The held run of plain lines (see `lineBlocks`): `blkSrc[blkStart, blkEnd)`, newlines included. */
  private blkLines = 0;
  private blkSrc: Buffer | undefined;
  private blkStart = 0;
  private blkEnd = 0;
  private blkOffset = 0;
  private blkLo = 0;
  private blkHi = 0;
  private blkHead: RunHead | undefined;
  /** A LineBlock was written since the last `finish()`. */
  private wroteBlock = false;

  constructor(
    private readonly header: Buffer,
    options: EntryBatchWriterOptions | number = {},
  ) {
    const o = typeof options === 'number' ? { capacity: options } : options;
    this.headroom = o.headroom ?? 0;
    this.tailroom = o.tailroom ?? 0;
    this.allocate = o.allocate ?? Buffer.allocUnsafe;
    this.blocks = o.lineBlocks === true;
    this.capacity = Math.max(o.capacity ?? 64 * 1024, 16);
    this.pos = this.headroom + header.length;
  }

  get entryCount(): number {
    return this.count + this.blkLines;
  }

  /** Length of the longest line data added since the last `finish()`. */
  get longestLine(): number {
    return this.longest;
  }

  /**
   * `byteLength` after adding a line of `dataLen` bytes at `offset` to the run of `head` (with flags,
   * or a few bytes more without): what a chunk builder checks before adding, so a chunk never outgrows
   * its limit.
   */
  byteLengthWith(head: RunHead, dataLen: number, offset: number): number {
    const body = ITEM_FIXED_OVERHEAD - 1 + varintSize(dataLen) + dataLen + varintSize(offset) + 6;
    const run = this.current !== head ? 1 + RUN_PREFIX + head.encoded.length : 0;
    return this.byteLength + 1 + varintSize(body) + body + run;
  }

  /** Bytes `finish()` would return (at most: a held run of one line is written a byte shorter). */
  get byteLength(): number {
    return this.pos - this.headroom + this.heldBytes();
  }

  /** What writing the held run as a LineBlock adds (its FileRun's head too when it starts one). */
  private heldBytes(): number {
    if (this.blkLines === 0) return 0;
    const dataLen = this.blkEnd - this.blkStart;
    const body = ITEM_FIXED_OVERHEAD - 1 + varintSize(dataLen) + dataLen + varintSize(this.blkOffset);
    const head = this.blkHead as RunHead;
    return 1 + varintSize(body) + body + (this.current !== head ? 1 + RUN_PREFIX + head.encoded.length : 0);
  }

  /** The size of the next buffer the writer allocates (after one is handed over by `finishView`). */
  setCapacity(capacity: number): void {
    this.capacity = Math.max(capacity, 16);
  }

  /** Makes room for `extra` more bytes (and the tailroom) at `pos`; returns the buffer. */
  private ensure(extra: number): Buffer {
    const need = this.pos + extra + this.tailroom;
    const buf = this.buf;
    if (buf !== undefined && need <= buf.length) return buf;
    let size = buf === undefined ? this.capacity : buf.length * 2;
    while (size < need) size *= 2;
    const next = this.allocate(size);
    if (buf !== undefined) buf.copy(next, this.headroom, this.headroom, this.pos);
    else this.header.copy(next, this.headroom);
    this.buf = next;
    return next;
  }

  /**
   * Appends `src[start, end)` as a line of the file `head`, at file offset `offset`, read at
   * `timeUnixNano`. Consecutive lines of the same RunHead share one FileRun.
   */
  addLine(head: RunHead, src: Buffer, start: number, end: number, offset: number, timeUnixNano: bigint, flags = 0): void {
    this.line(head, src, start, end, offset, Number(timeUnixNano & 0xffffffffn), Number((timeUnixNano >> 32n) & 0xffffffffn), flags);
  }

  /** `addLine` with the time computed once for many lines (the collector's hot path). */
  append(head: RunHead, src: Buffer, start: number, end: number, offset: number, time: LineTime, flags = 0): void {
    this.line(head, src, start, end, offset, time.lo, time.hi, flags);
  }

  /** Writes the held run of lines (see `lineBlocks`); after it, the caller may change their source. */
  settle(): void {
    if (this.blkLines > 0) this.writeHeld();
  }

  private line(head: RunHead, src: Buffer, start: number, end: number, offset: number, lo: number, hi: number, flags: number): void {
    if (this.blocks && flags === 0 && end < src.length && src[end] === NEWLINE) {
      if (this.blkLines > 0) {
        if (src === this.blkSrc && start === this.blkEnd && head === this.blkHead && lo === this.blkLo && hi === this.blkHi && offset === this.blkOffset + (start - this.blkStart)) {
          this.blkEnd = end + 1;
          this.blkLines++;
          if (end - start > this.longest) this.longest = end - start;
          return;
        }
        this.writeHeld();
      }
      this.blkSrc = src;
      this.blkStart = start;
      this.blkEnd = end + 1;
      this.blkOffset = offset;
      this.blkLo = lo;
      this.blkHi = hi;
      this.blkHead = head;
      this.blkLines = 1;
      if (end - start > this.longest) this.longest = end - start;
      return;
    }
    if (this.blkLines > 0) this.writeHeld();
    this.put(head, src, start, end, offset, lo, hi, flags);
  }

  /** Writes the held run: one line as a Line (as without blocks), more as one LineBlock. */
  private writeHeld(): void {
    const n = this.blkLines;
    const src = this.blkSrc as Buffer;
    const head = this.blkHead as RunHead;
    this.blkLines = 0;
    this.blkSrc = undefined;
    this.blkHead = undefined;
    if (n === 1) {
      this.put(head, src, this.blkStart, this.blkEnd - 1, this.blkOffset, this.blkLo, this.blkHi, 0);
      return;
    }
    this.writeItem(TAG_BLOCKS, head, src, this.blkStart, this.blkEnd, this.blkOffset, this.blkLo, this.blkHi, 0);
    this.count += n;
    this.wroteBlock = true;
  }

  /**
   * Makes room for a field of `bytes` in the FileRun of `head` (closing the open run and starting
   * one for `head` when it is another file's); returns where the field goes.
   */
  private openRun(head: RunHead, bytes: number): number {
    const newRun = this.current !== head;
    const buf = this.ensure(bytes + (newRun ? 1 + RUN_PREFIX + head.encoded.length : 0));
    let pos = this.pos;
    if (newRun) {
      this.closeRun(buf);
      buf[pos++] = TAG_RUNS;
      this.runPrefixAt = pos;
      pos += RUN_PREFIX;
      pos += head.encoded.copy(buf, pos);
      this.current = head;
    }
    return pos;
  }

  private put(head: RunHead, src: Buffer, start: number, end: number, offset: number, lo: number, hi: number, flags: number): void {
    if (end - start > this.longest) this.longest = end - start;
    this.writeItem(TAG_LINES, head, src, start, end, offset, lo, hi, flags);
    this.count++;
  }

  /**
   * One Line (`TAG_LINES`) or LineBlock (`TAG_BLOCKS`, flags 0) in the FileRun of `head`: the same
   * fields (data, offset, time, flags when set) under either tag.
   */
  private writeItem(tag: number, head: RunHead, src: Buffer, start: number, end: number, offset: number, lo: number, hi: number, flags: number): void {
    const dataLen = end - start;
    const bodyLen =
      ITEM_FIXED_OVERHEAD - 1 + varintSize(dataLen) + dataLen + varintSize(offset) + (flags === 0 ? 0 : 1 + varintSize(flags));
    let pos = this.openRun(head, 1 + varintSize(bodyLen) + bodyLen);
    const buf = this.buf as Buffer;
    buf[pos++] = tag;
    pos = writeVarint(buf, pos, bodyLen);
    buf[pos++] = TAG_DATA;
    pos = writeVarint(buf, pos, dataLen);
    pos += src.copy(buf, pos, start, end);
    buf[pos++] = TAG_OFFSET;
    pos = writeVarint(buf, pos, offset);
    pos = writeTime(buf, pos, lo, hi);
    if (flags !== 0) {
      buf[pos++] = TAG_FLAGS;
      pos = writeVarint(buf, pos, flags);
    }
    this.pos = pos;
  }

  /** Writes the open run's length into its prefix. */
  private closeRun(buf: Buffer): void {
    if (this.current === undefined) return;
    writeVarint5(buf, this.runPrefixAt, this.pos - this.runPrefixAt - RUN_PREFIX);
    this.current = undefined;
  }

  /** Returns the encoded EntryBatch (a buffer of its own) and resets the writer. */
  finish(): Buffer {
    return this.finishView().payload;
  }

  /**
   * Returns the encoded EntryBatch and resets the writer. The payload is a view of the writer's
   * buffer, which is handed over with it, when it fills at least half of that buffer; otherwise a
   * copy into an exact-size buffer (with the head- and tailroom).
   */
  finishView(): FinishedBatch {
    this.settle();
    const buf = this.ensure(0);
    this.closeRun(buf);
    const from = this.headroom;
    const to = this.pos;
    let backing: Buffer;
    if ((to - from) * 2 >= buf.length) {
      backing = buf;
      this.buf = undefined;
    } else {
      backing = Buffer.allocUnsafe(to + this.tailroom);
      buf.copy(backing, from, from, to);
      // A buffer grown for a long batch, or made before `setCapacity`, is not kept.
      if (buf.length !== this.capacity) this.buf = undefined;
    }
    this.pos = this.headroom + this.header.length;
    this.count = 0;
    this.longest = 0;
    const lineBlocks = this.wroteBlock;
    this.wroteBlock = false;
    return { payload: backing.subarray(from, to), backing, lineBlocks };
  }
}

export interface ScanLimits {
  /** Longest `data` of one line; longer lines are counted in `oversizedLines`, not refused here. */
  readonly maxLineBytes: number;
  /** Most entries; one more throws ScanError as soon as it is met (default: no bound). */
  readonly maxEntries?: number;
  /** Most tags of the batch (default: no bound). */
  readonly maxTags?: number;
  /** Most key + value bytes of all tags of the batch (default: no bound). */
  readonly maxTagBytes?: number;
  /** Also return where every line's bytes lie (`spans`, as lineSpans gives them). */
  readonly spans?: boolean;
}

export interface ScanResult {
  readonly entryCount: number;
  readonly lineBytes: number;
  /** Lines longer than `maxLineBytes`. */
  readonly oversizedLines: number;
  /** Length of the longest line's data. */
  readonly longestLine: number;
  /** With `limits.spans`: what lineSpans(buf) returns, found by this same walk. */
  readonly spans?: Uint32Array;
}

/** A malformed or over-limit batch; `entriesSeen` counts the Line messages met before the fault. */
export class ScanError extends WireError {
  constructor(
    message: string,
    readonly entriesSeen: number,
  ) {
    super(message);
    this.name = 'ScanError';
  }
}

/**
 * Told what a scan meets, in wire order, for a caller that needs more of the batch than counts (the
 * ingest's entry identities) without walking it again. Called only for what the scan accepted so far.
 */
export interface ScanObserver {
  collectorId(buf: Buffer, start: number, end: number): void;
  /** A FileRun starts (its file_id may come after its lines). */
  run(): void;
  fileId(buf: Buffer, start: number, end: number): void;
  /** A Line, with its fields as decoding reads them (the last of a repeated field wins). */
  line(offset: number, dataBytes: number, flags: number): void;
}

function checkUtf8(buf: Buffer, start: number, end: number, what: string): void {
  if (!isUtf8(buf.subarray(start, end))) throw new WireError(`${what} is not valid UTF-8`);
}

/**
 * Validates an EntryBatch without building objects: every field's wire type and length, UTF-8 of the
 * string fields, entry and tag bounds, line sizes. Unknown fields (from newer collectors) are skipped.
 * Allocates nothing per entry, and stops at the first entry past `maxEntries`, so a hostile batch of
 * millions of empty lines costs one pass over its first `maxEntries`. A line's size is that of its
 * data as decoded (the last `data` field of the Line). Throws ScanError. `observer` is told what the
 * walk meets (see ScanObserver).
 */
export function scanEntryBatch(buf: Buffer, limits: ScanLimits, observer?: ScanObserver): ScanResult {
  const maxEntries = limits.maxEntries ?? Number.POSITIVE_INFINITY;
  const maxTags = limits.maxTags ?? Number.POSITIVE_INFINITY;
  const maxTagBytes = limits.maxTagBytes ?? Number.POSITIVE_INFINITY;
  let entryCount = 0;
  try {
    const w = new EntryBatchWalker(buf);
    let lineBytes = 0;
    let oversizedLines = 0;
    let longestLine = 0;
    let tags = 0;
    let tagBytes = 0;
    let spans = limits.spans === true ? new Uint32Array(256) : undefined;
    for (let met = w.next(); met !== Met.End; met = w.next()) {
      switch (met) {
        case Met.CollectorId:
          checkUtf8(buf, w.start, w.end, 'collector_id');
          observer?.collectorId(buf, w.start, w.end);
          break;
        case Met.Run:
          observer?.run();
          break;
        case Met.Tag:
          if (++tags > maxTags) throw new WireError(`more than ${maxTags} tags`);
          break;
        case Met.TagKey:
        case Met.TagValue:
          checkUtf8(buf, w.start, w.end, 'tag');
          tagBytes += w.end - w.start;
          if (tagBytes > maxTagBytes) throw new WireError(`tags hold more than ${maxTagBytes} bytes`);
          break;
        case Met.Path:
          checkUtf8(buf, w.start, w.end, 'path');
          break;
        case Met.FileId:
          checkUtf8(buf, w.start, w.end, 'file_id');
          observer?.fileId(buf, w.start, w.end);
          break;
        case Met.Line: {
          if (entryCount >= maxEntries) throw new WireError(`more than ${maxEntries} entries`);
          w.readLineData();
          const len = w.dataEnd - w.dataStart;
          if (len > limits.maxLineBytes) oversizedLines++;
          if (len > longestLine) longestLine = len;
          lineBytes += len;
          if (spans !== undefined) {
            if (2 * entryCount === spans.length) {
              const grown = new Uint32Array(2 * spans.length);
              grown.set(spans);
              spans = grown;
            }
            spans[2 * entryCount] = w.dataStart;
            spans[2 * entryCount + 1] = w.dataEnd;
          }
          observer?.line(w.offset, len, w.flags);
          entryCount++;
          break;
        }
      }
    }
    const result = { entryCount, lineBytes, oversizedLines, longestLine };
    return spans === undefined ? result : { ...result, spans: spans.subarray(0, 2 * entryCount) };
  } catch (err) {
    if (err instanceof WireError) throw new ScanError(err.message, entryCount);
    throw err;
  }
}

/**
 * Counts the entries of an EntryBatch, reading every field `decodeEntries` reads and building
 * nothing: throws WireError exactly where decoding would. What the batcher checks of a spool record
 * before it hands views of it to emitters.
 */
export function countEntries(buf: Buffer): number {
  const w = new EntryBatchWalker(buf);
  let count = 0;
  for (let met = w.next(); met !== Met.End; met = w.next()) {
    if (met === Met.Line) {
      w.readLineData();
      count++;
    }
  }
  return count;
}

/**
 * Where the line bytes of every entry of an EntryBatch lie: [start, end) of entry i at [2i, 2i + 1].
 * Checks exactly what `countEntries` checks (throws WireError where decoding would), in the same one
 * walk, so a reader that keeps the spans never walks the record again to copy its lines out.
 * `expected` (e.g. the spool record's entry count) sizes the result; any count is handled.
 */
export function lineSpans(buf: Buffer, expected = 16): Uint32Array {
  const w = new EntryBatchWalker(buf);
  let spans = new Uint32Array(2 * Math.max(1, expected));
  let n = 0;
  for (let met = w.next(); met !== Met.End; met = w.next()) {
    if (met !== Met.Line) continue;
    w.readLineData();
    if (n === spans.length) {
      const grown = new Uint32Array(2 * spans.length);
      grown.set(spans);
      spans = grown;
    }
    spans[n++] = w.dataStart;
    spans[n++] = w.dataEnd;
  }
  return n === spans.length ? spans : spans.subarray(0, n);
}

/**
 * Calls `visit` with where the line bytes of each entry in [from, to) lie in `buf` (data [start, end)),
 * in entry order: for copying lines out without even a view per line.
 */
export function forEachLine(buf: Buffer, from: number, to: number, visit: (start: number, end: number) => void): void {
  const w = new EntryBatchWalker(buf);
  let index = 0;
  for (let met = w.next(); met !== Met.End && index < to; met = w.next()) {
    if (met !== Met.Line || index++ < from) continue;
    w.readLineData();
    visit(w.dataStart, w.dataEnd);
  }
}

/**
 * The line bytes of entries [from, to) of an EntryBatch, in entry order (that of `decodeEntries`),
 * as views into `buf`: no entry objects, no copies.
 */
export function* entryLines(buf: Buffer, from = 0, to = Number.POSITIVE_INFINITY): Generator<Buffer, void, undefined> {
  const w = new EntryBatchWalker(buf);
  let index = 0;
  for (let met = w.next(); met !== Met.End && index < to; met = w.next()) {
    if (met !== Met.Line || index++ < from) continue;
    w.readLineData();
    yield buf.subarray(w.dataStart, w.dataEnd);
  }
}

/** A source (or tag) filled in as its fields are met; frozen once the walk is over. */
interface Filling {
  collectorId: string;
  path: string;
  fileId: string;
}

/**
 * Decodes the entries of an EntryBatch (all, or those at [from, to) in entry order), appending to
 * `out`. Line bytes are views into `buf`; sources and tags are shared by all entries of a run and
 * batch (the header may come after the runs: sources get the collector id once the walk is over).
 * Throws WireError on malformed input.
 */
export function decodeEntries(buf: Buffer, out: Entry[] = [], from = 0, to = Number.POSITIVE_INFINITY): Entry[] {
  const w = new EntryBatchWalker(buf);
  let collectorId = '';
  const tags: Array<{ key: string; value: string }> = [];
  const sources: Filling[] = [];
  let source: Filling | undefined;
  let index = 0;
  for (let met = w.next(); met !== Met.End; met = w.next()) {
    switch (met) {
      case Met.CollectorId:
        collectorId = w.text();
        break;
      case Met.Tag:
        tags.push({ key: '', value: '' });
        break;
      case Met.TagKey:
        (tags[tags.length - 1] as { key: string }).key = w.text();
        break;
      case Met.TagValue:
        (tags[tags.length - 1] as { value: string }).value = w.text();
        break;
      case Met.Run:
        source = { collectorId: '', path: '', fileId: '' };
        sources.push(source);
        break;
      case Met.Path:
        (source as Filling).path = w.text();
        break;
      case Met.FileId:
        (source as Filling).fileId = w.text();
        break;
      case Met.Line:
        if (index >= from && index < to) {
          // The plain reader: decoding is what the fast paths (scan, spans) are tested against.
          w.readLine();
          out.push({ line: buf.subarray(w.dataStart, w.dataEnd), offset: w.offset, timeUnixNano: w.time, flags: w.flags, source: source as EntrySource, tags });
        }
        index++;
        break;
    }
  }
  Object.freeze(tags);
  for (const s of sources) {
    s.collectorId = collectorId;
    Object.freeze(s);
  }
  return out;
}

/**
 * Encodes entries (of any sources) as EntryBatches, one per run of entries that share collector id and
 * tags (two EntryBatches must not be concatenated: protobuf would merge their headers). For the
 * dead-letter file and for tests.
 */
export function encodeEntries(entries: readonly Entry[]): Buffer[] {
  const chunks: Buffer[] = [];
  let i = 0;
  while (i < entries.length) {
    // One EntryBatch per run of entries that share collector id and tags.
    const first = entries[i] as Entry;
    const writer = new EntryBatchWriter(encodeBatchHeader(first.source.collectorId, first.tags));
    const heads = new Map<string, RunHead>();
    while (i < entries.length) {
      const e = entries[i] as Entry;
      if (e.source.collectorId !== first.source.collectorId || e.tags !== first.tags) break;
      const key = `${e.source.path}\u0000${e.source.fileId}`;
      let head = heads.get(key);
      if (head === undefined) {
        head = new RunHead(e.source.path, e.source.fileId);
        heads.set(key, head);
      }
      writer.addLine(head, e.line, 0, e.line.length, e.offset, e.timeUnixNano, e.flags);
      i++;
    }
    chunks.push(writer.finish());
  }
  return chunks;
}
