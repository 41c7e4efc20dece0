import type { FileHandle } from 'node:fs/promises';
import {
  RECORD_HEADER_BYTES,
  RECORD_MARKER,
  SEGMENT_HEADER_BYTES,
  checkSegmentHeader,
  parseRecordHeader,
  recordCrc,
} from './segment-format.js';

export interface ByteRange {
  readonly start: number;
  readonly end: number;
  readonly reason: string;
}

/** What a scan found in one segment file. */
export interface SegmentScan {
  /** End of the last valid record: where appending continues, or where a bad tail starts. */
  readonly validEnd: number;
  /** Start offsets of the valid records, ascending. */
  readonly offsets: number[];
  /** Entry counts of those records. */
  readonly entries: number[];
  /**
   * Damaged ranges followed by valid records (found again by marker and checksum): data in the middle
   * of the segment that readers must skip.
   */
  readonly corrupt: ByteRange[];
  /** A bad range at the end with no valid record after it (a torn tail after a crash, or damage). */
  readonly tail?: ByteRange;
  /** The segment header itself is missing or wrong. */
  readonly badHeader?: string;
}

const VERIFY_BLOCK = 1 << 20;
const WALK_BLOCK = 4096;
const MARKER_BYTES = Buffer.alloc(4);
MARKER_BYTES.writeUInt32LE(RECORD_MARKER, 0);

/** Reads [start, start+len) of a file through a block cache; null past `size`. */
class BlockReader {
  private block = Buffer.alloc(0);
  private blockStart = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
    private readonly blockBytes: number,
  ) {}

  async view(start: number, len: number): Promise<Buffer | null> {
    if (start + len > this.size) return null;
    if (start >= this.blockStart && start + len <= this.blockStart + this.block.length) {
      return this.block.subarray(start - this.blockStart, start - this.blockStart + len);
    }
    const want = Math.max(len, Math.min(this.blockBytes, this.size - start));
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const r = await this.fh.read(buf, got, want - got, start + got);
      if (r.bytesRead === 0) break;
      got += r.bytesRead;
    }
    if (got < len) return null;
    this.block = buf.subarray(0, got);
    this.blockStart = start;
    return this.block.subarray(0, len);
  }
}

/** Whether a whole, checksum-valid record starts at `pos`; its end if so. */
async function validRecordAt(r: BlockReader, pos: number): Promise<number | undefined> {
  const h = await r.view(pos, RECORD_HEADER_BYTES);
  if (h === null) return undefined;
  const rh = parseRecordHeader(h);
  if (rh === null) return undefined;
  const hdr = Buffer.from(h); // the payload read may replace the block
  const payload = await r.view(pos + RECORD_HEADER_BYTES, rh.length);
  if (payload === null || recordCrc(hdr, payload) !== rh.crc) return undefined;
  return pos + RECORD_HEADER_BYTES + rh.length;
}

/**
 * The start of the first checksum-valid record at or after `from` and before `size`, found by its
 * marker (bytes 12..16 of a record header). Used to resynchronise after damage, so that one bad
 * record does not cost the valid records behind it.
 */
export async function findNextRecord(fh: FileHandle, from: number, size: number): Promise<number | undefined> {
  const SEARCH = 1 << 20;
  const verifier = new BlockReader(fh, size, VERIFY_BLOCK);
  let pos = from;
  while (pos + RECORD_HEADER_BYTES <= size) {
    const len = Math.min(SEARCH, size - pos);
    const buf = Buffer.allocUnsafe(len);
    const { bytesRead } = await fh.read(buf, 0, len, pos);
    if (bytesRead < RECORD_HEADER_BYTES) return undefined;
    let i = buf.subarray(0, bytesRead).indexOf(MARKER_BYTES, 12);
    while (i !== -1) {
      const candidate = pos + i - 12;
      if (candidate >= from && (await validRecordAt(verifier, candidate)) !== undefined) return candidate;
      i = buf.subarray(0, bytesRead).indexOf(MARKER_BYTES, i + 1);
    }
    // Overlap so a header spanning the block boundary is not missed.
    pos += Math.max(1, bytesRead - RECORD_HEADER_BYTES);
  }
  return undefined;
}

