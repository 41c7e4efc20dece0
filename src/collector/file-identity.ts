import { read } from 'node:fs';
import { promisify } from 'node:util';
import { crc32c } from '@node-rs/crc32';

/**
 * File identity: device + inode say "the same file object", a fingerprint of the first bytes says
 * "the same content". Inodes are reused after deletion and copies get new inodes, so neither alone is
 * enough: together they tell a rotated file (same inode, same fingerprint) from a reused inode (same
 * inode, other fingerprint) and a copy (copytruncate: other inode, same fingerprint).
 */
export const FINGERPRINT_BYTES = 1024;
/** How many bytes before an offset are hashed to verify, on resume, that they are still there. */
export const HASH_WINDOW = 64;

export interface Fingerprint {
  /** Bytes covered: FINGERPRINT_BYTES, or fewer while the file is shorter (upgraded as it grows). */
  readonly length: number;
  /** crc32c of those bytes. */
  readonly crc: number;
}

export const EMPTY_FINGERPRINT: Fingerprint = Object.freeze({ length: 0, crc: 0 });

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

/** The first bytes of a file (up to FINGERPRINT_BYTES), for fingerprinting and matching. */
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

/** crc32c of the (up to HASH_WINDOW) bytes before index `end` of `buf`. */
export function hashBefore(buf: Buffer, end: number): number {
  return crc32c(buf.subarray(Math.max(0, end - HASH_WINDOW), end));
}

/** Are the `length` bytes before `offset` in the file the ones whose crc32c is `hash`? */
export async function verifyBefore(fd: number, offset: number, length: number, hash: number): Promise<boolean> {
  if (length === 0) return true;
  const bytes = await readAt(fd, length, offset - length);
  return bytes.length === length && crc32c(bytes) === hash;
}
