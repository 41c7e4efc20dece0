/**
 * The benchmark corpus: `lines` unique lines of exactly `lineBytes` bytes (newline included), each
 * starting with its 10-digit sequence number, and the line-for-line check of a shipper's output against
 * it. A run that loses, duplicates or changes a line is a failure, not a number.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const PREFIX = ' bench line ';

/** Fills `buf[start, start + lineBytes)` with line `seq` (newline last). */
export function fillLine(buf: Buffer, start: number, seq: number, lineBytes: number): void {
  buf.fill(0x78, start, start + lineBytes - 1);
  buf.write(`${String(seq).padStart(10, '0')}${PREFIX}`, start, 'latin1');
  buf[start + lineBytes - 1] = 0x0a;
}

export function writeCorpus(path: string, lines: number, lineBytes: number, firstSeq = 0): void {
  const fd = openSync(path, 'w');
  const perChunk = Math.max(1, Math.floor((4 << 20) / lineBytes));
  const chunk = Buffer.alloc(perChunk * lineBytes);
  for (let i = 0; i < lines; ) {
    const n = Math.min(perChunk, lines - i);
    for (let j = 0; j < n; j++) fillLine(chunk, j * lineBytes, firstSeq + i + j, lineBytes);
    writeSync(fd, chunk, 0, n * lineBytes);
    i += n;
  }
  closeSync(fd);
}

export interface LineCount {
  readonly written: number;
  readonly delivered: number;
  readonly lost: number;
  readonly duplicated: number;
  /** Lines that are no line of the corpus (cut, merged or altered). */
  readonly changed: number;
}

/** `files` files `<dir>/f<NNNN>.log` of `linesPerFile` lines each; file f holds lines f*linesPerFile, .... */
export function writeCorpusFiles(dir: string, files: number, linesPerFile: number, lineBytes: number): void {
  for (let f = 0; f < files; f++) writeCorpus(join(dir, `f${String(f).padStart(4, '0')}.log`), linesPerFile, lineBytes, f * linesPerFile);
}

/**
 * Reads `path` line by line and counts each corpus line seen. `stripLeading` drops that many bytes
 * before comparing (rsyslog's %msg% keeps the space after the syslog tag).
 */
export function verifyOutput(path: string, lines: number, lineBytes: number, stripLeading = 0): LineCount {
  const seen = new Uint8Array(lines);
  const expected = Buffer.alloc(lineBytes);
  let delivered = 0;
  let duplicated = 0;
  let changed = 0;
  const check = (line: Buffer): void => {
    const body = line.subarray(Math.min(stripLeading, line.length));
    delivered++;
    const seq = Number(body.toString('latin1', 0, 10));
    if (body.length !== lineBytes - 1 || !Number.isInteger(seq) || seq < 0 || seq >= lines) {
      changed++;
      return;
    }
    fillLine(expected, 0, seq, lineBytes);
    if (!body.equals(expected.subarray(0, lineBytes - 1))) {
      changed++;
      return;
    }
    if (seen[seq] === 1) duplicated++;
    seen[seq] = 1;
  };
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(8 << 20);
    let carry = Buffer.alloc(0);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      let data = carry.length > 0 ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      let start = 0;
      for (let nl = data.indexOf(0x0a, start); nl !== -1; nl = data.indexOf(0x0a, start)) {
        check(data.subarray(start, nl));
        start = nl + 1;
      }
      data = data.subarray(start);
      carry = Buffer.from(data);
    }
    if (carry.length > 0) check(carry);
  } finally {
    closeSync(fd);
  }
  let found = 0;
  for (let i = 0; i < lines; i++) found += seen[i] as number;
  return { written: lines, delivered, lost: lines - found, duplicated, changed };
}

export function isExact(c: LineCount): boolean {
  return c.lost === 0 && c.duplicated === 0 && c.changed === 0;
}
