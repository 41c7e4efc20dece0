import type { Entry } from '../wire/entry-batch.js';

const NEWLINE = 0x0a;

/**
 * The entries' bytes exactly as read, each followed by "\n", copied into one buffer so the emitter
 * issues one large write per batch instead of two small ones per line.
 */
export function entriesToRawLines(entries: readonly Entry[]): Buffer {
  let total = 0;
  for (const e of entries) total += e.line.length + 1;
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const e of entries) {
    pos += e.line.copy(out, pos);
    out[pos++] = NEWLINE;
  }
  return out;
}
