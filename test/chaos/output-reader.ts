import { closeSync, openSync, readSync, statSync } from 'node:fs';

/**
 * Follows the file emitter's output (raw format: one entry per line) by its path, reading only what was
 * appended since the last poll. What counts is the file the path names now: when the path names another
 * file (removed and recreated) or the file shrank, everything read so far is forgotten and it is read
 * again from the start. A last line without its newline is left for the next poll.
 */
export class OutputReader {
  private lines: string[] = [];
  private ino = -1;
  private offset = 0;
  private rest: Buffer = Buffer.alloc(0);

  constructor(readonly path: string) {}

  /** Reads what is new and returns every complete line of the file the path names now. */
  poll(): readonly string[] {
    let st;
    try {
      st = statSync(this.path);
    } catch {
      this.reset(-1);
      return this.lines;
    }
    if (st.ino !== this.ino || st.size < this.offset) this.reset(st.ino);
    if (st.size === this.offset) return this.lines;
    const fd = openSync(this.path, 'r');
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.offset);
        if (n === 0) break;
        this.offset += n;
        this.take(buf.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
    return this.lines;
  }

  private take(bytes: Buffer): void {
    const data = this.rest.length === 0 ? bytes : Buffer.concat([this.rest, bytes]);
    let start = 0;
    for (;;) {
      const nl = data.indexOf(10, start);
      if (nl === -1) break;
      this.lines.push(data.toString('utf8', start, nl));
      start = nl + 1;
    }
    this.rest = Buffer.from(data.subarray(start));
  }

  private reset(ino: number): void {
    this.lines = [];
    this.ino = ino;
    this.offset = 0;
    this.rest = Buffer.alloc(0);
  }
}
