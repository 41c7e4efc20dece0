import { WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, WireError, WireReader } from './varint.js';

/**
 * The field tags of EntryBatch (api/api.proto; see entry-batch.ts), and the one walk over its bytes
 * that the scan, the decoder and the line iterator share.
 */

export const TAG_COLLECTOR_ID = (1 << 3) | WIRE_LEN; // 0x0a
export const TAG_TAGS = (2 << 3) | WIRE_LEN; // 0x12
export const TAG_RUNS = (3 << 3) | WIRE_LEN; // 0x1a
export const TAG_KEY = (1 << 3) | WIRE_LEN;
export const TAG_VALUE = (2 << 3) | WIRE_LEN;
export const TAG_PATH = (1 << 3) | WIRE_LEN;
export const TAG_FILE_ID = (2 << 3) | WIRE_LEN;
export const TAG_LINES = (3 << 3) | WIRE_LEN;
export const TAG_DATA = (1 << 3) | WIRE_LEN;
export const TAG_OFFSET = (2 << 3) | WIRE_VARINT; // 0x10
export const TAG_TIME = (3 << 3) | WIRE_FIXED64; // 0x19
export const TAG_FLAGS = (4 << 3) | WIRE_VARINT; // 0x20
/** FileRun.blocks (4): a LineBlock, whose fields reuse the tags of Line's data, offset and time. */
export const TAG_BLOCKS = (4 << 3) | WIRE_LEN; // 0x22
const NEWLINE = 0x0a;


/** What `EntryBatchWalker.next()` met, in the order the bytes hold them. */
export const Met = {
  /** The end of the batch. */
  End: 0,
  /** collector_id: its bytes are [start, end). */
  CollectorId: 1,
  /** A Tag message begins; its TagKey and TagValue fields follow. */
  Tag: 2,
  TagKey: 3,
  TagValue: 4,
  /** A FileRun message begins; its Path, FileId and Line fields follow. */
  Run: 5,
  Path: 6,
  FileId: 7,
  /**
   * A line of the current run: a Line message (`readLine()` reads its fields, or leave it unread to
   * skip it), or one line of a LineBlock (its fields are set already; `readLine()` does nothing).
   */
  Line: 8,
} as const;
export type Met = (typeof Met)[keyof typeof Met];

const IN_TOP = 0;
const IN_TAG = 1;
const IN_RUN = 2;

/**
 * The one walk over EntryBatch bytes, pull-style (each `next()` returns the next thing met), so the
 * scan, the decoder and the line iterator share it and differ only in what they do with each thing.
 * Builds nothing: positions are fields of the walker, re-aimed at each step (three readers in all).
 * Unknown fields (from newer collectors) are skipped; a field met twice is reported twice (protobuf:
 * the last one wins). Every read is bounds-checked and throws WireError on malformed input.
 */
export class EntryBatchWalker {
  /** The bytes of the field just met (CollectorId, TagKey, TagValue, Path, FileId): [start, end). */
  start = 0;
  end = 0;
  /** After `readLine()`: the line's data [dataStart, dataEnd) (empty when absent), offset, flags. */
  dataStart = 0;
  dataEnd = 0;
  offset = 0;
  flags = 0;
  /** After `readLine()`: where time_unix_nano's 8 bytes start, or -1 when absent (see `time`). */
  timeAt = -1;
  private readonly top: WireReader;
  private readonly sub: WireReader;
  private readonly line: WireReader;
  private inside = IN_TOP;
  /** The LineBlock being walked: its next line starts at blockPos, its data ends at blockEnd. */
  private blockPos = 0;
  private blockEnd = 0;
  private blockDataStart = 0;
  private blockOffset = 0;
  private blockTimeAt = -1;
  /** The line met last came from a LineBlock: its fields are set, `readLine` has nothing to read. */
  private blockLine = false;

  constructor(readonly buf: Buffer) {
    this.top = new WireReader(buf);
    this.sub = new WireReader(buf, 0, 0);
    this.line = new WireReader(buf, 0, 0);
  }

  next(): Met {
    if (this.blockPos < this.blockEnd) return this.blockNext();
    for (;;) {
      if (this.inside !== IN_TOP) {
        const sub = this.sub;
        if (sub.done) {
          this.inside = IN_TOP;
          continue;
        }
        const ft = sub.varint();
        if (this.inside === IN_TAG) {
          if (ft === TAG_KEY || ft === TAG_VALUE) {
            this.start = sub.lengthDelimited();
            this.end = sub.pos;
            return ft === TAG_KEY ? Met.TagKey : Met.TagValue;
          }
        } else if (ft === TAG_LINES) {
          this.line.pos = sub.lengthDelimited();
          this.line.end = sub.pos;
          this.blockLine = false;
          return Met.Line;
        } else if (ft === TAG_BLOCKS) {
          const start = sub.lengthDelimited();
          this.openBlock(start, sub.pos);
          if (this.blockPos < this.blockEnd) return this.blockNext();
          continue;
        } else if (ft === TAG_PATH || ft === TAG_FILE_ID) {
          this.start = sub.lengthDelimited();
          this.end = sub.pos;
          return ft === TAG_PATH ? Met.Path : Met.FileId;
        }
        sub.skip(ft & 7);
        continue;
      }
      const top = this.top;
      if (top.done) return Met.End;
      const tag = top.varint();
      if (tag === TAG_COLLECTOR_ID) {
        this.start = top.lengthDelimited();
        this.end = top.pos;
        return Met.CollectorId;
      }
      if (tag === TAG_TAGS || tag === TAG_RUNS) {
        this.sub.pos = top.lengthDelimited();
        this.sub.end = top.pos;
        this.inside = tag === TAG_TAGS ? IN_TAG : IN_RUN;
        return tag === TAG_TAGS ? Met.Tag : Met.Run;
      }
      top.skip(tag & 7);
    }
  }

