import { open, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, McError, errorMessage } from '../errors.js';
import { fsyncDir, isErrno } from './durable-fs.js';
import type { FreeSpace } from './free-space.js';
import {
  MAX_RECORD_PAYLOAD_BYTES,
  RECORD_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  encodeRecordHeader,
  encodeSegmentHeader,
  segmentFileName,
} from './segment-format.js';
import { indexRecord, newSegment } from './segment-index.js';
import type { SegmentIndex } from './segment-index.js';
import type { Clock } from '../util/clock.js';
import type { RecordPosition, SpoolLog } from './spool-types.js';

interface PendingAppend {
  readonly header: Buffer;
  readonly data: Buffer;
  readonly entryCount: number;
  readonly size: number;
  readonly resolve: (p: RecordPosition) => void;
  readonly reject: (err: unknown) => void;
}

/** Writes all of `bufs` at `position`, looping over short writes. */
async function writeAll(fh: FileHandle, bufs: Buffer[], position: number): Promise<void> {
  let pos = position;
  let rest = bufs;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, pos);
    pos += bytesWritten;
    let skip = bytesWritten;
    let i = 0;
    while (i < rest.length && skip >= (rest[i] as Buffer).length) {
      skip -= (rest[i] as Buffer).length;
      i++;
    }
    rest = rest.slice(i);
    if (rest.length > 0 && skip > 0) rest[0] = (rest[0] as Buffer).subarray(skip);
    if (bytesWritten === 0 && rest.length > 0) throw new Error('writev wrote nothing');
  }
}

/** Creates segment `n` with its header, durably (file and directory entry). */
export async function createSegmentFile(dir: string, n: number): Promise<FileHandle> {
  // Numbers above the active segment hold nothing acknowledged: a leftover of a failed roll is replaced.
  const fh = await open(join(dir, segmentFileName(n)), 'w+');
  try {
    await fh.write(encodeSegmentHeader(n), 0, SEGMENT_HEADER_BYTES, 0);
    await fh.datasync();
    await fsyncDir(dir);
  } catch (err) {
    await fh.close();
    await rm(join(dir, segmentFileName(n)), { force: true });
    throw err;
  }
  return fh;
}

export interface GroupCommitOptions {
  readonly dir: string;
  readonly index: SegmentIndex;
  /** The index's active segment, open for writing. */
  readonly activeFh: FileHandle;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly freeSpace: FreeSpace | undefined;
  readonly log: SpoolLog;
  readonly clock: Clock;
  /** Bytes of retained (delivered, kept) segments that may be evicted to make room; 0 without retention. */
  readonly evictableBytes: () => number;
  /** Evicts retained segments, oldest first, until `bytes` are freed or none is left. Never rejects. */
  readonly evict: (bytes: number) => Promise<void>;
  /** Records became durable or the spool rolled: wake readers. */
  readonly onProgress: () => void;
  /** A segment was sealed (it may be fully delivered already). */
  readonly onSealed: () => void;
  /** Space is short (an append was refused, or the disk is full). */
  readonly onShortOfSpace: () => void;
  /** Runs in the flush loop, between group writes, when requested by requestReclaim(). */
  readonly reclaim: () => Promise<void>;
}

/**
 * The write side of the spool: admission against the bound and the volume's free space, then group
 * commit. While one writev + fdatasync is in flight, new appends queue and share the next one. A
 * failed write is undone (the active segment is cut back to what is durable), or, when even that
 * fails, every later append is refused. Rolls to a new segment past `segmentBytes`.
 */
export class GroupCommit {
  private activeFh: FileHandle;
  private reservedBytes = 0;
  private queue: PendingAppend[] = [];
  private flushing: Promise<void> | undefined;
  /** Set after a write error that could not be undone: the file's tail is unknown, appends are refused. */
  private failed: Error | undefined;
  /** The active segment takes no more appends: the next write rolls first (set while reclaiming it). */
  private mustRoll = false;
  private reclaimWanted = false;
  private records = 0;
  private entries = 0;
  private commits = 0;

  constructor(private readonly o: GroupCommitOptions) {
    this.activeFh = o.activeFh;
  }

  get appendedRecords(): number {
    return this.records;
  }

  get appendedEntries(): number {
    return this.entries;
  }

  get groupCommits(): number {
    return this.commits;
  }

