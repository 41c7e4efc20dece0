import { crc32c } from '@node-rs/crc32';
import { open, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fsyncDir, isErrno, writeFileAtomic } from './durable-fs.js';

/**
 * The dead-letter file: entries an emitter can never accept, kept with the reason so an operator can
 * look at them and replay them (`mega-aggregator spool replay-dead-letters`). Nothing is dropped.
 *
 *   record = crc32c u32 | data length u32 | entry count u32 | reason length u32 | time ms f64 | reason | data
 *
 * The CRC covers everything after itself. A torn last record (crash mid-append) is ignored on read and
 * overwritten by the next append's truncation.
 */
export const DEAD_LETTER_FILE = 'dead-letters.log';
const HEADER_BYTES = 24;

export interface DeadLetter {
  /** An EntryBatch, as `encodeEntries` made it. */
  readonly data: Buffer;
  readonly entryCount: number;
  readonly reason: string;
  /** When it was dead-lettered, wall-clock ms since the epoch. */
  readonly timeMs: number;
}

export function encodeDeadLetter(d: DeadLetter): Buffer {
  const reason = Buffer.from(d.reason, 'utf8');
  const out = Buffer.allocUnsafe(HEADER_BYTES + reason.length + d.data.length);
  out.writeUInt32LE(d.data.length, 4);
  out.writeUInt32LE(d.entryCount, 8);
  out.writeUInt32LE(reason.length, 12);
  out.writeDoubleLE(d.timeMs, 16);
  reason.copy(out, HEADER_BYTES);
  d.data.copy(out, HEADER_BYTES + reason.length);
  out.writeUInt32LE(crc32c(out.subarray(4)), 0);
  return out;
}

export interface ParsedDeadLetters {
  readonly letters: DeadLetter[];
  /** Bytes of whole, valid records; anything after is a torn or corrupt tail. */
  readonly validBytes: number;
  readonly totalBytes: number;
}

export function parseDeadLetters(buf: Buffer): ParsedDeadLetters {
  const letters: DeadLetter[] = [];
  let pos = 0;
  while (pos + HEADER_BYTES <= buf.length) {
    const dataLen = buf.readUInt32LE(pos + 4);
    const reasonLen = buf.readUInt32LE(pos + 12);
    const end = pos + HEADER_BYTES + reasonLen + dataLen;
    if (end > buf.length) break;
    if (crc32c(buf.subarray(pos + 4, end)) !== buf.readUInt32LE(pos)) break;
    const reasonStart = pos + HEADER_BYTES;
    letters.push({
      entryCount: buf.readUInt32LE(pos + 8),
      timeMs: buf.readDoubleLE(pos + 16),
      reason: buf.toString('utf8', reasonStart, reasonStart + reasonLen),
      data: Buffer.from(buf.subarray(reasonStart + reasonLen, end)),
    });
    pos = end;
  }
  return { letters, validBytes: pos, totalBytes: buf.length };
}

export async function readDeadLetterFile(dir: string): Promise<ParsedDeadLetters> {
  try {
    return parseDeadLetters(await readFile(join(dir, DEAD_LETTER_FILE)));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { letters: [], validBytes: 0, totalBytes: 0 };
    throw err;
  }
}

interface LogState {
  /** Serializes appends and rewrites of one directory's file within this process. */
  chain: Promise<unknown>;
  /** What we believe the file holds; re-read when its size says otherwise (another process rewrote it). */
  validBytes: number;
  entries: number;
  known: boolean;
}

const states = new Map<string, LogState>();

function stateOf(dir: string): LogState {
  const key = resolve(dir);
  let s = states.get(key);
  if (s === undefined) {
    s = { chain: Promise.resolve(), validBytes: 0, entries: 0, known: false };
    states.set(key, s);
  }
  return s;
}

function serialized<T>(dir: string, fn: (s: LogState) => Promise<T>): Promise<T> {
  const s = stateOf(dir);
  const run = s.chain.then(() => fn(s));
  s.chain = run.catch(() => undefined);
  return run;
}

function countEntries(letters: readonly DeadLetter[]): number {
  let n = 0;
  for (const l of letters) n += l.entryCount;
  return n;
}

/** Entries in the dead-letter file (reads it unless this process already knows). */
export function deadLetterEntries(dir: string): Promise<number> {
  return serialized(dir, async (s) => {
    if (!s.known) {
      const parsed = await readDeadLetterFile(dir);
      Object.assign(s, { validBytes: parsed.validBytes, entries: countEntries(parsed.letters), known: true });
    }
    return s.entries;
  });
}

/**
 * Appends records durably (write + fdatasync; fsync of the dir when the file is new) and returns the
 * entries now in the file. The file is opened per call (dead letters are rare) so that a rewrite by
 * `removeFirstDeadLetters` (a rename) never leaves us writing to an unlinked inode. A torn tail left by
 * a crash is cut first, so new records stay readable.
 */
export function appendDeadLetters(dir: string, records: readonly DeadLetter[]): Promise<number> {
  return serialized(dir, async (s) => {
    const path = join(dir, DEAD_LETTER_FILE);
    let created = false;
    let fh;
    try {
      fh = await open(path, 'r+');
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      fh = await open(path, 'w+');
      created = true;
    }
    try {
      const { size } = await fh.stat();
      if (!s.known || size !== s.validBytes) {
        const parsed = parseDeadLetters(await fh.readFile());
        s.validBytes = parsed.validBytes;
        s.entries = countEntries(parsed.letters);
        s.known = true;
      }
      if (size !== s.validBytes) await fh.truncate(s.validBytes);
      let pos = s.validBytes;
      for (const r of records) {
        const b = encodeDeadLetter(r);
        await fh.write(b, 0, b.length, pos);
        pos += b.length;
      }
      await fh.datasync();
      if (created) await fsyncDir(dir);
      s.validBytes = pos;
      s.entries += countEntries(records);
      return s.entries;
    } catch (err) {
      s.known = false;
      throw err;
    } finally {
      await fh.close();
    }
  });
}

/** Rewrites the file without its first `count` records (atomically: tmp + fsync + rename). */
export function removeFirstDeadLetters(dir: string, count: number): Promise<void> {
  return serialized(dir, async (s) => {
    s.known = false;
    const parsed = await readDeadLetterFile(dir);
    const keep = parsed.letters.slice(Math.max(0, count));
    if (keep.length === 0) {
      await rm(join(dir, DEAD_LETTER_FILE), { force: true });
      await fsyncDir(dir);
      Object.assign(s, { validBytes: 0, entries: 0, known: true });
      return;
    }
    const data = Buffer.concat(keep.map(encodeDeadLetter));
    await writeFileAtomic(join(dir, DEAD_LETTER_FILE), data);
    Object.assign(s, { validBytes: data.length, entries: countEntries(keep), known: true });
  });
}
