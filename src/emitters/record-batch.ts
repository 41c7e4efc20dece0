import { decodeEntries, entryLines, forEachLine } from '../wire/entry-batch.js';
import type { Entry } from '../wire/entry-batch.js';
import type { Batch } from './emitter.js';

/** Entries [from, to) of one spool record (an EntryBatch), in entry order, not decoded. */
export interface RecordView {
  readonly data: Buffer;
  readonly from: number;
  readonly to: number;
}

/**
 * A batch as views over spool records, as the batcher cuts them: `lines()` walks the records' bytes
 * and yields each line's bytes as a view (no entry objects, no copies), so raw formats and the
 * blackhole never decode; `entries()` decodes the viewed entries on the first call and keeps them
 * (formats that need sources, offsets or times, and the rejected subset of a fatal result). Holds
 * the records, as the entries' line views would.
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
    for (const v of this.views) yield* entryLines(v.data, v.from, v.to);
  }

  /**
   * Every line's bytes followed by `separator`, copied straight from the records into one buffer:
   * one walk per record for the sizes, one copy per line, no view or object per line (raw formats).
   */
  joinLines(separator: number): Buffer {
    // Where each line lies in its record (a view never yields more lines than its range counts).
    const spans = new Int32Array(2 * this.count);
    let n = 0;
    let total = 0;
    const ends: number[] = [];
    for (const v of this.views) {
      forEachLine(v.data, v.from, v.to, (start, end) => {
        spans[n++] = start;
        spans[n++] = end;
        total += end - start + 1;
      });
      ends.push(n);
    }
    const out = Buffer.allocUnsafe(total);
    let pos = 0;
    let k = 0;
    this.views.forEach((v, i) => {
      for (const end = ends[i] as number; k < end; k += 2) {
        pos += v.data.copy(out, pos, spans[k], spans[k + 1]);
        out[pos++] = separator;
      }
    });
    return out;
  }
}
