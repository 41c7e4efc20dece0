import { closeSync, openSync, readSync, statSync } from 'node:fs';

/**
 * Follows the file emitter's output (raw format: one entry per line) by its path, reading only what was
 * appended since the last poll. What counts is the file the path names now: when the path names another
 * file (removed and recreated) or the file shrank, everything read so far is forgotten and it is read
 * again from the start. A last line without its newline is left for the next poll.
 */
export class OutputReader {
  private lines: string[] = [];
  /** The followed file's identity: inode plus birth time, since a removed file's inode is soon reused. */
  private identity = '';
  private offset = 0;
  private rest: Buffer = Buffer.alloc(0);

  constructor(readonly path: string) {}

  /** Reads what is new and returns every complete line of the file the path names now. */
  poll(): readonly string[] {
    let st;
    try {
      st = statSync(this.path);
    } catch {
      this.reset('');
      return this.lines;
    }
    const identity = `${st.ino}:${st.birthtimeMs}`;
    if (identity !== this.identity || st.size < this.offset) this.reset(identity);
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

  /**
   * Forgets the file read so far (the operator removed it): the next poll reads whatever the path names
   * then from its start, even when a new file got the removed one's inode number.
   */
  forget(): void {
    this.reset('');
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

  private reset(identity: string): void {
    this.lines = [];
    this.identity = identity;
    this.offset = 0;
    this.rest = Buffer.alloc(0);
  }
}
