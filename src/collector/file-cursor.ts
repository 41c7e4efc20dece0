import { crc32c } from '@node-rs/crc32';
import { RunHead } from '../wire/entry-batch.js';
import type { Fingerprint, OffsetEvidence, PrefixHash } from './file-identity.js';
import { FINGERPRINT_BYTES, HASH_WINDOW, extendFingerprint, fingerprintOf } from './file-identity.js';

export interface AckedDelta {
  readonly lines: number;
  readonly bytes: number;
}

/** Where a generation's file is found now (after a restart, a rename, a copy). */
export interface FileLocation {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
}

/**
 * The part of a file one chunk carries for one cursor: the file offset just after its last byte, what
 * is known about the bytes before that offset, and the entries and line bytes in it. A chunk being
 * built extends its range as entries are added; the cursor applies acknowledged ranges in order.
 */
export class CursorRange {
  private end: number;
  private ev: OffsetEvidence;
  private lineCount = 0;
  private byteCount = 0;

  constructor(
    readonly cursor: FileCursor,
    endOffset: number,
    evidence: OffsetEvidence,
  ) {
    this.end = endOffset;
    this.ev = evidence;
  }

  /** File offset just after the last byte this chunk carries for the cursor. */
  get endOffset(): number {
    return this.end;
  }

  /** The bytes before endOffset: window hash and prefix crc. */
  get evidence(): OffsetEvidence {
    return this.ev;
  }

  get lines(): number {
    return this.lineCount;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** The chunk now carries the file up to `endOffset`, with `lines` more entries of `bytes` more line bytes. */
  extend(endOffset: number, evidence: OffsetEvidence, lines: number, bytes: number): void {
    if (endOffset < this.end) throw new RangeError(`a range only grows: ${endOffset} < ${this.end}`);
    this.end = endOffset;
    this.ev = evidence;
    this.lineCount += lines;
    this.byteCount += bytes;
  }
}

/** crc32c of no bytes. */
const EMPTY_CRC = crc32c(Buffer.alloc(0));

/**
 * A copy with a memory block of its own: `Buffer.from` of a small buffer takes a slice of Node's
 * shared 8 KiB pool, and one long-lived slice keeps the whole 8 KiB alive (a thousand 1 KiB heads held
 * ~290 such blocks, 2.3 MB).
 */
function ownedCopy(src: Buffer): Buffer {
  const out = Buffer.allocUnsafeSlow(src.length);
  src.copy(out);
  return out;
}

/**
 * One generation of one file's content, as read and as acknowledged. A file that is truncated gets a
 * new generation (a new file id: offsets restart at 0, and (collector, file id, offset) must stay a
 * unique entry identity). A cursor outlives its open file: once retired (rotated away and finished,
 * deleted, truncated) it keeps its checkpoint until every range it sent is acknowledged, and it can be
 * revived when the same content turns up again (a renamed file found by the glob, a copytruncate copy,
 * a restart).
 *
 * Its state changes only through methods that keep its invariants: the checkpoint (ackedOffset) is the
 * end of the contiguous acknowledged prefix of the ranges opened, so it never passes readOffset and
 * never moves back; readOffset only moves forward on one generation; the tail bytes, the prefix crc and
 * the read offset move together.
 */
export class FileCursor {
  readonly head: RunHead;
  private location: FileLocation;
  private fp: Fingerprint;
  private known: Buffer | undefined;
  private read: number;
  private ackedAt: number;
  private acked: OffsetEvidence;
  private prefix: PrefixHash | undefined;
  /**
   * crc32c of the (up to HASH_WINDOW) bytes just before readOffset, to detect truncation on every read
   * (each read starts that many bytes early and compares). Only the crc is kept, not the bytes: 4 KiB
   * per file was a fifth of what a collector tailing 1,000 files held (bench/README.md, "Many files,
   * ninth session"); a read holds the bytes again whenever the window moves.
   */
  private tailCrc = EMPTY_CRC;
  private tailLen = 0;
  /** When restored from a checkpoint, the tail bytes are unknown: only their hash is. */
  private restoredHash: { hash: number; length: number } | undefined;
  private seen: number;
  private retiredFlag = false;
  private retiredAt = 0;
  private goneFlag = false;
  private truncatedFlag = false;
  private readonly pending: CursorRange[] = [];
  private pendingHead = 0;
  /** Ranges acknowledged out of order, waiting for the ones before them. */
  private readonly ackedAhead = new Set<CursorRange>();
  /** Ranges applied to the checkpoint (an acknowledgement repeated changes nothing). */
  private readonly applied = new WeakSet<CursorRange>();

