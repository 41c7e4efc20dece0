import { LineFlag } from '../wire/entry-batch.js';

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

export class LineCutter {
  /** The last entry emitted was a non-final piece of a long line; the next bytes continue it. */
  continuing = false;
  /** Pieces emitted because a line exceeded maxLineBytes. */
  splitPieces = 0;
  private max: number;
  private readonly pattern: RegExp | undefined;

  constructor(private readonly options: LineCutterOptions) {
    this.max = options.maxLineBytes;
    this.pattern = options.multilineStartPattern;
  }

  /**
   * Cuts `buf[from, buf.length)`; returns the index after the last consumed byte.
   * `flushEntry`: a pending multiline entry is complete (its timeout passed, or the file is done).
   * `flushPartial`: a final line without newline is complete (idle, or the file is done).
   */
  cut(buf: Buffer, from: number, out: EntryOut, flushEntry = false, flushPartial = false): number {
    this.max = Math.max(1, this.options.maxLineBytes);
    if (this.pattern !== undefined) return this.cutMultiline(buf, from, out, flushEntry || flushPartial, flushPartial);
    const to = buf.length;
    const max = this.max;
    let pos = from;
    while (pos < to) {
      const nl = buf.indexOf(LF, pos);
      if (nl === -1) {
        const avail = to - pos;
        // No newline in more than max+1 bytes: the line is too long whatever ends it (+1: a \r
        // before a newline still to come is not content).
        if (avail > max + 1) {
          pos = this.piece(pos, out);
          continue;
        }
        if (flushPartial && avail > 0) {
          out.entry(pos, to, to, LineFlag.NoNewline | (this.continuing ? LineFlag.PartialLast : 0));
          this.continuing = false;
          pos = to;
        }
        break;
      }
      let end = nl;
      if (end > pos && buf[end - 1] === CR) end--;
      if (end - pos > max) {
        pos = this.piece(pos, out);
        continue;
      }
      out.entry(pos, end, nl + 1, this.continuing ? LineFlag.PartialLast : 0);
      this.continuing = false;
      pos = nl + 1;
    }
    return pos;
  }

  private piece(pos: number, out: EntryOut): number {
    out.entry(pos, pos + this.max, pos + this.max, LineFlag.Partial);
    this.continuing = true;
    this.splitPieces++;
    return pos + this.max;
  }

  private cutMultiline(buf: Buffer, from: number, out: EntryOut, flushEntry: boolean, flushPartial: boolean): number {
    const to = buf.length;
    const max = this.max;
    const pattern = this.pattern as RegExp;
    let pos = from;
    let eStart = -1;
    let eEnd = 0;
    let eNext = 0;
    let eMulti = false;
    const flushPending = (): void => {
      if (eStart < 0) return;
      out.entry(eStart, eEnd, eNext, eMulti ? LineFlag.Multiline : 0);
      eStart = -1;
    };
    while (pos < to) {
      const nl = buf.indexOf(LF, pos);
      if (nl === -1) {
        const avail = to - pos;
        if (avail > max + 1) {
          flushPending();
          pos = this.piece(pos, out);
          continue;
        }
        if (flushPartial && avail > 0) {
          flushPending();
          out.entry(pos, to, to, LineFlag.NoNewline | (this.continuing ? LineFlag.PartialLast : 0));
          this.continuing = false;
          pos = to;
        }
        break;
      }
      let end = nl;
      if (end > pos && buf[end - 1] === CR) end--;
      if (end - pos > max) {
        flushPending();
        pos = this.piece(pos, out);
        continue;
      }
      if (this.continuing) {
        out.entry(pos, end, nl + 1, LineFlag.PartialLast);
        this.continuing = false;
        pos = nl + 1;
        continue;
      }
      pattern.lastIndex = 0;
      const isStart = pattern.test(buf.toString('utf8', pos, Math.min(end, pos + PATTERN_PREFIX_BYTES)));
      if (eStart >= 0 && !isStart && end - eStart <= max) {
        eEnd = end;
        eNext = nl + 1;
        eMulti = true;
      } else {
        flushPending();
        eStart = pos;
        eEnd = end;
        eNext = nl + 1;
        eMulti = false;
      }
      pos = nl + 1;
    }
    if (eStart >= 0) {
      // The entry may go on in bytes not written yet: hold it (unconsumed) unless told it is complete.
      if (!flushEntry) return eStart;
      flushPending();
    }
    return pos;
  }
}
