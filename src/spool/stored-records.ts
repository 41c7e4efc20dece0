import { open, readdir } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCode, McError } from '../errors.js';
import { isErrno } from './durable-fs.js';
import {
  RECORD_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  checkSegmentHeader,
  parseRecordHeader,
  parseSegmentFileName,
  recordCrc,
  segmentFileName,
} from './segment-format.js';
import { findNextRecord, readExactly } from './segment-scan.js';

/**
 * Read-only access to the records on disk, for `spool replay` / `spool export` and for rebuilding the
 * ingest's table of accepted offsets at start-up. Takes no lock, so it runs beside a live aggregator:
 * it lists the segment files once, reads each one up to the size it has when it is opened, and
 * verifies every record's checksum, so a record still being written (a torn tail of the active
 * segment) is never returned. A damaged range is skipped (resynchronising on the next valid record)
 * and reported; a segment deleted meanwhile (delivered, not retained) is reported and skipped.
 */
export interface StoredRecord {
  readonly segment: number;
  readonly offset: number;
  /** The EntryBatch bytes exactly as appended. */
  readonly data: Buffer;
  readonly entryCount: number;
  /** Bytes of the record on disk (header + payload). */
  readonly bytes: number;
}

export interface StoredSegment {
  readonly segment: number;
  readonly bytes: number;
}

export interface ReadStoredOptions {
  /** Records starting before this position are skipped (default: the oldest segment's start). */
  readonly from?: { readonly segment: number; readonly offset: number };
  /** A segment listed but gone when it was to be opened. */
  readonly onSegmentGone?: (segment: number) => void;
  /** A damaged byte range skipped. */
  readonly onCorrupt?: (segment: number, start: number, end: number, reason: string) => void;
  readonly signal?: AbortSignal;
}

/** The segment files of a spool directory, oldest first, with their sizes now. */
export async function listStoredSegments(dir: string): Promise<StoredSegment[]> {
  const abs = resolve(dir);
  let names: string[];
  try {
    names = await readdir(abs);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new McError(ErrorCode.Config, `no spool directory at ${abs}`);
    throw err;
  }
  const numbers = names
    .map(parseSegmentFileName)
    .filter((n): n is number => n !== undefined)
    .sort((a, b) => a - b);
  const out: StoredSegment[] = [];
  for (const n of numbers) {
    let fh: FileHandle;
    try {
      fh = await open(join(abs, segmentFileName(n)), 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) continue;
      throw err;
    }
    try {
      out.push({ segment: n, bytes: (await fh.stat()).size });
    } finally {
      await fh.close();
    }
  }
  return out;
}

/** Every checksum-valid record of `segments` (from listStoredSegments), in order. */
export async function* readStoredRecords(dir: string, segments: readonly StoredSegment[], options: ReadStoredOptions = {}): AsyncGenerator<StoredRecord> {
  const abs = resolve(dir);
  const from = options.from ?? { segment: 0, offset: 0 };
  for (const s of segments) {
    if (s.segment < from.segment) continue;
    options.signal?.throwIfAborted();
    let fh: FileHandle;
    try {
      fh = await open(join(abs, segmentFileName(s.segment)), 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) {
        options.onSegmentGone?.(s.segment);
        continue;
      }
      throw err;
    }
    try {
      const size = (await fh.stat()).size;
      const head = Buffer.alloc(SEGMENT_HEADER_BYTES);
      const bad = (await readExactly(fh, head, 0)) ? checkSegmentHeader(head, s.segment) : 'segment header is torn';
      if (bad !== null) {
        options.onCorrupt?.(s.segment, 0, size, bad);
        continue;
      }
      let pos = SEGMENT_HEADER_BYTES;
      const start = s.segment === from.segment ? Math.max(from.offset, SEGMENT_HEADER_BYTES) : SEGMENT_HEADER_BYTES;
      const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
      while (pos + RECORD_HEADER_BYTES <= size) {
        options.signal?.throwIfAborted();
        let problem: string | undefined;
        let payload: Buffer | undefined;
        const rh = (await readExactly(fh, header, pos)) ? parseRecordHeader(header) : null;
        if (rh === null) problem = 'bad record header';
        else if (pos + RECORD_HEADER_BYTES + rh.length > size) problem = 'record runs past the end of the file';
        else if (pos < start) {
          pos += RECORD_HEADER_BYTES + rh.length; // before the range: walk headers only
          continue;
        } else {
          payload = Buffer.allocUnsafe(rh.length);
          if (!(await readExactly(fh, payload, pos + RECORD_HEADER_BYTES))) problem = 'short read';
          else if (recordCrc(header, payload) !== rh.crc) problem = 'record checksum mismatch';
        }
        if (problem !== undefined || rh === null || payload === undefined) {
          const resume = await findNextRecord(fh, pos + 1, size);
          // No valid record after it: the end of what is written (in the active segment, an append
          // in progress) or a damaged tail; either way nothing more to read here.
          if (resume === undefined) {
            if (s !== segments[segments.length - 1]) options.onCorrupt?.(s.segment, pos, size, problem ?? 'bad record');
            break;
          }
          options.onCorrupt?.(s.segment, pos, resume, problem ?? 'bad record');
          pos = resume;
          continue;
        }
        const bytes = RECORD_HEADER_BYTES + rh.length;
        if (pos >= start) yield { segment: s.segment, offset: pos, data: payload, entryCount: rh.entryCount, bytes };
        pos += bytes;
      }
    } finally {
      await fh.close();
    }
  }
}