  constructor(
    readonly fileId: string,
    path: string,
    dev: number,
    ino: number,
    fingerprint: Fingerprint,
    offset: number,
    evidence: OffsetEvidence,
  ) {
    this.head = new RunHead(path, fileId);
    this.location = { path, dev, ino };
    this.fp = fingerprint;
    this.read = offset;
    this.ackedAt = offset;
    this.acked = evidence;
    this.prefix = evidence.prefix;
    this.seen = offset;
    if (offset > 0) this.restoredHash = { hash: evidence.hash, length: evidence.hashLength };
    if (fingerprint.length === 0) this.known = Buffer.alloc(0);
  }

  get path(): string {
    return this.location.path;
  }

  get dev(): number {
    return this.location.dev;
  }

  get ino(): number {
    return this.location.ino;
  }

  get fingerprint(): Fingerprint {
    return this.fp;
  }

  /** The fingerprinted first bytes themselves (unknown for a checkpoint not matched yet). */
  get headBytes(): Buffer | undefined {
    return this.known;
  }

  /** Next byte to cut lines from; everything before is in a chunk (sent or not). */
  get readOffset(): number {
    return this.read;
  }

  /** Contiguous acknowledged prefix: the checkpoint. */
  get ackedOffset(): number {
    return this.ackedAt;
  }

  /** What is known about the bytes before the checkpoint. */
  get ackedEvidence(): OffsetEvidence {
    return this.acked;
  }

  /** crc32c of the bytes before readOffset (the first PREFIX_HASH_MAX_BYTES), rolled while reading. */
  get readPrefix(): PrefixHash | undefined {
    return this.prefix;
  }

  /** How many bytes before readOffset are known (up to HASH_WINDOW); 0 for a restored checkpoint. */
  get tailLength(): number {
    return this.tailLen;
  }

  /** Highest end of file seen (reads and size checks): a file now shorter was truncated. */
  get seenSize(): number {
    return this.seen;
  }

  get retired(): boolean {
    return this.retiredFlag;
  }

  get retiredAtMs(): number {
    return this.retiredAt;
  }

  /**
   * The file was unlinked when it was finished: its inode was freed on close and may name a new file
   * now, even one starting with the same bytes. Its device+inode no longer identify this content.
   */
  get gone(): boolean {
    return this.goneFlag;
  }

  /** This generation ended because the file was truncated (copytruncate): a copy of it may turn up. */
  get truncated(): boolean {
    return this.truncatedFlag;
  }

  /** What is known about the bytes before readOffset. */
  readEvidence(): OffsetEvidence {
    const h = this.readHash();
    return { hash: h.hash, hashLength: h.length, prefix: this.prefix };
  }

  /** Do `buf[0, tailLength)` equal the known bytes just before readOffset (by their crc32c)? */
  tailMatches(buf: Buffer): boolean {
    const k = this.tailLen;
    return buf.length >= k && (k === 0 || crc32c(buf.subarray(0, k)) === this.tailCrc);
  }

  /** Sets the fingerprint from the file's first bytes (a new cursor). */
  setHead(head: Buffer): void {
    this.fp = fingerprintOf(head);
    this.known = ownedCopy(head.subarray(0, this.fp.length));
  }

  /** Takes the first bytes of the file (`head` holds them from offset 0) as known for the fingerprint. */
  learnHead(head: Buffer): void {
    if (this.known !== undefined && this.known.length >= this.fp.length) return;
    if (head.length < this.fp.length) return;
    this.known = ownedCopy(head.subarray(0, this.fp.length));
  }

  /** Extends the fingerprint and the known head with bytes just read (`buf` holds the file from `bufOffset`). */
  extendHead(buf: Buffer, bufOffset: number, bufEnd: number): void {
    if (this.fp.length >= FINGERPRINT_BYTES) return;
    const before = this.fp.length;
    this.fp = extendFingerprint(this.fp, buf, bufOffset, bufEnd);
    if (this.known !== undefined && this.known.length === before && this.fp.length > before) {
      this.known = ownedCopy(Buffer.concat([this.known, buf.subarray(before - bufOffset, this.fp.length - bufOffset)]));
    }
  }

