import type { CheckpointRecord } from './checkpoint-store.js';
import { FileCursor } from './file-cursor.js';
import { EMPTY_FINGERPRINT, FINGERPRINT_BYTES, headMatches, verifyBefore } from './file-identity.js';

/**
 * Every file generation the collector knows: tailed now (active) or not (retired: rotated away and
 * finished, deleted, truncated, or restored from checkpoints and not found yet). Decides what a newly
 * found file is:
 *  - the same device+inode whose first bytes still match and whose bytes before the checkpoint are
 *    still there: the same content, resume at the checkpoint (rename rotation, restart);
 *  - same inode but the bytes are gone: truncated (while stopped) or a reused inode: a new generation;
 *  - another inode whose full fingerprint and bytes before a retired cursor's offset match: a copy
 *    (copytruncate): continue it from that offset under the old file id, so nothing is read twice or
 *    lost when the original was truncated before its end was read;
 *  - another inode with the full fingerprint of a file still tailed: a copy of live content, parked
 *    until the original is truncated (or forever);
 *  - another inode with the full fingerprint of a generation ended by truncation, but shorter than
 *    its read offset (and holding its checkpoint's bytes when long enough to tell): a copy taken
 *    before lines that were then read from the original (copytruncate racing with the writer):
 *    covered, everything in it was read already. Only after a truncation: a new file that merely
 *    starts like an old one (a long banner) must not be skipped;
 *  - otherwise: new.
 */
export interface Candidate {
  readonly fd: number;
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  /** First bytes of the file (up to FINGERPRINT_BYTES). */
  readonly head: Buffer;
}

export type Decision =
  | { readonly kind: 'resume'; readonly cursor: FileCursor; readonly copy: boolean }
  /** truncatedWhileAway: this inode had a checkpoint whose bytes are no longer there. */
  | { readonly kind: 'new'; readonly truncatedWhileAway: boolean }
  /** A copy of content already read (a prefix of a retired cursor's): tail it from its end. */
  | { readonly kind: 'covered' }
  | { readonly kind: 'parked' };

/** Most retired cursors remembered (settled ones beyond this are forgotten, oldest first). */
const MAX_RETIRED = 1024;
/** Settled retired cursors are forgotten after this long. */
const RETIRED_TTL_MS = 60 * 60 * 1000;

export class FileRegistry {
  private retired: FileCursor[] = [];
  private seq = 0;

  constructor(private readonly nowMs: () => number) {}

  get retiredCursors(): readonly FileCursor[] {
    return this.retired;
  }

  restore(records: readonly CheckpointRecord[]): void {
    // Not pruned here: until the files are found again, every record is a checkpoint still in use
    // (with more than MAX_RETIRED files, pruning would forget the oldest ones: they would start over
    // per COLLECTOR_START_AT, skipping or re-sending what was written while the collector was down).
    // The next retirement prunes what stayed unclaimed.
    const now = this.nowMs();
    for (const r of records) {
      const cursor = new FileCursor(r.fileId, r.path, r.dev, r.ino, { length: r.fpLength, crc: r.fpCrc }, r.offset, { hash: r.hash, length: r.hashLength });
      cursor.retired = true;
      cursor.retiredAtMs = now;
      cursor.gone = r.gone === true;
      this.retired.push(cursor);
    }
  }

  newCursor(c: Candidate, offset: number, hash: { hash: number; length: number }): FileCursor {
    const id = `${c.dev.toString(36)}.${c.ino.toString(36)}.${Math.floor(this.nowMs()).toString(36)}.${(this.seq++).toString(36)}`;
    return new FileCursor(id, c.path, c.dev, c.ino, EMPTY_FINGERPRINT, offset, hash);
  }

  retire(cursor: FileCursor): void {
    cursor.retired = true;
    cursor.retiredAtMs = this.nowMs();
    this.retired.push(cursor);
    this.prune();
  }