  /**
   * Reads a LineBlock's fields (the last of a repeated field wins) and aims the walk at its first line.
   * Its data holds whole lines, each ended by a newline that is not part of the line; data that does
   * not end with one is malformed (a collector never cuts a line off). Empty data holds no line.
   */
  private openBlock(start: number, end: number): void {
    const r = this.line;
    r.pos = start;
    r.end = end;
    let dataStart = 0;
    let dataEnd = 0;
    let offset = 0;
    let timeAt = -1;
    while (!r.done) {
      const ft = r.varint();
      if (ft === TAG_DATA) {
        dataStart = r.lengthDelimited();
        dataEnd = r.pos;
      } else if (ft === TAG_OFFSET) offset = r.varint();
      else if (ft === TAG_TIME) {
        timeAt = r.pos;
        r.skip(WIRE_FIXED64);
      } else r.skip(ft & 7);
    }
    if (dataEnd > dataStart && this.buf[dataEnd - 1] !== NEWLINE) throw new WireError('a line block does not end with a newline');
    this.blockPos = dataStart;
    this.blockEnd = dataEnd;
    this.blockDataStart = dataStart;
    this.blockOffset = offset;
    this.blockTimeAt = timeAt;
  }

  /** The next line of the LineBlock under way (its data ends with a newline: see openBlock). */
  private blockNext(): Met {
    const start = this.blockPos;
    const nl = this.buf.indexOf(NEWLINE, start);
    this.dataStart = start;
    this.dataEnd = nl;
    this.offset = this.blockOffset + (start - this.blockDataStart);
    this.flags = 0;
    this.timeAt = this.blockTimeAt;
    this.blockPos = nl + 1;
    this.blockLine = true;
    return Met.Line;
  }

  /** Reads the fields of the Line just met (the last of a repeated field wins). */
  readLine(): void {
    if (this.blockLine) return;
    const line = this.line;
    this.dataStart = 0;
    this.dataEnd = 0;
    this.offset = 0;
    this.flags = 0;
    this.timeAt = -1;
    while (!line.done) {
      const lt = line.varint();
      if (lt === TAG_DATA) {
        this.dataStart = line.lengthDelimited();
        this.dataEnd = line.pos;
      } else if (lt === TAG_OFFSET) this.offset = line.varint();
      else if (lt === TAG_TIME) {
        this.timeAt = line.pos;
        line.skip(WIRE_FIXED64);
      } else if (lt === TAG_FLAGS) this.flags = line.varint();
      else line.skip(lt & 7);
    }
  }

  /**
   * `readLine`, fast: the common shape (one-byte tags of data, offset, time and flags, lengths and
   * varints of at most 7 bytes) in one loop over locals, setting what `readLine` sets; anything else
   * (unknown fields, a long or truncated varint, bytes past the end) goes through `readLine`, so it
   * accepts, rejects and reads exactly what `readLine` does.
   */
  readLineData(): void {
    if (this.blockLine) return;
    const buf = this.buf;
    const end = this.line.end;
    let pos = this.line.pos;
    let dataStart = 0;
    let dataEnd = 0;
    let offset = 0;
    let flags = 0;
    let timeAt = -1;
    // pos only grows and never passes end; the walk succeeds when it lands exactly on end.
    while (pos < end) {
      const tag = buf[pos++] as number;
      if (tag === TAG_TIME) {
        if (pos + 8 > end) break;
        timeAt = pos;
        pos += 8;
      } else if (tag === TAG_DATA || tag === TAG_OFFSET || tag === TAG_FLAGS) {
        // A varint of at most 7 bytes (below 2^49: always a safe integer), all before end.
        let value = 0;
        let mul = 1;
        let b = 0x80;
        const last = Math.min(end, pos + 7);
        while (pos < last) {
          b = buf[pos++] as number;
          value += (b & 0x7f) * mul;
          if (b < 0x80) break;
          mul *= 128;
        }
        if (b >= 0x80) break;
        if (tag === TAG_DATA) {
          if (value > end - pos) break;
          dataStart = pos;
          pos += value;
          dataEnd = pos;
        } else if (tag === TAG_OFFSET) offset = value;
        else flags = value;
      } else break;
      if (pos === end) {
        this.dataStart = dataStart;
        this.dataEnd = dataEnd;
        this.offset = offset;
        this.flags = flags;
        this.timeAt = timeAt;
        return;
      }
    }
    if (pos === end && end === this.line.pos) {
      // An empty Line message.
      this.dataStart = 0;
      this.dataEnd = 0;
      this.offset = 0;
      this.flags = 0;
      this.timeAt = -1;
      return;
    }
    this.readLine();
  }

  /** time_unix_nano of the line read last (0 when absent). */
  get time(): bigint {
    return this.timeAt < 0 ? 0n : this.buf.readBigUInt64LE(this.timeAt);
  }

  /** The string field just met, decoded. */
  text(): string {
    return this.buf.toString('utf8', this.start, this.end);
  }
}