  /** Hash of the bytes before readOffset, from the tail when known. */
  readHash(): { hash: number; length: number } {
    if (this.tailLen > 0 || this.restoredHash === undefined) return { hash: this.tailCrc, length: this.tailLen };
    return this.restoredHash;
  }

  /** Loads the bytes just before readOffset (`bytes` end at readOffset): a resumed cursor reads on with them. */
  loadTail(bytes: Buffer): void {
    this.setTail(bytes, bytes.length);
  }

  /** Learns the prefix crc of a cursor that has none (a checkpoint from before prefix hashes). */
  learnPrefix(prefix: PrefixHash): void {
    this.prefix ??= prefix;
  }

  /**
   * A new cursor that starts past 0 (COLLECTOR_START_AT=end, a covered copy): `bytes` end at its read
   * offset, `prefix` covers the bytes before it; both are the checkpoint's evidence too.
   */
  startAt(bytes: Buffer, prefix: PrefixHash | undefined): void {
    this.setTail(bytes, bytes.length);
    this.prefix = prefix;
    this.acked = this.readEvidence();
  }

  /**
   * Entries were cut from `view` (the file from `viewOffset`) up to index `consumed`: the read offset
   * moves there, with the bytes before it and the prefix crc over them.
   */
  advance(view: Buffer, viewOffset: number, consumed: number, prefix: PrefixHash | undefined): void {
    const to = viewOffset + consumed;
    if (to < this.read) throw new RangeError(`the read offset only moves forward: ${to} < ${this.read}`);
    this.prefix = prefix;
    this.setTail(view, consumed);
    this.read = to;
  }

  /** The file was seen this long; a file now shorter was truncated. */
  noteSize(size: number): void {
    if (size > this.seen) this.seen = size;
  }

  private setTail(src: Buffer, end: number): void {
    const start = Math.max(0, end - HASH_WINDOW);
    this.tailLen = end - start;
    this.tailCrc = crc32c(src.subarray(start, end));
    this.restoredHash = undefined;
  }

  /** No longer tailed (rotated away and finished, deleted, truncated, or restored and not found yet). */
  retire(nowMs: number): void {
    this.retiredFlag = true;
    this.retiredAt = nowMs;
  }

  /** Found again at `at` (its first bytes `head`): tailed from its read offset. */
  revive(at: FileLocation, head: Buffer): void {
    this.retiredFlag = false;
    this.location = { path: at.path, dev: at.dev, ino: at.ino };
    this.goneFlag = false;
    this.seen = this.read;
    this.learnHead(head);
  }

  /** Its file had no links left when it was closed (see `gone`). */
  markGone(): void {
    this.goneFlag = true;
  }

  /** Its file was truncated (see `truncated`). */
  markTruncated(): void {
    this.truncatedFlag = true;
  }

  /** A new range for a chunk being built; ranges are acknowledged in any order, applied in order. */
  openRange(): CursorRange {
    const range = new CursorRange(this, this.read, this.readEvidence());
    this.pending.push(range);
    return range;
  }

  get unackedRanges(): number {
    return this.pending.length - this.pendingHead;
  }

  /** Every byte read is acknowledged (nothing in flight for this cursor). */
  get settled(): boolean {
    return this.unackedRanges === 0;
  }

  /** Marks a range acknowledged and moves the checkpoint over the contiguous acknowledged prefix. */
  ack(range: CursorRange): AckedDelta {
    if (range.cursor !== this) throw new RangeError('a range of another cursor');
    if (this.applied.has(range)) return { lines: 0, bytes: 0 };
    this.ackedAhead.add(range);
    let lines = 0;
    let bytes = 0;
    while (this.pendingHead < this.pending.length) {
      const r = this.pending[this.pendingHead] as CursorRange;
      if (!this.ackedAhead.delete(r)) break;
      this.applied.add(r);
      this.ackedAt = r.endOffset;
      this.acked = r.evidence;
      lines += r.lines;
      bytes += r.bytes;
      this.pendingHead++;
    }
    if (this.pendingHead > 256 && this.pendingHead * 2 > this.pending.length) {
      this.pending.splice(0, this.pendingHead);
      this.pendingHead = 0;
    }
    return { lines, bytes };
  }
}