/**
 * Walks every record of a segment. With `verify`, reads each payload and checks its CRC; without, checks
 * headers only (fast, for older segments that the reader verifies later anyway). A bad record is
 * resynchronised past when a valid record follows (a corrupt range); when none follows, the rest is
 * the `tail`.
 */
export async function scanSegment(fh: FileHandle, segment: number, size: number, verify: boolean): Promise<SegmentScan> {
  const offsets: number[] = [];
  const entries: number[] = [];
  const corrupt: ByteRange[] = [];
  const head = Buffer.alloc(SEGMENT_HEADER_BYTES);
  const { bytesRead } = await fh.read(head, 0, SEGMENT_HEADER_BYTES, 0);
  const badHeader = checkSegmentHeader(head.subarray(0, bytesRead), segment);
  if (badHeader !== null) {
    return { validEnd: 0, offsets, entries, corrupt, badHeader, tail: { start: 0, end: size, reason: badHeader } };
  }
  const r = new BlockReader(fh, size, verify ? VERIFY_BLOCK : WALK_BLOCK);
  let pos = SEGMENT_HEADER_BYTES;
  let validEnd = pos;
  while (pos < size) {
    let reason: string | undefined;
    const h = await r.view(pos, RECORD_HEADER_BYTES);
    const rh = h === null ? null : parseRecordHeader(h);
    let end = 0;
    if (h === null) reason = 'torn record header';
    else if (rh === null) reason = 'bad record marker';
    else {
      end = pos + RECORD_HEADER_BYTES + rh.length;
      if (end > size) reason = `record of ${rh.length} bytes runs past the end of the file`;
      else if (verify) {
        const hdr = Buffer.from(h);
        const payload = await r.view(pos + RECORD_HEADER_BYTES, rh.length);
        if (payload === null || recordCrc(hdr, payload) !== rh.crc) reason = 'record checksum mismatch';
      }
    }
    if (reason === undefined && rh !== null) {
      offsets.push(pos);
      entries.push(rh.entryCount);
      pos = end;
      validEnd = pos;
      continue;
    }
    const resume = await findNextRecord(fh, pos + 1, size);
    if (resume === undefined) return { validEnd, offsets, entries, corrupt, tail: { start: pos, end: size, reason: reason ?? 'bad record' } };
    corrupt.push({ start: pos, end: resume, reason: reason ?? 'bad record' });
    pos = resume;
  }
  return { validEnd, offsets, entries, corrupt };
}

/** Fills `buf` from `position`; false when the file ends first. */
export async function readExactly(fh: FileHandle, buf: Buffer, position: number): Promise<boolean> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) return false;
    got += bytesRead;
  }
  return true;
}

export type RecordRead =
  | { readonly ok: true; readonly payload: Buffer; readonly entryCount: number; readonly next: number }
  | { readonly ok: false; readonly problem: string };

/** Reads and verifies the record at `start`, which must end by `end` (the durable end or the file size). */
export async function readRecordAt(fh: FileHandle, start: number, end: number): Promise<RecordRead> {
  const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  const rh = start + RECORD_HEADER_BYTES <= end && (await readExactly(fh, header, start)) ? parseRecordHeader(header) : null;
  if (rh === null) return { ok: false, problem: 'bad record header' };
  if (start + RECORD_HEADER_BYTES + rh.length > end) return { ok: false, problem: `record of ${rh.length} bytes runs past the durable end` };
  const payload = Buffer.allocUnsafe(rh.length);
  if (!(await readExactly(fh, payload, start + RECORD_HEADER_BYTES))) return { ok: false, problem: 'short read' };
  if (recordCrc(header, payload) !== rh.crc) return { ok: false, problem: 'record checksum mismatch' };
  return { ok: true, payload, entryCount: rh.entryCount, next: start + RECORD_HEADER_BYTES + rh.length };
}
