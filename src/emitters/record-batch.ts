import { decodeEntries, lineSpans } from '../wire/entry-batch.js';
import type { Entry } from '../wire/entry-batch.js';
import type { Batch } from './emitter.js';

/** Entries [from, to) of one spool record (an EntryBatch), in entry order, not decoded. */
export interface RecordView {
  readonly data: Buffer;
  readonly from: number;
  readonly to: number;
  /**
   * Where every line of the record lies (lineSpans of `data`: entry i's bytes at [2i, 2i + 1]), when
   * the reader already walked the record (the batcher does, to count and check it); views of one
   * record share it. Without it the record is walked here, once.
   */
  readonly spans?: Uint32Array;
}

/**
 * A batch as views over spool records, as the batcher cuts them: `lines()` yields each line's bytes as
 * a view and `joinLines` copies them out, both from the records' line spans (no entry objects, no
 * second walk when the batcher handed the spans over), so raw formats and the blackhole never decode;
 * `entries()` decodes the viewed entries on the first call and keeps them (formats that need sources,
 * offsets or times, and the rejected subset of a fatal result). Holds the records, as the entries'
 * line views would.
 */
export class RecordBatch implements Batch {
  readonly count: number;
  private decoded: readonly Entry[] | undefined;

  constructor(
    readonly id: number,
    private readonly views: readonly RecordView[],
  ) {
    let count = 0;
    for (const v of views) count += v.to - v.from;
    this.count = count;
  }

  entries(): readonly Entry[] {
    if (this.decoded === undefined) {
      const out: Entry[] = [];
      for (const v of this.views) decodeEntries(v.data, out, v.from, v.to);
      this.decoded = out;
    }
    return this.decoded;
  }

  *lines(): Generator<Buffer, void, undefined> {
    for (const v of this.views) {
      const spans = spansOf(v);
      for (let i = v.from; i < v.to; i++) yield v.data.subarray(spans[2 * i], spans[2 * i + 1]);
    }
  }

  /**
   * Every line's bytes followed by `separator`, in one buffer (raw formats: one write per batch).
   * Per view, the record's bytes from its first line to its last are copied in one piece a little
   * above where they belong, then each line is moved down into place (copyWithin: no object, no
   * allocation per line) and its separator written after it. A line never moves up (it starts at or
   * after its place: the separators written before it are fewer than the view's lines, which the
   * piece was placed above), and each separator lands below every line not yet moved. Lines that lie
   * in the record exactly as they go out (a LineBlock's: each followed by the separator, the next
   * right after it) are copied in one piece where they belong, and nothing moves. The result is the
   * start of a buffer from `alloc` (at least as large as asked; e.g. one the caller reuses).
   */
  joinLines(separator: number, alloc: (bytes: number) => Buffer = Buffer.allocUnsafe): Buffer {
    const spans = this.views.map(spansOf);
    let bound = 0;
    for (let k = 0; k < this.views.length; k++) {
      const v = this.views[k] as RecordView;
      const [lo, hi] = extent(spans[k] as Uint32Array, v.from, v.to);
      bound += v.to - v.from + (hi - lo);
    }
    const out = alloc(bound);
    let pos = 0;
    for (let k = 0; k < this.views.length; k++) {
      const v = this.views[k] as RecordView;
      const s = spans[k] as Uint32Array;
      if (v.to > v.from && laidOut(v.data, s, v.from, v.to, separator)) {
        const first = s[2 * v.from] as number;
        const past = (s[2 * v.to - 1] as number) + 1;
        v.data.copy(out, pos, first, past);
        pos += past - first;
        continue;
      }
      const [lo, hi] = extent(s, v.from, v.to);
      // The piece [lo, hi) of the record, placed one byte per line above `pos`.
      const shift = pos + (v.to - v.from) - lo;
      if (hi > lo) v.data.copy(out, lo + shift, lo, hi);
      for (let i = 2 * v.from, end = 2 * v.to; i < end; i += 2) {
        const start = s[i] as number;
        const len = (s[i + 1] as number) - start;
        if (len > 0) {
          const from = start + shift;
          if (from !== pos) out.copyWithin(pos, from, from + len);
          pos += len;
        }
        out[pos++] = separator;
      }
    }
    return out.subarray(0, pos);
  }
}

function spansOf(v: RecordView): Uint32Array {
  return v.spans ?? lineSpans(v.data);
}

/**
 * Lines [from, to) lie in `data` as joinLines writes them: each followed by `separator`, each next one
 * starting right after it (the bytes of a LineBlock). Then the piece from the first line's start to
 * the last one's separator is already the output (the bounds joinLines allocates hold it: see there).
 */
function laidOut(data: Buffer, spans: Uint32Array, from: number, to: number, separator: number): boolean {
  for (let i = 2 * from, end = 2 * to; i < end; i += 2) {
    const lineEnd = spans[i + 1] as number;
    if (data[lineEnd] !== separator) return false;
    if (i + 2 < end && spans[i + 2] !== lineEnd + 1) return false;
  }
  return true;
}

/** [lowest start, highest end) of the non-empty lines [from, to) (an empty line's span is 0..0). */
function extent(spans: Uint32Array, from: number, to: number): [number, number] {
  let lo = 0;
  let hi = 0;
  for (let i = 2 * from, end = 2 * to; i < end; i += 2) {
    if ((spans[i + 1] as number) > (spans[i] as number)) {
      lo = spans[i] as number;
      break;
    }
  }
  for (let i = 2 * to - 2, end = 2 * from; i >= end; i -= 2) {
    if ((spans[i + 1] as number) > (spans[i] as number)) {
      hi = spans[i + 1] as number;
      break;
    }
  }
  return [lo, hi];
}
