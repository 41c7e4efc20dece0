import { read, readSync } from 'node:fs';
import { promisify } from 'node:util';
import { crc32c } from '@node-rs/crc32';

/**
 * File identity and the evidence that a file still holds what was read from it.
 *
 * Device + inode say "the same file object"; content says "the same bytes". Inodes are reused after
 * deletion, copies get new inodes, and a file can be truncated and rewritten in place with lines of
 * exactly the same lengths, so every decision also checks content, at three places:
 *  - the head: the first FINGERPRINT_BYTES bytes (kept in memory, crc32c in the checkpoint);
 *  - the window: the HASH_WINDOW bytes just before an offset (4 KiB: dozens of lines, so lines of one
 *    layout with other numbers, timestamps or text always differ somewhere in it);
 *  - the prefix: crc32c of everything from byte 0 to the offset (the first PREFIX_HASH_MAX_BYTES of it),
 *    kept as a rolling crc while reading (the tailer reads every byte anyway) and stored with each
 *    checkpoint. A resume, or a copy taken for the same content, must reproduce it byte for byte.
 * Only a rewrite confined to the middle of a file larger than PREFIX_HASH_MAX_BYTES, with the first
 * 64 MiB and the last 4 KiB before the checkpoint untouched, could pass unnoticed.
 */
export const FINGERPRINT_BYTES = 1024;
/** Bytes before an offset compared on every read and hashed with every checkpoint. */
export const HASH_WINDOW = 4096;
/** The prefix crc covers at most this many bytes (a resume re-reads at most this much per file). */
export const PREFIX_HASH_MAX_BYTES = 64 * 1024 * 1024;

export interface Fingerprint {
  /** Bytes covered: FINGERPRINT_BYTES, or fewer while the file is shorter (upgraded as it grows). */
  readonly length: number;
  /** crc32c of those bytes. */
  readonly crc: number;
}

/** crc32c of a file's bytes [0, length); length = min(offset, PREFIX_HASH_MAX_BYTES). */
export interface PrefixHash {
  readonly length: number;
  readonly crc: number;
}

/** What a checkpoint (or a chunk's end) records about the bytes before its offset. */
export interface OffsetEvidence {
  /** crc32c of the `hashLength` (up to HASH_WINDOW) bytes before the offset. */
  readonly hash: number;
  readonly hashLength: number;
  /** Unknown for checkpoints written before prefix hashes existed. */
  readonly prefix: PrefixHash | undefined;
}

export const EMPTY_FINGERPRINT: Fingerprint = Object.freeze({ length: 0, crc: 0 });
export const EMPTY_PREFIX: PrefixHash = Object.freeze({ length: 0, crc: 0 });
export const EMPTY_EVIDENCE: OffsetEvidence = Object.freeze({ hash: 0, hashLength: 0, prefix: EMPTY_PREFIX });

/** Reads up to `length` bytes at `position` (short only at end of file). */
export type ReadAt = (length: number, position: number) => Promise<Buffer>;

export const readAsync = promisify(read);

/** Reads up to `length` bytes at `position` (short only at end of file). */
export async function readAt(fd: number, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await readAsync(fd, buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

export function fdReader(fd: number): ReadAt {
  return (length, position) => readAt(fd, length, position);
}

/**
 * The first bytes of a file (up to FINGERPRINT_BYTES), synchronously: the opener runs on files found
 * a moment ago, and through the thread pool (behind reads and checkpoint fsyncs) this microsecond read
 * cost milliseconds under load, while files arriving at 100/s queued up behind it.
 */
export function readHeadSync(fd: number): Buffer {
  const buf = Buffer.allocUnsafe(FINGERPRINT_BYTES);
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

export async function readHead(fd: number): Promise<Buffer> {
  return readAt(fd, FINGERPRINT_BYTES, 0);
}

export function fingerprintOf(head: Buffer): Fingerprint {
  const length = Math.min(head.length, FINGERPRINT_BYTES);
  return { length, crc: crc32c(head.subarray(0, length)) };
}

/**
 * Does a file whose first bytes are `head` start like the fingerprinted content? False when the file
 * is now shorter than the fingerprint (it was truncated or replaced).
 */
export function headMatches(fp: Fingerprint, head: Buffer): boolean {
  if (head.length < fp.length) return false;
  return crc32c(head.subarray(0, fp.length)) === fp.crc;
}

/**
 * Extends a short fingerprint with bytes just read (`buf` holds the file from `bufOffset`), so a file
 * that was too short to fingerprint at discovery gets its full identity without being read twice.
 */
export function extendFingerprint(fp: Fingerprint, buf: Buffer, bufOffset: number, bufEnd: number): Fingerprint {
  if (fp.length >= FINGERPRINT_BYTES) return fp;
  const from = fp.length - bufOffset;
  if (from < 0 || from >= bufEnd) return fp;
  const to = Math.min(bufEnd, FINGERPRINT_BYTES - bufOffset);
  if (to <= from) return fp;
  return { length: bufOffset + to, crc: crc32c(buf.subarray(from, to), fp.crc) };
}

/**
 * Extends a prefix hash over `buf[from, to)`, which holds the file from `fileOffset`. Only a contiguous
 * extension counts (anything else leaves it as it was), and only up to PREFIX_HASH_MAX_BYTES.
 */
export function extendPrefix(p: PrefixHash | undefined, buf: Buffer, from: number, to: number, fileOffset: number): PrefixHash | undefined {
  if (p === undefined || p.length !== fileOffset || p.length >= PREFIX_HASH_MAX_BYTES || to <= from) return p;
  const n = Math.min(to - from, PREFIX_HASH_MAX_BYTES - p.length);
  return { length: p.length + n, crc: crc32c(buf.subarray(from, from + n), p.crc) };
}

/** crc32c of the file's first `length` bytes, read in 1 MiB pieces; undefined when it is shorter. */
export async function hashPrefix(read: ReadAt, length: number): Promise<number | undefined> {
  let crc = 0;
  for (let pos = 0; pos < length; ) {
    const piece = await read(Math.min(1024 * 1024, length - pos), pos);
    if (piece.length === 0) return undefined;
    crc = crc32c(piece, crc);
    pos += piece.length;
  }
  return crc;
}

/** crc32c of the (up to HASH_WINDOW) bytes before index `end` of `buf`. */
export function hashBefore(buf: Buffer, end: number): number {
  return crc32c(buf.subarray(Math.max(0, end - HASH_WINDOW), end));
}

/** Are the `length` bytes before `offset` in the file the ones whose crc32c is `hash`? */
export async function verifyBefore(read: ReadAt, offset: number, length: number, hash: number): Promise<boolean> {
  if (length === 0) return true;
  const bytes = await read(length, offset - length);
  return bytes.length === length && crc32c(bytes) === hash;
}

/**
 * Does the file hold, before `offset`, the bytes the evidence describes: the window just before it and
 * (when known) the whole prefix? The cheap window first: a prefix is read only when the window agrees.
 */
export async function holdsEvidence(read: ReadAt, size: number, offset: number, ev: OffsetEvidence): Promise<boolean> {
  if (size < offset) return false;
  if (!(await verifyBefore(read, offset, ev.hashLength, ev.hash))) return false;
  if (ev.prefix === undefined || ev.prefix.length === 0) return true;
  return (await hashPrefix(read, ev.prefix.length)) === ev.prefix.crc;
}

/** Is the prefix evidence complete: does it cover every byte before `offset`? */
export function coversWholePrefix(ev: OffsetEvidence, offset: number): boolean {
  return ev.prefix !== undefined && ev.prefix.length === offset;
}
