import { crc32c } from '@node-rs/crc32';
import { RunHead } from '../wire/entry-batch.js';
import type { Fingerprint, OffsetEvidence, PrefixHash } from './file-identity.js';
import { FINGERPRINT_BYTES, HASH_WINDOW, extendFingerprint, fingerprintOf } from './file-identity.js';

/**
 * One generation of one file's content, as read and as acknowledged. A file that is truncated gets a
 * new generation (a new file id: offsets restart at 0, and (collector, file id, offset) must stay a
 * unique entry identity). A cursor outlives its open file: once retired (rotated away and finished,
 * deleted, truncated) it keeps its checkpoint until every range it sent is acknowledged, and it can be
 * revived when the same content turns up again (a renamed file found by the glob, a copytruncate copy,
 * a restart).
 */
export interface CursorRange {
  readonly cursor: FileCursor;
  /** File offset just after the last byte this chunk carries for the cursor. */
  endOffset: number;
  /** The bytes before endOffset: window hash and prefix crc. */
  evidence: OffsetEvidence;
  lines: number;
  bytes: number;
  acked: boolean;
}

export interface AckedDelta {
  readonly lines: number;
  readonly bytes: number;
}

export class FileCursor {
  readonly head: RunHead;
  /** Next byte to cut lines from; everything before is in a chunk (sent or not). */
  readOffset: number;
  /** Contiguous acknowledged prefix: the checkpoint. */
  ackedOffset: number;
  ackedHash: number;
  ackedHashLength: number;
  ackedPrefix: PrefixHash | undefined;
  /** crc32c of the bytes before readOffset (the first PREFIX_HASH_MAX_BYTES), rolled while reading. */
  readPrefix: PrefixHash | undefined;
  /** The fingerprinted first bytes themselves (unknown for a checkpoint not matched yet). */
  headBytes: Buffer | undefined;
  /** The (up to HASH_WINDOW) bytes just before readOffset, to detect truncation on every read. */
  readonly tail = Buffer.alloc(HASH_WINDOW);
  tailLength = 0;
  /** When restored from a checkpoint, the tail bytes are unknown: only their hash is. */
  restoredHash: { hash: number; length: number } | undefined;
  /** Highest end of file seen (reads and size checks): a file now shorter was truncated. */
  seenSize = 0;
  retired = false;
  retiredAtMs = 0;
  /**
   * The file was unlinked when it was finished: its inode was freed on close and may name a new file
   * now, even one starting with the same bytes. Its device+inode no longer identify this content.
   */
  gone = false;
  /** This generation ended because the file was truncated (copytruncate): a copy of it may turn up. */
  truncated = false;
  private readonly pending: CursorRange[] = [];
  private pendingHead = 0;

  constructor(
    readonly fileId: string,
    public path: string,
    public dev: number,
    public ino: number,
    public fingerprint: Fingerprint,
    offset: number,
    evidence: OffsetEvidence,
  ) {
    this.head = new RunHead(path, fileId);
    this.readOffset = offset;
    this.ackedOffset = offset;
    this.ackedHash = evidence.hash;
    this.ackedHashLength = evidence.hashLength;
    this.ackedPrefix = evidence.prefix;
    this.readPrefix = evidence.prefix;
    this.seenSize = offset;
    if (offset > 0) this.restoredHash = { hash: evidence.hash, length: evidence.hashLength };
    if (fingerprint.length === 0) this.headBytes = Buffer.alloc(0);
  }

  /** What is known about the bytes before readOffset. */
  readEvidence(): OffsetEvidence {
    const h = this.readHash();
    return { hash: h.hash, hashLength: h.length, prefix: this.readPrefix };
  }

  /** What is known about the bytes before the checkpoint. */
  get ackedEvidence(): OffsetEvidence {
    return { hash: this.ackedHash, hashLength: this.ackedHashLength, prefix: this.ackedPrefix };
  }

  /** Sets the fingerprint from the file's first bytes (a new cursor). */
  setHead(head: Buffer): void {
    this.fingerprint = fingerprintOf(head);
    this.headBytes = Buffer.from(head.subarray(0, this.fingerprint.length));
  }

  /** Takes the first bytes of the file (`head` holds them from offset 0) as known for the fingerprint. */
  learnHead(head: Buffer): void {
    if (this.headBytes !== undefined && this.headBytes.length >= this.fingerprint.length) return;
    if (head.length < this.fingerprint.length) return;
    this.headBytes = Buffer.from(head.subarray(0, this.fingerprint.length));
  }

  /** Extends the fingerprint and the known head with bytes just read (`buf` holds the file from `bufOffset`). */
  extendHead(buf: Buffer, bufOffset: number, bufEnd: number): void {
    if (this.fingerprint.length >= FINGERPRINT_BYTES) return;
    const before = this.fingerprint.length;
    this.fingerprint = extendFingerprint(this.fingerprint, buf, bufOffset, bufEnd);
    if (this.headBytes !== undefined && this.headBytes.length === before && this.fingerprint.length > before) {
      this.headBytes = Buffer.concat([this.headBytes, buf.subarray(before - bufOffset, this.fingerprint.length - bufOffset)]);
    }
  }

  /** Hash of the bytes before readOffset, from the tail when known. */
  readHash(): { hash: number; length: number } {
    if (this.tailLength > 0 || this.restoredHash === undefined) {
      return { hash: crc32c(this.tail.subarray(0, this.tailLength)), length: this.tailLength };
    }
    return this.restoredHash;
  }

  setTail(src: Buffer, end: number): void {
    const start = Math.max(0, end - HASH_WINDOW);
    this.tailLength = src.copy(this.tail, 0, start, end);
    this.restoredHash = undefined;
  }

  /** A new range for a chunk being built; ranges are acknowledged in any order, applied in order. */
  openRange(): CursorRange {
    const range: CursorRange = { cursor: this, endOffset: this.readOffset, evidence: this.readEvidence(), lines: 0, bytes: 0, acked: false };
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
    range.acked = true;
    let lines = 0;
    let bytes = 0;
    while (this.pendingHead < this.pending.length) {
      const r = this.pending[this.pendingHead] as CursorRange;
      if (!r.acked) break;
      this.ackedOffset = r.endOffset;
      this.ackedHash = r.evidence.hash;
      this.ackedHashLength = r.evidence.hashLength;
      this.ackedPrefix = r.evidence.prefix;
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
