import type { FileHandle } from 'node:fs/promises';
import {
  RECORD_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  checkSegmentHeader,
  parseRecordHeader,
  recordCrc,
} from './segment-format.js';

/** The records of one segment that a scan found valid, as an index for counting entries. */
export interface SegmentScan {
  /** End of the last valid record (where appending continues, or where a bad tail starts). */
  readonly validEnd: number;
  /** Start offsets of the valid records scanned, ascending. */
  readonly offsets: number[];
  /** Entry counts of those records. */
  readonly entries: number[];
  /** Why the scan stopped before the end of the file, with the byte range that was not accepted. */
  readonly problem?: { readonly reason: string; readonly start: number; readonly end: number };
  /** The segment header itself is missing or wrong. */
  readonly badHeader?: string;
}

const BLOCK = 1 << 20;

/**
 * Walks the records of a segment from `from` (a record boundary) to `size`. With `verify`, reads each
 * payload and checks its CRC; without, trusts payloads and checks headers only (fast, for older
 * segments that the reader verifies later anyway). Reads in blocks of 1 MiB so small records cost no
 * syscall each.
 */
export async function scanSegment(
  fh: FileHandle,
  segment: number,
  size: number,
  from: number,
  verify: boolean,
): Promise<SegmentScan> {
  const offsets: number[] = [];
  const entries: number[] = [];
  const head = Buffer.alloc(SEGMENT_HEADER_BYTES);
  const { bytesRead } = await fh.read(head, 0, SEGMENT_HEADER_BYTES, 0);
  const badHeader = checkSegmentHeader(head.subarray(0, bytesRead), segment);
  if (badHeader !== null) {
    return { validEnd: 0, offsets, entries, badHeader, problem: { reason: badHeader, start: 0, end: size } };
  }
  let pos = Math.max(from, SEGMENT_HEADER_BYTES);
  let block = Buffer.alloc(0);
  let blockStart = 0;
  // Returns bytes [start, start+len) if inside the file, reading a new block when needed.
  const view = async (start: number, len: number): Promise<Buffer | null> => {
    if (start + len > size) return null;
    if (start >= blockStart && start + len <= blockStart + block.length) {
      return block.subarray(start - blockStart, start - blockStart + len);
    }
    const want = Math.max(len, Math.min(BLOCK, size - start));
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const r = await fh.read(buf, got, want - got, start + got);
      if (r.bytesRead === 0) break;
      got += r.bytesRead;
    }
    if (got < len) return null;
    block = buf.subarray(0, got);
    blockStart = start;
    return block.subarray(0, len);
  };
  while (pos < size) {
    const h = await view(pos, RECORD_HEADER_BYTES);
    if (h === null) return { validEnd: pos, offsets, entries, problem: { reason: 'torn record header', start: pos, end: size } };
    const rh = parseRecordHeader(h);
    if (rh === null) return { validEnd: pos, offsets, entries, problem: { reason: 'bad record marker', start: pos, end: size } };
    const end = pos + RECORD_HEADER_BYTES + rh.length;
    if (end > size) {
      return { validEnd: pos, offsets, entries, problem: { reason: `record of ${rh.length} bytes runs past the end of the file`, start: pos, end: size } };
    }
    if (verify) {
      const hdr = Buffer.from(h); // `view` may replace the block when reading the payload
      const payload = await view(pos + RECORD_HEADER_BYTES, rh.length);
      if (payload === null || recordCrc(hdr, payload) !== rh.crc) {
        return { validEnd: pos, offsets, entries, problem: { reason: 'record checksum mismatch', start: pos, end: size } };
      }
    }
    offsets.push(pos);
    entries.push(rh.entryCount);
    pos = end;
  }
  return { validEnd: pos, offsets, entries };
}
