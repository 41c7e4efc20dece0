import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CheckpointRecord } from './checkpoint-store.js';
import { FileCursor } from './file-cursor.js';
import { EMPTY_FINGERPRINT, FINGERPRINT_BYTES, HASH_WINDOW, headMatches, holdsEvidence, verifyBefore } from './file-identity.js';
import type { OffsetEvidence, ReadAt } from './file-identity.js';

/** A file just found, as the registry judges it. */
export interface Candidate {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  /** First bytes of the file (up to FINGERPRINT_BYTES). */
  readonly head: Buffer;
  readonly read: ReadAt;
}

/** A generation being tailed, with a way to read its file (to compare a would-be copy with it). */
export interface ActiveFile {
  readonly cursor: FileCursor;
  readonly read: ReadAt;
}

export type ResumeKind = 'same-file' | 'copy';

export type Decision =
  | { readonly kind: 'resume'; readonly cursor: FileCursor; readonly how: ResumeKind }
  /** truncated: this inode's previous generation, whose bytes are no longer there. */
  | { readonly kind: 'new'; readonly truncatedWhileAway: boolean; readonly truncated?: FileCursor }
  /** A copy of content already read (a prefix of a retired cursor's): tail it from its end. */
  | { readonly kind: 'covered' }
  | { readonly kind: 'parked' };

/** Where a path's file is now (device, inode, size), or undefined when nothing is there. */
export type StatPath = (path: string) => Promise<{ dev: number; ino: number; size: number } | undefined>;

const statPath: StatPath = (path) => stat(path).then((s) => ({ dev: s.dev, ino: s.ino, size: s.size }), () => undefined);

/** Is `path` named like a rotated copy of `live` (same directory, its name plus a suffix)? */
export function isRotatedName(path: string, live: string): boolean {
  return dirname(path) === dirname(live) && path.length > live.length && path.startsWith(live);
}

/** Most retired cursors remembered (settled ones beyond this are forgotten, oldest first). */
const MAX_RETIRED = 1024;
/** Settled retired cursors are forgotten after this long. */
const RETIRED_TTL_MS = 60 * 60 * 1000;

/**
 * Every file generation the collector knows: tailed now (active) or not (retired: rotated away and
 * finished, deleted, truncated, or restored from checkpoints and not found yet). Decides what a newly
 * found file is. "Holds a generation" means: it starts with the generation's fingerprinted head, and
 * its bytes before the generation's read offset match the window hash and the prefix crc (see
 * file-identity.ts), so a file rewritten with lines of the same lengths never passes for the old one.
 *  - the same device+inode that holds its generation: resume at the checkpoint (restart);
 *  - the same inode that does not: truncated while stopped, or a reused inode: a new generation (the
 *    old one is marked truncated, so its rotated copy can be matched);
 *  - another inode that holds a truncated generation: its copy (copytruncate): continue it from its
 *    offset under its file id; while the generation's own file is still at its path (not known to be
 *    truncated) the copy waits (parked); a generation that ended by rename or deletion has no copy: a
 *    file holding its bytes is a replacement or a copy made by hand, read as new;
 *  - another inode whose whole content so far starts like a file still tailed (a copy being written,
 *    however short it is yet, or empty and named like a rotated copy of it): parked, looked at again when it changes or the original is
 *    truncated; so a copy is never read under a new file id;
 *  - another inode starting like a truncated generation but shorter than its read offset: a copy taken
 *    before lines that were read from the original: covered, everything in it was read already;
 *  - otherwise: new.
 */
export class FileRegistry {
  private retired: FileCursor[] = [];
  private seq = 0;

