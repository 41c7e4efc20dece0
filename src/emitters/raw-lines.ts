import type { Batch } from './emitter.js';
import { RecordBatch } from './record-batch.js';

const NEWLINE = 0x0a;

/**
 * The lines' bytes exactly as read, each followed by "\n", copied into one buffer (from `alloc`, at
 * least as large as asked) so the emitter issues one large write per batch instead of two small ones
 * per line. A batch of spool record views
 * is copied straight from the records (no entry objects, no view per line); any other batch through
 * its line iterator.
 */
export function rawLines(batch: Batch, alloc: (bytes: number) => Buffer = Buffer.allocUnsafe): Buffer {
  if (batch instanceof RecordBatch) return batch.joinLines(NEWLINE, alloc);
  const parts = [...batch.lines()];
  let total = 0;
  for (const line of parts) total += line.length + 1;
  const out = alloc(total);
  let pos = 0;
  for (const line of parts) {
    pos += line.copy(out, pos);
    out[pos++] = NEWLINE;
  }
  return out.subarray(0, pos);
}

/**
 * A buffer reused for one output after another (one at a time: the caller is done with the last
 * one before asking again), so that a steady stream of batches does not allocate (and collect) one
 * large buffer per batch. Grows to the largest batch up to `keepBytes`; larger ones get their own.
 */
export class ReusedBuffer {
  private buf = Buffer.alloc(0);

  constructor(private readonly keepBytes: number) {}

  /** At least `bytes` bytes, overwriting what the previous call returned. */
  readonly take = (bytes: number): Buffer => {
    if (bytes <= this.buf.length) return this.buf;
    if (bytes > this.keepBytes) return Buffer.allocUnsafe(bytes);
    this.buf = Buffer.allocUnsafe(Math.min(this.keepBytes, Math.max(bytes, 2 * this.buf.length)));
    return this.buf;
  };
}
