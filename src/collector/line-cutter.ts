import { LineFlag } from '../wire/entry-batch.js';

export interface EntryOut {
  /** One entry: `buf[start, end)`; `next` is the index just after it (after its newline). */
  entry(start: number, end: number, next: number, flags: number): void;
}

export interface LineCutterOptions {
  /** Read at every cut, so it may be a getter that follows limits learned later (the aggregator's). */
  readonly maxLineBytes: number;
  readonly multilineStartPattern?: RegExp | undefined;
}

const LF = 0x0a;
const CR = 0x0d;
/** Bytes of a line shown to the multiline pattern: enough for any sane "start of entry" rule. */
const PATTERN_PREFIX_BYTES = 1024;

/**
 * Cuts entries out of a read buffer without decoding it: `\n` ends a line (a trailing `\r` is
 * stripped), a final line without newline is held until it completes or the caller says to flush it,
 * lines over `maxLineBytes` are split into flagged pieces (never truncated: every piece but the last
 * is flagged PARTIAL, the last PARTIAL_LAST, each with the file offset of its first byte, so a consumer
 * rejoins them), and, with a start pattern, lines that do
 * not match it are joined to the entry before them (stack traces). The cutter keeps no copy of the
 * bytes: what it does not consume, the tailer reads again next time, so a held line or a pending
 * multiline entry costs nothing but a re-scan.
 */
export class LineCutter {
  /** The last entry emitted was a non-final piece of a long line; the next bytes continue it. */
  private continuing = false;
  private pieces = 0;
  private max: number;
  private readonly pattern: RegExp | undefined;
  /** The multiline entry being collected during a cut: `buf[start, end)`, `next` after it (start < 0: none). */
  private eStart = -1;
  private eEnd = 0;
  private eNext = 0;
  private eMulti = false;

  constructor(private readonly options: LineCutterOptions) {
    this.max = options.maxLineBytes;
    this.pattern = options.multilineStartPattern;
  }

  /** Pieces emitted because a line exceeded maxLineBytes. */
  get splitPieces(): number {
    return this.pieces;
  }

  /**
   * Cuts `buf[from, buf.length)`; returns the index after the last consumed byte.
   * `flushEntry`: a pending multiline entry is complete (its timeout passed, or the file is done).
   * `flushPartial`: a final line without newline is complete (idle, or the file is done); it completes
   * a pending multiline entry too.
   */
  cut(buf: Buffer, from: number, out: EntryOut, flushEntry = false, flushPartial = false): number {
    const max = (this.max = Math.max(1, this.options.maxLineBytes));
    const pattern = this.pattern;
    const to = buf.length;
    this.eStart = -1;
    let pos = from;
    while (pos < to) {
      const nl = buf.indexOf(LF, pos);
      let end = nl;
      if (nl === -1) end = to;
      else if (end > pos && buf[end - 1] === CR) end--;
      // Too long whatever ends it: with no newline yet, more than max+1 bytes (+1: a \r before a
      // newline still to come is not content).
      if (end - pos > (nl === -1 ? max + 1 : max)) {
        this.flushPending(out);
        pos = this.piece(pos, out);
        continue;
      }
      if (nl === -1) {
        if (flushPartial && to > pos) {
          this.flushPending(out);
          out.entry(pos, to, to, LineFlag.NoNewline | (this.continuing ? LineFlag.PartialLast : 0));
          this.continuing = false;
          pos = to;
        }
        break;
      }
      if (pattern === undefined || this.continuing) {
        out.entry(pos, end, nl + 1, this.continuing ? LineFlag.PartialLast : 0);
        this.continuing = false;
      } else {
        pattern.lastIndex = 0;
        const isStart = pattern.test(buf.toString('utf8', pos, Math.min(end, pos + PATTERN_PREFIX_BYTES)));
        if (this.eStart >= 0 && !isStart && end - this.eStart <= max) {
          this.eMulti = true;
        } else {
          this.flushPending(out);
          this.eStart = pos;
          this.eMulti = false;
        }
        this.eEnd = end;
        this.eNext = nl + 1;
      }
      pos = nl + 1;
    }
    if (this.eStart >= 0) {
      // The entry may go on in bytes not written yet: hold it (unconsumed) unless told it is complete.
      if (!flushEntry && !flushPartial) return this.eStart;
      this.flushPending(out);
    }
    return pos;
  }

  private flushPending(out: EntryOut): void {
    if (this.eStart < 0) return;
    out.entry(this.eStart, this.eEnd, this.eNext, this.eMulti ? LineFlag.Multiline : 0);
    this.eStart = -1;
  }

  private piece(pos: number, out: EntryOut): number {
    out.entry(pos, pos + this.max, pos + this.max, LineFlag.Partial);
    this.continuing = true;
    this.pieces++;
    return pos + this.max;
  }
}