  /** See Spool.append. */
  append(data: Buffer, entryCount: number): Promise<RecordPosition> {
    if (!Number.isSafeInteger(entryCount) || entryCount < 0 || entryCount > 0xffff_ffff) {
      return Promise.reject(new RangeError(`entryCount must be an integer in [0, 2^32), got ${entryCount}`));
    }
    const refused = this.refusal(data.length);
    if (refused !== undefined) {
      if (refused.code === ErrorCode.SpoolFull) this.o.onShortOfSpace();
      return Promise.reject(refused);
    }
    const size = RECORD_HEADER_BYTES + data.length;
    this.reservedBytes += size;
    return new Promise<RecordPosition>((resolvePosition, reject) => {
      this.queue.push({ header: encodeRecordHeader(data, entryCount), data, entryCount, size, resolve: resolvePosition, reject });
      this.startFlushing();
    });
  }

  /**
   * Why an append of `dataBytes` would be refused now (McError SpoolFull or SpoolCorrupt), or
   * undefined when it would be taken. Synchronous, so a caller can keep its own order across a refusal
   * (the ingest service: nothing of a stream is stored after a chunk of it that was refused).
   */
  refusal(dataBytes: number): McError | undefined {
    if (this.failed !== undefined) {
      return new McError(ErrorCode.SpoolCorrupt, `spool is unusable after a write error: ${this.failed.message}`, { cause: this.failed });
    }
    const size = RECORD_HEADER_BYTES + dataBytes;
    // Retained segments give way to undelivered data: they are evicted before the write (makeRoom).
    const evictable = this.o.evictableBytes();
    const used = this.o.index.diskBytes + this.reservedBytes - evictable;
    if (dataBytes > MAX_RECORD_PAYLOAD_BYTES || used + size + SEGMENT_HEADER_BYTES > this.o.maxBytes) {
      return new McError(ErrorCode.SpoolFull, `spool is full: ${used} of ${this.o.maxBytes} bytes used, record needs ${size}`);
    }
    const free = this.o.freeSpace;
    if (free !== undefined && !free.admits(this.reservedBytes + size + SEGMENT_HEADER_BYTES - evictable)) {
      return new McError(
        ErrorCode.SpoolFull,
        `spool volume is nearly full: ${free.availableBytes} bytes free, ${free.minFreeBytes} kept free ` +
          `(AGGREGATOR_SPOOL_MIN_FREE_BYTES), record needs ${size}`,
      );
    }
    return undefined;
  }

  /** Runs `reclaim` in the flush loop, between group writes. */
  requestReclaim(): void {
    this.reclaimWanted = true;
    this.startFlushing();
  }

  /** Resolves when nothing is queued or being written. */
  async idle(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
  }

  private startFlushing(): void {
    if (this.flushing === undefined) this.flushing = this.flushLoop();
  }

  /** Writes queued appends group by group until the queue is empty. Never rejects. */
  private async flushLoop(): Promise<void> {
    // Let appends made in the same tick join the first group.
    await Promise.resolve();
    while (this.queue.length > 0 || this.reclaimWanted) {
      if (this.reclaimWanted) {
        this.reclaimWanted = false;
        await this.o.reclaim();
        continue;
      }
      const group = this.queue;
      this.queue = [];
      await this.makeRoom(group);
      await this.writeGroup(group);
    }
    this.flushing = undefined;
  }

  /** Evicts retained segments when the group would not fit beside them (in the bound or the volume's reserve). */
  private async makeRoom(group: PendingAppend[]): Promise<void> {
    if (this.o.evictableBytes() === 0) return;
    const bytes = group.reduce((n, item) => n + item.size, SEGMENT_HEADER_BYTES);
    let need = this.o.index.diskBytes + bytes - this.o.maxBytes;
    const free = this.o.freeSpace;
    if (free !== undefined) need = Math.max(need, free.minFreeBytes + bytes - free.availableBytes);
    if (need > 0) await this.o.evict(need);
  }