  constructor(
    private readonly nowMs: () => number,
    private readonly statAt: StatPath = statPath,
  ) {}

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
      const prefix = r.prefixLength === undefined || r.prefixCrc === undefined ? undefined : { length: r.prefixLength, crc: r.prefixCrc };
      const cursor = new FileCursor(r.fileId, r.path, r.dev, r.ino, { length: r.fpLength, crc: r.fpCrc }, r.offset, { hash: r.hash, hashLength: r.hashLength, prefix });
      cursor.retire(now);
      if (r.gone === true) cursor.markGone();
      if (r.truncated === true) cursor.markTruncated();
      this.retired.push(cursor);
    }
  }

  newCursor(c: { readonly path: string; readonly dev: number; readonly ino: number }, offset: number, evidence: OffsetEvidence): FileCursor {
    const id = `${c.dev.toString(36)}.${c.ino.toString(36)}.${Math.floor(this.nowMs()).toString(36)}.${(this.seq++).toString(36)}`;
    return new FileCursor(id, c.path, c.dev, c.ino, EMPTY_FINGERPRINT, offset, evidence);
  }

  retire(cursor: FileCursor): void {
    cursor.retire(this.nowMs());
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

  async decide(c: Candidate, active: Iterable<ActiveFile>): Promise<Decision> {
    let truncated: FileCursor | undefined;
    // Same inode first: restart, a renamed file found again.
    for (const cursor of this.retired) {
      if (cursor.dev !== c.dev || cursor.ino !== c.ino || cursor.gone) continue;
      if (await this.holds(c, cursor)) return this.revive(cursor, c, 'same-file');
      // The bytes it had are gone: truncated (and perhaps regrown) or the inode was reused. Either way
      // the content is new; the old cursor stays retired in case a copy of it turns up.
      if (cursor.readOffset > 0) {
        cursor.markTruncated();
        truncated = cursor;
      }
    }
    let covered = false;
    let parked = false;
    for (const cursor of this.retired) {
      // A copy is another inode; the same inode was judged above (a gone one is a reused inode).
      if (cursor.dev === c.dev && cursor.ino === c.ino) continue;
      if (cursor.fingerprint.length === 0 || !this.startsWithHead(c, cursor)) continue;
      if (c.size >= cursor.readOffset && cursor.readOffset > 0) {
        if (!(await this.holds(c, cursor))) continue;
        if (cursor.truncated) return this.revive(cursor, c, 'copy');
        const original = await this.statAt(cursor.path);
        // Its own file is still at its path: this is a copy of content not known to be truncated
        // (a copy of live content, or a copytruncate while stopped whose original is not looked at
        // yet): finding the original settles it. Otherwise the generation ended by rename or
        // deletion, and a file holding its bytes under another inode is another file (a replacement
        // renamed over it, a copy made by hand): new, read from 0.
        if (!cursor.gone && original !== undefined && original.dev === cursor.dev && original.ino === cursor.ino) parked = true;
      } else if (cursor.truncated && c.size < cursor.readOffset && (cursor.ackedOffset > c.size || (await verifyBefore(c.read, cursor.ackedOffset, cursor.ackedEvidence.hashLength, cursor.ackedEvidence.hash)))) {
        // Copied, then the writer added lines that were read from the original before it was
        // truncated: the copy ends before the cursor's offset. Reading it from 0 would send it all again.
        covered = true;
      }
    }
    for (const a of active) {
      if (await this.startsLike(c, a)) return { kind: 'parked' };
    }
    if (parked) return { kind: 'parked' };
    if (covered) return { kind: 'covered' };
    // Shorter than a fingerprint and a prefix of a truncated generation's first bytes: covered too.
    if (c.size > 0 && c.size < FINGERPRINT_BYTES) {
      for (const cursor of this.retired) {
        const known = cursor.headBytes;
        if (cursor.truncated && known !== undefined && c.size <= known.length && c.size <= cursor.readOffset && known.subarray(0, c.size).equals(c.head)) return { kind: 'covered' };
      }
    }
    return truncated === undefined ? { kind: 'new', truncatedWhileAway: false } : { kind: 'new', truncatedWhileAway: true, truncated };
  }

  /**
   * Is the candidate, as far as it goes, a copy of the generation being tailed: starting with its
   * first bytes and ending with the bytes the file has at the same offset? An empty file is (a copy
   * about to be written: its first bytes will tell), and so is one starting like the generation when
   * the file being tailed no longer does (truncated, not noticed yet: its truncation claims the copy).
   */
  private async startsLike(c: Candidate, a: ActiveFile): Promise<boolean> {
    const cursor = a.cursor;
    if (cursor.dev === c.dev && cursor.ino === c.ino) return false;
    // Empty: a copy about to be written only if named like one (`app.log.1`, `app.log-20261130`);
    // any other empty file is read at once (parking it would wait for an event that may never come).
    if (c.size === 0) return isRotatedName(c.path, cursor.path);
    const known = cursor.headBytes ?? Buffer.alloc(0);
    const m = Math.min(known.length, c.head.length);
    if (m === 0 || !c.head.subarray(0, m).equals(known.subarray(0, m))) return false;
    const w = Math.min(HASH_WINDOW, c.size);
    const [mine, theirs] = await Promise.all([c.read(w, c.size - w), a.read(w, c.size - w)]);
    if (mine.length === w && mine.equals(theirs)) return true;
    // Read after the window: logrotate truncates right after its copy is written, so the original may
    // have been truncated a moment ago, while the copy's last write is being looked at.
    const live = await a.read(m, 0);
    return !live.equals(known.subarray(0, m));
  }

  /** Does the candidate start with the cursor's first bytes (as many of them as it has)? */
  private startsWithHead(c: Candidate, cursor: FileCursor): boolean {
    const known = cursor.headBytes;
    if (known === undefined) return headMatches(cursor.fingerprint, c.head);
    const n = Math.min(known.length, c.head.length);
    return n > 0 && c.head.subarray(0, n).equals(known.subarray(0, n));
  }

  /** Does the candidate hold the cursor's content up to its read offset (head, window, prefix)? */
  private async holds(c: Candidate, cursor: FileCursor): Promise<boolean> {
    if (c.size < cursor.readOffset) return false;
    const known = cursor.headBytes;
    if (known !== undefined) {
      // Only the bytes before the read offset: the head may have been read ahead of it (a partial line).
      const n = Math.min(known.length, cursor.readOffset);
      if (!c.head.subarray(0, n).equals(known.subarray(0, n))) return false;
    } else if (!headMatches(cursor.fingerprint, c.head)) return false;
    return holdsEvidence(c.read, c.size, cursor.readOffset, cursor.readEvidence());
  }

  private revive(cursor: FileCursor, c: Candidate, how: ResumeKind): Decision {
    this.retired = this.retired.filter((x) => x !== cursor);
    cursor.revive(c, c.head);
    return { kind: 'resume', cursor, how };
  }

  /** The retired generation that a copy found in its directory would continue, if still unclaimed. */
  isRetired(cursor: FileCursor): boolean {
    return this.retired.includes(cursor);
  }

  /** Does this file hold the retired generation up to its read offset? Then it continues it. */
  async claimCopy(c: Candidate, cursor: FileCursor): Promise<boolean> {
    if (!this.isRetired(cursor) || cursor.readOffset === 0 || !(await this.holds(c, cursor))) return false;
    this.revive(cursor, c, 'copy');
    return true;
  }

  static toRecord(c: FileCursor): CheckpointRecord {
    const acked = c.ackedEvidence;
    const prefix = acked.prefix;
    return {
      fileId: c.fileId,
      path: c.path,
      dev: c.dev,
      ino: c.ino,
      fpLength: c.fingerprint.length,
      fpCrc: c.fingerprint.crc,
      offset: c.ackedOffset,
      hash: acked.hash,
      hashLength: acked.hashLength,
      ...(prefix === undefined ? {} : { prefixLength: prefix.length, prefixCrc: prefix.crc }),
      retired: c.retired,
      ...(c.gone ? { gone: true } : {}),
      ...(c.truncated ? { truncated: true } : {}),
    };
  }
}
