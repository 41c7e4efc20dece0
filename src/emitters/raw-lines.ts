import type { Batch } from './emitter.js';
import { RecordBatch } from './record-batch.js';

const NEWLINE = 0x0a;

/**
 * The lines' bytes exactly as read, each followed by "\n", copied into one buffer so the emitter
 * issues one large write per batch instead of two small ones per line. A batch of spool record views
 * is copied straight from the records (no entry objects, no view per line); any other batch through
 * its line iterator.
 */
export function rawLines(batch: Batch): Buffer {
  if (batch instanceof RecordBatch) return batch.joinLines(NEWLINE);
  const parts = [...batch.lines()];
  let total = 0;
  for (const line of parts) total += line.length + 1;
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const line of parts) {
    pos += line.copy(out, pos);
    out[pos++] = NEWLINE;
  }
  return out;
}