  private prune(): void {
    // Settled cursors retired long ago only cost checkpoint bytes: a copy or a renamed file that
    // still matters turns up within minutes, not hours.
    const cutoff = this.nowMs() - RETIRED_TTL_MS;
    this.retired = this.retired.filter((c) => !(c.settled && c.retiredAtMs < cutoff));
    let excess = this.retired.length - MAX_RETIRED;
    if (excess <= 0) return;
    this.retired = this.retired.filter((c) => {
      if (excess > 0 && c.settled) {
        excess--;
        return false;
      }
      return true;
    });
  }

  async decide(c: Candidate, active: Iterable<FileCursor>): Promise<Decision> {
    let truncatedWhileAway = false;
    // Same inode first: rotation by rename, restart.
    for (const cursor of this.retired) {
      if (cursor.dev !== c.dev || cursor.ino !== c.ino || cursor.gone) continue;
      if (headMatches(cursor.fingerprint, c.head) && (await this.holds(c, cursor))) return this.revive(cursor, c, false);
      // The bytes it had are gone: truncated (and perhaps regrown) or the inode was reused. Either way
      // the content is new; the old cursor stays retired in case a copy of it turns up.
      if (cursor.readOffset > 0) truncatedWhileAway = true;
    }
    if (c.head.length >= FINGERPRINT_BYTES) {
      let covered = false;
      for (const cursor of this.retired) {
        // A copy is another inode; the same inode was judged above (a gone one is a reused inode).
        if (cursor.dev === c.dev && cursor.ino === c.ino) continue;
        if (cursor.fingerprint.length < FINGERPRINT_BYTES || !headMatches(cursor.fingerprint, c.head)) continue;
        if (await this.holds(c, cursor)) return this.revive(cursor, c, true);
        // Copied, then the writer added lines that were read from the original before it was
        // truncated: the copy ends before the cursor's offset. Reading it from 0 would send it all again.
        if (cursor.truncated && c.size < cursor.readOffset && (await this.holdsCheckpoint(c, cursor))) covered = true;
      }
      for (const cursor of active) {
        if (cursor.fingerprint.length >= FINGERPRINT_BYTES && headMatches(cursor.fingerprint, c.head)) return { kind: 'parked' };
      }
      if (covered) return { kind: 'covered' };
    }
    return { kind: 'new', truncatedWhileAway };
  }

  /** Does the candidate hold the bytes before the cursor's checkpoint (true when too short to tell)? */
  private async holdsCheckpoint(c: Candidate, cursor: FileCursor): Promise<boolean> {
    if (cursor.ackedOffset === 0 || cursor.ackedOffset > c.size) return true;
    return verifyBefore(c.fd, cursor.ackedOffset, cursor.ackedHashLength, cursor.ackedHash);
  }

  /** Does the candidate hold the cursor's content up to its read offset? */
  private async holds(c: Candidate, cursor: FileCursor): Promise<boolean> {
    if (c.size < cursor.readOffset) return false;
    const h = cursor.readHash();
    return verifyBefore(c.fd, cursor.readOffset, h.length, h.hash);
  }

  private revive(cursor: FileCursor, c: Candidate, copy: boolean): Decision {
    this.retired = this.retired.filter((x) => x !== cursor);
    cursor.retired = false;
    cursor.dev = c.dev;
    cursor.ino = c.ino;
    cursor.path = c.path;
    return { kind: 'resume', cursor, copy };
  }

  static toRecord(c: FileCursor): CheckpointRecord {
    return {
      fileId: c.fileId,
      path: c.path,
      dev: c.dev,
      ino: c.ino,
      fpLength: c.fingerprint.length,
      fpCrc: c.fingerprint.crc,
      offset: c.ackedOffset,
      hash: c.ackedHash,
      hashLength: c.ackedHashLength,
      retired: c.retired,
      ...(c.gone ? { gone: true } : {}),
    };
  }
}
