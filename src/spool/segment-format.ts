import { crc32c } from '@node-rs/crc32';

/**
 * The on-disk format of spool segments.
 *
 *   segment file = file header (16 bytes) + records
 *   file header  = magic "MCSP" | version u16 LE | reserved u16 | segment number u64 LE
 *   record       = header (16 bytes) + payload
 *   header       = crc32c u32 LE | payload length u32 LE | entry count u32 LE | marker u32 LE
 *
 * The CRC covers header bytes 4..16 and the payload, so a torn length, count or payload is caught.
 * The marker lets a header walk (without reading payloads) notice garbage cheaply.
 */
export const SEGMENT_MAGIC = 0x5053434d; // "MCSP" read as u32 LE
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 16;
export const RECORD_HEADER_BYTES = 16;
export const RECORD_MARKER = 0x3152434d; // "MCR1" read as u32 LE
/** u32 length field; also keeps one record well inside what one Buffer holds. */
export const MAX_RECORD_PAYLOAD_BYTES = 0xffff_fff0;

const SEGMENT_NAME = /^(\d{20})\.seg$/;

export function segmentFileName(segment: number): string {
  return `${String(segment).padStart(20, '0')}.seg`;
}

/** The segment number of a file name, or undefined when the name is not a segment's. */
export function parseSegmentFileName(name: string): number | undefined {
  const m = SEGMENT_NAME.exec(name);
  if (m === null) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function encodeSegmentHeader(segment: number): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  b.writeUInt32LE(SEGMENT_MAGIC, 0);
  b.writeUInt16LE(SEGMENT_VERSION, 4);
  b.writeBigUInt64LE(BigInt(segment), 8);
  return b;
}

/** Null when the header is valid for `segment`, else why not. */
export function checkSegmentHeader(b: Buffer, segment: number): string | null {
  if (b.length < SEGMENT_HEADER_BYTES) return `segment header is ${b.length} bytes, expected ${SEGMENT_HEADER_BYTES}`;
  if (b.readUInt32LE(0) !== SEGMENT_MAGIC) return 'bad segment magic';
  const version = b.readUInt16LE(4);
  if (version !== SEGMENT_VERSION) return `unsupported segment version ${version}`;
  const n = b.readBigUInt64LE(8);
  if (n !== BigInt(segment)) return `segment header names segment ${n}, file name says ${segment}`;
  return null;
}

/** The 16-byte header of a record carrying `payload`. */
export function encodeRecordHeader(payload: Buffer, entryCount: number): Buffer {
  const h = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  h.writeUInt32LE(payload.length, 4);
  h.writeUInt32LE(entryCount, 8);
  h.writeUInt32LE(RECORD_MARKER, 12);
  h.writeUInt32LE(recordCrc(h, payload), 0);
  return h;
}

export function recordCrc(header: Buffer, payload: Buffer): number {
  return crc32c(payload, crc32c(header.subarray(4, RECORD_HEADER_BYTES)));
}

export interface RecordHeader {
  readonly crc: number;
  readonly length: number;
  readonly entryCount: number;
}

/** Parses a record header; null when the marker is wrong (garbage, or zeros from a torn write). */
export function parseRecordHeader(h: Buffer): RecordHeader | null {
  if (h.length < RECORD_HEADER_BYTES || h.readUInt32LE(12) !== RECORD_MARKER) return null;
  return { crc: h.readUInt32LE(0), length: h.readUInt32LE(4), entryCount: h.readUInt32LE(8) };
}