  private async writeGroup(group: PendingAppend[]): Promise<void> {
    const index = this.o.index;
    // Items whose bytes are written to the active file but not yet synced.
    let unsynced: Array<{ item: PendingAppend; offset: number }> = [];
    let bufs: Buffer[] = [];
    let writeStart = index.active.size;
    let next = 0;
    const settle = (err?: unknown): void => {
      // Everything in `group` from `next` on, plus `unsynced`, fails with `err`.
      for (const u of unsynced) {
        this.reservedBytes -= u.item.size;
        u.item.reject(err);
      }
      for (let i = next; i < group.length; i++) {
        const item = group[i] as PendingAppend;
        this.reservedBytes -= item.size;
        item.reject(err);
      }
    };
    const syncActive = async (): Promise<void> => {
      if (bufs.length > 0) {
        await writeAll(this.activeFh, bufs, writeStart);
        bufs = [];
      }
      await this.activeFh.datasync();
      this.commits++;
      const seg = index.active;
      seg.durableEnd = seg.size;
      for (const u of unsynced) {
        indexRecord(seg, u.offset, u.item.entryCount);
        this.reservedBytes -= u.item.size;
        this.records++;
        this.entries += u.item.entryCount;
        u.item.resolve({ segment: seg.number, offset: u.offset });
      }
      unsynced = [];
      this.o.onProgress();
    };
    try {
      for (; next < group.length; next++) {
        const item = group[next] as PendingAppend;
        const seg = index.active;
        if (this.mustRoll || (seg.size > SEGMENT_HEADER_BYTES && seg.size + item.size > this.o.segmentBytes)) {
          if (unsynced.length > 0) await syncActive();
          await this.roll();
          writeStart = index.active.size;
        }
        unsynced.push({ item, offset: index.active.size });
        bufs.push(item.header, item.data);
        index.grow(item.size);
        this.o.freeSpace?.noteWritten(item.size);
      }
      next = group.length;
      if (unsynced.length > 0) await syncActive();
    } catch (err) {
      // A full disk is the same condition as a full spool for the client: refuse, retry later.
      const diskFull = isErrno(err, 'ENOSPC') || isErrno(err, 'EDQUOT');
      const error = new McError(diskFull ? ErrorCode.SpoolFull : ErrorCode.SpoolCorrupt, `spool write failed: ${errorMessage(err)}`, {
        cause: err,
      });
      this.o.log.error({ dir: this.o.dir, segment: index.active.number, err: errorMessage(err) }, 'spool: append failed');
      settle(error);
      // The appends queued behind this group fail too, at once: none of them may land before a
      // refused record that comes before it in its stream (that one is resent, and would follow it).
      const behind = this.queue;
      this.queue = [];
      for (const item of behind) {
        this.reservedBytes -= item.size;
        item.reject(error);
      }
      await this.undoUnsynced();
      if (diskFull) {
        await this.o.freeSpace?.refresh();
        this.o.onShortOfSpace();
      }
    }
  }

  /** After a failed write: cut the active segment back to what is durable, so the tail stays parseable. */
  private async undoUnsynced(): Promise<void> {
    const seg = this.o.index.active;
    if (seg.size === seg.durableEnd) return;
    try {
      await this.activeFh.truncate(seg.durableEnd);
      this.o.index.cut(seg.durableEnd);
    } catch (err) {
      this.failed = err instanceof Error ? err : new Error(String(err));
      this.o.log.error({ dir: this.o.dir, segment: seg.number, err: errorMessage(err) }, 'spool: cannot undo a failed write; refusing appends');
    }
  }

  /** Seals the active segment (already synced) and starts the next one. */
  async roll(): Promise<void> {
    const n = this.o.index.active.number + 1;
    const fh = await createSegmentFile(this.o.dir, n);
    this.o.freeSpace?.noteWritten(SEGMENT_HEADER_BYTES);
    const oldFh = this.activeFh;
    this.mustRoll = false;
    this.o.index.roll(newSegment(n, SEGMENT_HEADER_BYTES), this.o.clock.now());
    this.activeFh = fh;
    await oldFh.close();
    this.o.onProgress();
    this.o.onSealed();
  }

  /** The active segment takes no more appends: the next write rolls first. */
  retireActive(): void {
    this.mustRoll = true;
  }

  /** Truncates the (fully delivered) active segment to its header and fsyncs it. */
  async truncateActive(): Promise<void> {
    await this.activeFh.truncate(SEGMENT_HEADER_BYTES);
    await this.activeFh.datasync();
    this.o.index.cut(SEGMENT_HEADER_BYTES);
  }

  /** Closes the active segment's file (after idle()). */
  close(): Promise<void> {
    return this.activeFh.close();
  }
}
