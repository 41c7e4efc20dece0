const NEWLINE = 0x0a;

/**
 * The lines' bytes exactly as read, each followed by "\n", copied into one buffer so the emitter
 * issues one large write per batch instead of two small ones per line. Takes the batch's line
 * iterator (views, no entry objects).
 */
export function rawLines(lines: Iterable<Buffer>): Buffer {
  const parts = Array.isArray(lines) ? (lines as readonly Buffer[]) : [...lines];
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
