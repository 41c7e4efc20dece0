import { mkdir, open, readdir, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, ErrorCode, McError, errorMessage } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import { systemClock } from '../util/clock.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { scanEntryBatch } from '../wire/entry-batch.js';
import {
  appendDeadLetters,
  deadLetterEntries,
  readDeadLetterFile,
  removeFirstDeadLetters,
} from './dead-letters.js';
import type { DeadLetter } from './dead-letters.js';
import { comparePositions, readDelivered, writeDelivered } from './delivered-file.js';
import { fsyncDir, isErrno } from './durable-fs.js';
import {
  MAX_RECORD_PAYLOAD_BYTES,
  RECORD_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  encodeRecordHeader,
  encodeSegmentHeader,
  parseRecordHeader,
  parseSegmentFileName,
  recordCrc,
  segmentFileName,
} from './segment-format.js';
import { findNextRecord, scanSegment } from './segment-scan.js';
import { FreeSpace, defaultMinFreeBytes, effectiveSegmentBytes, statVolume } from './free-space.js';
import type { StatVolume, VolumeStats } from './free-space.js';
import { SpoolLock } from './spool-lock.js';
import { reclaimActive } from './reclaim-active.js';
import type { ActiveSegmentOps } from './reclaim-active.js';

export type { DeadLetter } from './dead-letters.js';

export interface SpoolOptions {
  readonly dir: string;
  /** AGGREGATOR_SPOOL_MAX_BYTES: bound on the bytes of segment files on disk. */
  readonly maxBytes: number;
  /**
   * Roll to a new segment past this (default 64 MiB; tests use small ones). Capped at a quarter of
   * `maxBytes` and a quarter of the volume, so that a full spool consists of several segments and
   * deleting delivered ones frees space (see also reclaimActive: a fully delivered active segment is
   * released too when space runs short).
   */
  readonly segmentBytes?: number;
  /**
   * AGGREGATOR_SPOOL_MIN_FREE_BYTES: appends are refused (MC_ERR_SPOOL_FULL) while they would leave
   * less than this free on the spool's volume. Default: 5% of the volume, at most 256 MiB.
   */
  readonly minFreeBytes?: number;
  /** How the volume's size and free space are read (statfs; tests inject their own). */
  readonly statVolume?: StatVolume;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

export interface RecordPosition {
  readonly segment: number;
  readonly offset: number;
}

/** Everything before `offset` in `segment`, plus the first `entry` entries of the record at it, is delivered. */
export interface DeliveredPosition extends RecordPosition {
  readonly entry: number;
}

export interface SpoolRecord {
  /** Where this record starts. */
  readonly position: RecordPosition;
  /** Where the following record starts (possibly the end of a segment: readers move on by themselves). */
  readonly next: RecordPosition;
  /** The EntryBatch bytes exactly as appended. */
  readonly data: Buffer;
  readonly entryCount: number;
  /** Entries of this record already delivered (non-zero only for the first record after a restart). */
  readonly skipEntries: number;
}

export interface SpoolStats {
  readonly dir: string;
  readonly segments: number;
  readonly bytes: number;
  readonly maxBytes: number;
  readonly appendPosition: RecordPosition;
  readonly delivered: DeliveredPosition;
  /** Since open. */
  readonly appendedRecords: number;
  /** Since open. */
  readonly appendedEntries: number;
  /** Appended but not delivered (best effort count). */
  readonly pendingEntries: number;
  /** Entries in the dead-letter file. */
  readonly deadLetters: number;
  /** Corrupt byte ranges found in the middle of segments (logged with their range, skipped by readers). */
  readonly corruptRanges: number;
  /** Group commits (one writev + one fdatasync of the active segment each) since open. */
  readonly groupCommits: number;
}

export interface SpoolReader {
  /**
   * Resolves with the next durable record, waiting for appends if there is none yet. Rejects with the
   * signal's reason when aborted, and with McError(SpoolClosed) when the spool closes.
   */
  next(signal?: AbortSignal): Promise<SpoolRecord>;
}

/** The logging the spool does; a pino Logger fits. */
interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const NO_LOG: Log = { info: () => undefined, warn: () => undefined, error: () => undefined };

const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
const MIN_SEGMENT_BYTES = 4096;
const PERSIST_INTERVAL_MS = 200;

interface SegmentState {
  readonly number: number;
  /** Bytes written to the file. */
  size: number;
  /** Bytes known to be on stable storage: readers never read past this. */
  durableEnd: number;
  /** No more appends go here. Every segment but the last is sealed. */
  sealed: boolean;
  /** Damaged byte ranges, ascending: readers jump from `start` to `end` (logged and counted when found). */
  readonly badRanges: Array<{ start: number; end: number }>;
  /** Start offsets of the indexed records, and the entries up to and including each (for pendingEntries). */
  readonly offsets: number[];
  readonly cumEntries: number[];
}

interface PendingAppend {
  readonly header: Buffer;
  readonly data: Buffer;
  readonly entryCount: number;
  readonly size: number;
  readonly resolve: (p: RecordPosition) => void;
  readonly reject: (err: unknown) => void;
}

function newSegment(number: number, size: number): SegmentState {
  return { number, size, durableEnd: size, sealed: false, badRanges: [], offsets: [], cumEntries: [] };
}

function indexRecord(seg: SegmentState, offset: number, entries: number): void {
  const before = seg.cumEntries.length === 0 ? 0 : (seg.cumEntries[seg.cumEntries.length - 1] as number);
  seg.offsets.push(offset);
  seg.cumEntries.push(before + entries);
}

/** Entries of `seg` in records that start before `offset`. */
function entriesBefore(seg: SegmentState, offset: number): number {
  let lo = 0;
  let hi = seg.offsets.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((seg.offsets[mid] as number) < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo === 0 ? 0 : (seg.cumEntries[lo - 1] as number);
}

function totalEntries(seg: SegmentState): number {
  return seg.cumEntries.length === 0 ? 0 : (seg.cumEntries[seg.cumEntries.length - 1] as number);
}

/** Entries of an EntryBatch; 0 for bytes that are not one (an undecodable record is dead-lettered whole). */
function countEntries(data: Buffer): number {
  try {
    return scanEntryBatch(data, { maxLineBytes: Number.MAX_SAFE_INTEGER }).entryCount;
  } catch {
    return 0;
  }
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

/**
 * The aggregator's durable spool: an append-only, segmented, checksummed log on disk (format in
 * segment-format.ts). Appends are acknowledged only once durable and are group-committed: while one
 * write+fdatasync is in flight, new appends queue and then share the next writev and fdatasync. One
 * reader (the batcher) reads durable records in order from the delivered position; delivery moves the
 * delivered position and frees fully delivered segments.
 */
export class Spool {
  private readonly clock: Clock;
  private readonly log: Log;
  private readonly segmentBytes: number;
  /** Live segments by number, ascending; the last one is the active (appended) one. */
  private readonly segments = new Map<number, SegmentState>();
  private active: SegmentState;
  private activeFh: FileHandle;
  private diskBytes = 0;
  private reservedBytes = 0;
  private queue: PendingAppend[] = [];
  private flushing: Promise<void> | undefined;
  /** Set after a write error that could not be undone: the file's tail is unknown, appends are refused. */
  private failed: Error | undefined;
  private delivered: DeliveredPosition;
  private persistedDelivered: DeliveredPosition;
  private persistTimer: TimerHandle | undefined;
  private persisting: Promise<void> = Promise.resolve();
  private housekeeping: Promise<void> = Promise.resolve();
  private readonly waiters = new Set<() => void>();
  private appendedRecords = 0;
  private groupCommits = 0;
  private appendedEntries = 0;
  private deadLetterCount: number;
  private corruptRanges: number;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Free-space admission; undefined when the volume cannot be inspected (statfs failed at open). */
  private readonly freeSpace: FreeSpace | undefined;
  /** The active segment takes no more appends: the next write rolls first (set while reclaiming it). */
  private mustRoll = false;
  private reclaimWanted = false;
  private currentReader: Reader | undefined;
  private readonly deadLetterWrites = new Set<Promise<unknown>>();

  private constructor(
    readonly dir: string,
    private readonly maxBytes: number,
    private readonly lock: SpoolLock,
    init: {
      segments: SegmentState[];
      activeFh: FileHandle;
      delivered: DeliveredPosition;
      deadLetters: number;
      corruptRanges: number;
      segmentBytes: number;
      freeSpace: FreeSpace | undefined;
      clock: Clock;
      log: Log;
    },
  ) {
    for (const s of init.segments) {
      this.segments.set(s.number, s);
      this.diskBytes += s.size;
    }
    this.active = init.segments[init.segments.length - 1] as SegmentState;
    this.activeFh = init.activeFh;
    this.delivered = init.delivered;
    this.persistedDelivered = init.delivered;
    this.deadLetterCount = init.deadLetters;
    this.corruptRanges = init.corruptRanges;
    this.segmentBytes = init.segmentBytes;
    this.freeSpace = init.freeSpace;
    this.clock = init.clock;
    this.log = init.log;
  }

  /**
   * Opens (creating if needed) the spool in `options.dir`: takes the directory's lock (McError
   * SpoolLocked if another live process, or this one, holds it; a stale lock is taken over), deletes
   * segments already delivered, verifies the last segments by checksum and truncates a torn tail
   * (logged), and indexes the undelivered records.
   */
  static async open(options: SpoolOptions): Promise<Spool> {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes <= 0) {
      throw new McError(ErrorCode.Config, `spool maxBytes must be a positive integer, got ${options.maxBytes}`);
    }
    const dir = resolve(options.dir);
    await mkdir(dir, { recursive: true });
    const lock = await SpoolLock.acquire(dir);
    try {
      return await Spool.recover(dir, options, lock);
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  private static async recover(dir: string, options: SpoolOptions, lock: SpoolLock): Promise<Spool> {
    const log: Log = options.logger ?? NO_LOG;
    const clock = options.clock ?? systemClock;
    const volume = await Spool.inspectVolume(dir, options.statVolume ?? statVolume, log);
    const configuredSegmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    const segmentBytes = effectiveSegmentBytes(configuredSegmentBytes, options.maxBytes, volume?.totalBytes, MIN_SEGMENT_BYTES);
    let freeSpace: FreeSpace | undefined;
    if (volume !== undefined) {
      const minFreeBytes = options.minFreeBytes ?? defaultMinFreeBytes(volume.totalBytes);
      if (minFreeBytes >= volume.totalBytes) {
        throw new ConfigError([
          `AGGREGATOR_SPOOL_MIN_FREE_BYTES: keeping ${minFreeBytes} bytes free leaves no room on the spool's volume of ${volume.totalBytes} bytes (${dir})`,
        ]);
      }
      freeSpace = new FreeSpace(dir, minFreeBytes, volume, options.statVolume ?? statVolume, clock);
      if (segmentBytes < configuredSegmentBytes && segmentBytes === Math.max(MIN_SEGMENT_BYTES, Math.floor(volume.totalBytes / 4))) {
        log.warn(
          { dir, volumeBytes: volume.totalBytes, configuredSegmentBytes, segmentBytes },
          'spool: the volume is small for the configured segment size; using segments of a quarter of the volume',
        );
      }
    }
    const names = await readdir(dir);
    for (const n of names) if (n.endsWith('.tmp')) await rm(join(dir, n), { force: true });
    const numbers = names
      .map(parseSegmentFileName)
      .filter((n): n is number => n !== undefined)
      .sort((a, b) => a - b);
    const read = await readDelivered(dir);
    if (read.problem !== undefined) log.error({ dir }, `spool: ${read.problem}; delivering again from the oldest segment`);
    let delivered: DeliveredPosition = read.position;

    // Segments before the delivered one are fully delivered: a crash came between persisting the
    // position and deleting them.
    const live: number[] = [];
    for (const n of numbers) {
      if (n < delivered.segment) await rm(join(dir, segmentFileName(n)), { force: true });
      else live.push(n);
    }

    const segments: SegmentState[] = [];
    let corruptRanges = 0;
    for (let i = 0; i < live.length; i++) {
      const n = live[i] as number;
      const path = join(dir, segmentFileName(n));
      const isLast = i === live.length - 1;
      // A torn tail can only be in the segments written last: verify those by checksum. Older ones are
      // walked by header and verified by the reader when it reads them.
      const verify = i >= live.length - 2;
      const fh = await open(path, 'r');
      let scan;
      let size;
      try {
        size = (await fh.stat()).size;
        scan = await scanSegment(fh, n, size, verify);
      } finally {
        await fh.close();
      }
      const seg = newSegment(n, size);
      seg.sealed = !isLast;
      for (let k = 0; k < scan.offsets.length; k++) indexRecord(seg, scan.offsets[k] as number, scan.entries[k] as number);
      for (const c of scan.corrupt) {
        corruptRanges++;
        seg.badRanges.push({ start: c.start, end: c.end });
        log.error(
          { dir, segment: n, file: path, start: c.start, end: c.end, reason: c.reason },
          'spool: CORRUPT byte range in the middle of a segment; readers skip it',
        );
      }
      if (scan.tail !== undefined) {
        const range = { dir, segment: n, file: path, start: scan.tail.start, end: scan.tail.end, reason: scan.tail.reason };
        if (isLast) {
          // The tail of the last segment: a crash during an append that was never acknowledged.
          log.warn(range, 'spool: truncating a torn tail of the last segment');
          const w = await open(path, 'r+');
          try {
            if (scan.badHeader !== undefined) {
              await w.truncate(0);
              await w.write(encodeSegmentHeader(n), 0, SEGMENT_HEADER_BYTES, 0);
              seg.size = SEGMENT_HEADER_BYTES;
            } else {
              await w.truncate(scan.validEnd);
              seg.size = scan.validEnd;
            }
            await w.datasync();
          } finally {
            await w.close();
          }
          seg.durableEnd = seg.size;
        } else {
          corruptRanges++;
          seg.badRanges.push({ start: scan.tail.start, end: scan.tail.end });
          log.error(range, 'spool: CORRUPT end of an older segment (no valid record after it); readers skip it');
        }
      }
      if (n === delivered.segment && delivered.offset > SEGMENT_HEADER_BYTES && delivered.offset < seg.size && !seg.offsets.includes(delivered.offset)) {
        // Not a record boundary (a damaged position file?): go back to the record containing it.
        const before = seg.offsets.filter((o) => o < delivered.offset);
        const back = before.length === 0 ? SEGMENT_HEADER_BYTES : (before[before.length - 1] as number);
        log.warn({ dir, delivered, resumeAt: back }, 'spool: delivered position is not a record boundary; delivering again from the record before it');
        delivered = { segment: n, offset: back, entry: 0 };
      }
      segments.push(seg);
    }

    // Segment numbers only grow, so a delivered position never points into a newer segment by mistake.
    const lastNumber = Math.max(segments.length === 0 ? 0 : (segments[segments.length - 1] as SegmentState).number, delivered.segment);
    let activeFh: FileHandle;
    const last = segments[segments.length - 1];
    if (last === undefined || last.number < delivered.segment) {
      const n = lastNumber + 1;
      activeFh = await Spool.createSegment(dir, n);
      segments.push(newSegment(n, SEGMENT_HEADER_BYTES));
    } else {
      activeFh = await open(join(dir, segmentFileName(last.number)), 'r+');
    }
    const first = segments[0] as SegmentState;
    if (comparePositions(delivered, { segment: first.number, offset: SEGMENT_HEADER_BYTES, entry: 0 }) < 0) {
      delivered = { segment: first.number, offset: SEGMENT_HEADER_BYTES, entry: 0 };
    } else {
      const ds = segments.find((s) => s.number === delivered.segment);
      if (ds !== undefined && delivered.offset > ds.size) {
        log.warn({ dir, delivered, segmentBytes: ds.size }, 'spool: delivered position beyond the end of its segment; clamping');
        delivered = { segment: ds.number, offset: ds.size, entry: 0 };
      }
    }
    const deadLetters = await deadLetterEntries(dir);
    const spool = new Spool(dir, options.maxBytes, lock, {
      segments,
      activeFh,
      delivered,
      deadLetters,
      corruptRanges,
      segmentBytes,
      freeSpace,
      clock,
      log,
    });
    log.info({ ...spool.stats(), segmentBytes, minFreeBytes: freeSpace?.minFreeBytes }, 'spool: opened');
    spool.scheduleHousekeeping();
    // A fully delivered last segment (a stop after a full disk may have left one) is released before
    // the spool is handed out, so that its state is settled for the caller.
    spool.reclaimSoon();
    await spool.flushing;
    await spool.housekeeping;
    return spool;
  }

  private static async inspectVolume(dir: string, stat: StatVolume, log: Log): Promise<VolumeStats | undefined> {
    try {
      return await stat(dir);
    } catch (err) {
      log.warn({ dir, err: errorMessage(err) }, 'spool: cannot read the free space of the volume (statfs); admission checks AGGREGATOR_SPOOL_MAX_BYTES only');
      return undefined;
    }
  }

  private static async createSegment(dir: string, n: number): Promise<FileHandle> {
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

  /** Current bytes of segment files on disk. */
  get bytes(): number {
    return this.diskBytes;
  }

  /**
   * Appends one record (an EntryBatch of `entryCount` entries). Resolves with its position once it is
   * durable (written and fdatasync'ed, group-committed with every append queued meanwhile). Rejects at
   * once, without writing, with McError(SpoolFull) when the record does not fit in `maxBytes` (also
   * when it never could), and with McError(SpoolClosed) after close().
   */
  append(data: Buffer, entryCount: number): Promise<RecordPosition> {
    if (this.closed) return Promise.reject(new McError(ErrorCode.SpoolClosed, 'spool is closed'));
    if (this.failed !== undefined) {
      return Promise.reject(new McError(ErrorCode.SpoolCorrupt, `spool is unusable after a write error: ${this.failed.message}`, { cause: this.failed }));
    }
    if (!Number.isSafeInteger(entryCount) || entryCount < 0 || entryCount > 0xffff_ffff) {
      return Promise.reject(new RangeError(`entryCount must be an integer in [0, 2^32), got ${entryCount}`));
    }
    const size = RECORD_HEADER_BYTES + data.length;
    if (data.length > MAX_RECORD_PAYLOAD_BYTES || this.diskBytes + this.reservedBytes + size + SEGMENT_HEADER_BYTES > this.maxBytes) {
      this.reclaimSoon();
      return Promise.reject(
        new McError(
          ErrorCode.SpoolFull,
          `spool is full: ${this.diskBytes + this.reservedBytes} of ${this.maxBytes} bytes used, record needs ${size}`,
        ),
      );
    }
    const free = this.freeSpace;
    if (free !== undefined && !free.admits(this.reservedBytes + size + SEGMENT_HEADER_BYTES)) {
      this.reclaimSoon();
      return Promise.reject(
        new McError(
          ErrorCode.SpoolFull,
          `spool volume is nearly full: ${free.availableBytes} bytes free, ${free.minFreeBytes} kept free ` +
            `(AGGREGATOR_SPOOL_MIN_FREE_BYTES), record needs ${size}`,
        ),
      );
    }
    this.reservedBytes += size;
    return new Promise<RecordPosition>((resolvePosition, reject) => {
      this.queue.push({ header: encodeRecordHeader(data, entryCount), data, entryCount, size, resolve: resolvePosition, reject });
      if (this.flushing === undefined) this.flushing = this.flushLoop();
    });
  }

  /** Writes queued appends group by group until the queue is empty. Never rejects. */
  private async flushLoop(): Promise<void> {
    // Let appends made in the same tick join the first group.
    await Promise.resolve();
    while (this.queue.length > 0 || this.reclaimWanted) {
      if (this.reclaimWanted) {
        this.reclaimWanted = false;
        await reclaimActive(this.activeSegmentOps());
        continue;
      }
      const group = this.queue;
      this.queue = [];
      await this.writeGroup(group);
    }
    this.flushing = undefined;
  }

  private async writeGroup(group: PendingAppend[]): Promise<void> {
    // Items whose bytes are written to the active file but not yet synced.
    let unsynced: Array<{ item: PendingAppend; offset: number }> = [];
    let bufs: Buffer[] = [];
    let writeStart = this.active.size;
    let index = 0;
    const settle = (err?: unknown): void => {
      // Everything in `group` from `index` on, plus `unsynced`, fails with `err`.
      for (const u of unsynced) {
        this.reservedBytes -= u.item.size;
        u.item.reject(err);
      }
      for (let i = index; i < group.length; i++) {
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
      this.groupCommits++;
      const seg = this.active;
      seg.durableEnd = seg.size;
      for (const u of unsynced) {
        indexRecord(seg, u.offset, u.item.entryCount);
        this.reservedBytes -= u.item.size;
        this.appendedRecords++;
        this.appendedEntries += u.item.entryCount;
        u.item.resolve({ segment: seg.number, offset: u.offset });
      }
      unsynced = [];
      this.wakeReaders();
    };
    try {
      for (; index < group.length; index++) {
        const item = group[index] as PendingAppend;
        const seg = this.active;
        if (this.mustRoll || (seg.size > SEGMENT_HEADER_BYTES && seg.size + item.size > this.segmentBytes)) {
          if (unsynced.length > 0) await syncActive();
          await this.roll();
          writeStart = this.active.size;
        }
        const target = this.active;
        unsynced.push({ item, offset: target.size });
        bufs.push(item.header, item.data);
        target.size += item.size;
        this.diskBytes += item.size;
        this.freeSpace?.noteWritten(item.size);
      }
      index = group.length;
      if (unsynced.length > 0) await syncActive();
    } catch (err) {
      // A full disk is the same condition as a full spool for the client: refuse, retry later.
      const diskFull = isErrno(err, 'ENOSPC') || isErrno(err, 'EDQUOT');
      const error = new McError(diskFull ? ErrorCode.SpoolFull : ErrorCode.SpoolCorrupt, `spool write failed: ${errorMessage(err)}`, {
        cause: err,
      });
      this.log.error({ dir: this.dir, segment: this.active.number, err: errorMessage(err) }, 'spool: append failed');
      settle(error);
      await this.undoUnsynced();
      if (diskFull) {
        await this.freeSpace?.refresh();
        this.reclaimSoon();
      }
    }
  }

  /** After a failed write: cut the active segment back to what is durable, so the tail stays parseable. */
  private async undoUnsynced(): Promise<void> {
    const seg = this.active;
    if (seg.size === seg.durableEnd) return;
    try {
      await this.activeFh.truncate(seg.durableEnd);
      this.diskBytes -= seg.size - seg.durableEnd;
      seg.size = seg.durableEnd;
    } catch (err) {
      this.failed = err instanceof Error ? err : new Error(String(err));
      this.log.error({ dir: this.dir, segment: seg.number, err: errorMessage(err) }, 'spool: cannot undo a failed write; refusing appends');
    }
  }

  /**
   * Space is short: when everything in the active segment is delivered, release it (reclaim-active.ts)
   * in the flush loop, between group writes.
   */
  private reclaimSoon(): void {
    if (this.closed || !this.activeFullyDelivered()) return;
    this.reclaimWanted = true;
    if (this.flushing === undefined) this.flushing = this.flushLoop();
  }

  private activeFullyDelivered(): boolean {
    const a = this.active;
    return (
      a.size > SEGMENT_HEADER_BYTES &&
      a.durableEnd === a.size &&
      this.delivered.segment === a.number &&
      this.delivered.offset >= a.size
    );
  }

  private activeSegmentOps(): ActiveSegmentOps {
    return {
      activeFullyDelivered: () => this.activeFullyDelivered(),
      roll: () => this.roll(),
      persistDelivered: () => this.persistSoon(),
      retireActive: () => {
        this.mustRoll = true;
      },
      truncateActive: async () => {
        const seg = this.active;
        await this.activeFh.truncate(SEGMENT_HEADER_BYTES);
        await this.activeFh.datasync();
        this.diskBytes -= seg.size - SEGMENT_HEADER_BYTES;
        seg.size = SEGMENT_HEADER_BYTES;
        seg.durableEnd = SEGMENT_HEADER_BYTES;
        seg.offsets.length = 0;
        seg.cumEntries.length = 0;
      },
      refreshFreeSpace: async () => {
        await this.freeSpace?.refresh();
      },
      log: this.log,
      dir: this.dir,
    };
  }

  /** Seals the active segment (already synced) and starts the next one. */
  private async roll(): Promise<void> {
    const old = this.active;
    const n = old.number + 1;
    const fh = await Spool.createSegment(this.dir, n);
    this.freeSpace?.noteWritten(SEGMENT_HEADER_BYTES);
    const seg = newSegment(n, SEGMENT_HEADER_BYTES);
    const oldFh = this.activeFh;
    this.mustRoll = false;
    old.sealed = true;
    this.segments.set(n, seg);
    this.diskBytes += SEGMENT_HEADER_BYTES;
    this.active = seg;
    this.activeFh = fh;
    await oldFh.close();
    this.wakeReaders();
    this.scheduleHousekeeping(); // the sealed segment may be fully delivered already
  }

  /**
   * A reader from the delivered position. Each `next()` resolves with the following durable record,
   * waiting (abortably) for appends. One reader at a time: a new reader replaces the old one's role.
   */
  reader(): SpoolReader {
    // One reader at a time: the previous one's open file is released (it may still be used, and
    // reopens what it needs).
    if (this.currentReader !== undefined) void this.currentReader.closeFile();
    this.currentReader = new Reader(this, this.delivered);
    return this.currentReader;
  }

  /**
   * Moves the delivered position forward (never back). In memory at once; persisted atomically
   * (tmp + fsync + rename) at most every ~200 ms and on close(); fully delivered segments are deleted
   * (and `bytes` decreases).
   */
  markDelivered(position: DeliveredPosition): void {
    if (comparePositions(position, this.delivered) <= 0) return;
    const durable = { segment: this.active.number, offset: this.active.durableEnd, entry: 0 };
    if (comparePositions({ ...position, entry: 0 }, durable) > 0) {
      // Past what was ever durable: a caller bug. Accepting it could delete undelivered segments.
      this.log.error({ dir: this.dir, position, durable }, 'spool: ignoring a delivered position beyond the durable end');
      return;
    }
    this.delivered = { segment: position.segment, offset: position.offset, entry: position.entry };
    if (this.persistTimer === undefined && !this.closed) {
      this.persistTimer = this.clock.setTimeout(() => {
        this.persistTimer = undefined;
        void this.persistSoon();
      }, PERSIST_INTERVAL_MS);
      this.persistTimer.unref();
    }
    this.scheduleHousekeeping();
  }

  private persistSoon(): Promise<void> {
    this.persisting = this.persisting.then(async () => {
      const p = this.delivered;
      if (comparePositions(p, this.persistedDelivered) === 0) return;
      try {
        await writeDelivered(this.dir, p);
        this.persistedDelivered = p;
      } catch (err) {
        this.log.error({ dir: this.dir, err: errorMessage(err) }, 'spool: cannot persist the delivered position; will retry');
      }
    });
    return this.persisting;
  }

  /** Deletes sealed segments that are fully delivered. */
  private scheduleHousekeeping(): void {
    this.housekeeping = this.housekeeping.then(async () => {
      let freed = false;
      for (const seg of [...this.segments.values()]) {
        if (!seg.sealed) break;
        const done =
          seg.number < this.delivered.segment ||
          (seg.number === this.delivered.segment && this.delivered.offset >= seg.size);
        if (!done) break;
        this.segments.delete(seg.number);
        try {
          await rm(join(this.dir, segmentFileName(seg.number)), { force: true });
          this.diskBytes -= seg.size;
          freed = true;
        } catch (err) {
          this.segments.set(seg.number, seg);
          this.log.error({ dir: this.dir, segment: seg.number, err: errorMessage(err) }, 'spool: cannot delete a delivered segment');
          break;
        }
      }
      if (freed) await this.freeSpace?.refresh();
    });
  }

  /**
   * Appends entries that an emitter can never accept to `dead-letters.log` in the spool dir, durably,
   * with the reason. `records` are EntryBatch buffers (see encodeEntries in src/wire/entry-batch.ts).
   */
  async deadLetter(records: readonly Buffer[], reason: string): Promise<void> {
    if (this.closed) throw new McError(ErrorCode.SpoolClosed, 'spool is closed');
    const timeMs = this.clock.now();
    const letters: DeadLetter[] = records.map((data) => ({ data, entryCount: countEntries(data), reason, timeMs }));
    const entries = letters.reduce((n, l) => n + l.entryCount, 0);
    const write = appendDeadLetters(this.dir, letters);
    // close() waits for dead-letter writes too, so the lock is never released under one.
    this.deadLetterWrites.add(write);
    try {
      this.deadLetterCount = await write;
    } finally {
      this.deadLetterWrites.delete(write);
    }
    this.log.warn({ dir: this.dir, entries, reason }, 'spool: entries moved to the dead-letter file');
  }

  /** Reads the dead-letter file of `dir` (a torn last record is ignored). */
  static async readDeadLetters(dir: string): Promise<DeadLetter[]> {
    return (await readDeadLetterFile(resolve(dir))).letters;
  }

  /** Drops the first `count` dead letters (after they were replayed), atomically. */
  static async removeDeadLetters(dir: string, count: number): Promise<void> {
    await removeFirstDeadLetters(resolve(dir), count);
  }

  stats(): SpoolStats {
    let pending = 0;
    for (const seg of this.segments.values()) {
      if (seg.number < this.delivered.segment) continue;
      pending += totalEntries(seg);
      if (seg.number === this.delivered.segment) pending -= entriesBefore(seg, this.delivered.offset) + this.delivered.entry;
    }
    return {
      dir: this.dir,
      segments: this.segments.size,
      bytes: this.diskBytes,
      maxBytes: this.maxBytes,
      appendPosition: { segment: this.active.number, offset: this.active.size },
      delivered: this.delivered,
      appendedRecords: this.appendedRecords,
      appendedEntries: this.appendedEntries,
      pendingEntries: Math.max(0, pending),
      deadLetters: this.deadLetterCount,
      corruptRanges: this.corruptRanges,
      groupCommits: this.groupCommits,
    };
  }

  /**
   * Reads the state of a spool directory without changing it (for `mega-aggregator spool status`);
   * works whether or not an aggregator runs on it. appendedRecords/appendedEntries/groupCommits are 0
   * (they count since open); `maxBytes` is echoed in the result (the bound is configuration, not on disk).
   */
  static async inspect(dir: string, maxBytes = 0): Promise<SpoolStats> {
    const abs = resolve(dir);
    let names: string[];
    try {
      names = await readdir(abs);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new McError(ErrorCode.Config, `no spool directory at ${abs}`);
      throw err;
    }
    const numbers = names
      .map(parseSegmentFileName)
      .filter((n): n is number => n !== undefined)
      .sort((a, b) => a - b);
    const { position } = await readDelivered(abs);
    let delivered: DeliveredPosition = position;
    let bytes = 0;
    let pending = 0;
    let corrupt = 0;
    let appendPosition: RecordPosition = { segment: delivered.segment, offset: delivered.offset };
    let segments = 0;
    for (let i = 0; i < numbers.length; i++) {
      const n = numbers[i] as number;
      let fh: FileHandle;
      try {
        fh = await open(join(abs, segmentFileName(n)), 'r');
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue; // deleted by a running aggregator meanwhile
        throw err;
      }
      try {
        const size = (await fh.stat()).size;
        bytes += size;
        segments++;
        if (n < delivered.segment) continue;
        const scan = await scanSegment(fh, n, size, i >= numbers.length - 2);
        scan.offsets.forEach((o, k) => {
          if (n > delivered.segment || o >= delivered.offset) pending += scan.entries[k] as number;
        });
        if (n === delivered.segment) pending -= delivered.entry;
        corrupt += scan.corrupt.length + (scan.tail !== undefined && i !== numbers.length - 1 ? 1 : 0);
        appendPosition = { segment: n, offset: i === numbers.length - 1 ? scan.validEnd : size };
      } finally {
        await fh.close();
      }
    }
    if (numbers.length > 0 && delivered.segment < (numbers[0] as number)) {
      delivered = { segment: numbers[0] as number, offset: SEGMENT_HEADER_BYTES, entry: 0 };
    }
    return {
      dir: abs,
      segments,
      bytes,
      maxBytes,
      appendPosition,
      delivered,
      appendedRecords: 0,
      appendedEntries: 0,
      pendingEntries: Math.max(0, pending),
      deadLetters: (await readDeadLetterFile(abs)).letters.reduce((n, l) => n + l.entryCount, 0),
      corruptRanges: corrupt,
      groupCommits: 0,
    };
  }

  /**
   * Waits for in-flight appends, persists the delivered position, releases the lock. Idempotent.
   * Readers waiting for records reject with McError(SpoolClosed).
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    while (this.flushing !== undefined) await this.flushing;
    await Promise.allSettled([...this.deadLetterWrites]);
    if (this.persistTimer !== undefined) {
      this.clock.clearTimeout(this.persistTimer);
      this.persistTimer = undefined;
    }
    this.scheduleHousekeeping();
    await this.housekeeping;
    await this.persistSoon();
    this.wakeReaders();
    await this.currentReader?.closeFile();
    try {
      await this.activeFh.close();
    } finally {
      await this.lock.release();
    }
  }

  // ---- for Reader ----

  /** @internal */
  get isClosed(): boolean {
    return this.closed;
  }

  /** @internal */
  segmentState(n: number): SegmentState | undefined {
    return this.segments.get(n);
  }

  /** @internal The first live segment after `n`, if any. */
  segmentAfter(n: number): SegmentState | undefined {
    let best: SegmentState | undefined;
    for (const s of this.segments.values()) if (s.number > n && (best === undefined || s.number < best.number)) best = s;
    return best;
  }

  /** @internal Resolves on the next durable append, roll or close; rejects when aborted. */
  waitForProgress(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolveWait, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        this.waiters.delete(wake);
        reject(signal?.reason);
      };
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolveWait();
      };
      this.waiters.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private wakeReaders(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  /** @internal A durable record failed its checksum: count it, log it; readers skip [start, end). */
  reportCorrupt(seg: SegmentState, start: number, end: number, reason: string): void {
    this.corruptRanges++;
    seg.badRanges.push({ start, end });
    seg.badRanges.sort((a, b) => a.start - b.start);
    this.log.error(
      { dir: this.dir, segment: seg.number, file: join(this.dir, segmentFileName(seg.number)), start, end, reason },
      'spool: CORRUPT record; readers skip this byte range',
    );
  }
}

class Reader implements SpoolReader {
  private segment: number;
  private offset: number;
  private skip: number;
  private fh: FileHandle | undefined;
  private fhSegment = -1;

  constructor(
    private readonly spool: Spool,
    from: DeliveredPosition,
  ) {
    this.segment = from.segment;
    this.offset = Math.max(from.offset, SEGMENT_HEADER_BYTES);
    this.skip = from.entry;
  }

  async next(signal?: AbortSignal): Promise<SpoolRecord> {
    try {
      for (;;) {
        signal?.throwIfAborted();
        if (this.spool.isClosed) throw new McError(ErrorCode.SpoolClosed, 'spool is closed');
        const seg = this.spool.segmentState(this.segment);
        if (seg === undefined) {
          // Deleted (delivered) or not created yet.
          const after = this.spool.segmentAfter(this.segment);
          if (after !== undefined) {
            this.moveTo(after.number);
            continue;
          }
          await this.spool.waitForProgress(signal);
          continue;
        }
        const bad = seg.badRanges.find((r) => this.offset >= r.start && this.offset < r.end);
        if (bad !== undefined) {
          this.offset = bad.end;
          this.skip = 0;
          continue;
        }
        const end = seg.durableEnd;
        if (this.offset < end) {
          const record = await this.read(seg, end);
          if (record !== undefined) return record;
          continue; // corrupt: the range was reported and is skipped
        }
        if (seg.sealed) {
          const after = this.spool.segmentAfter(this.segment);
          if (after !== undefined) {
            this.moveTo(after.number);
            continue;
          }
        }
        await this.spool.waitForProgress(signal);
      }
    } catch (err) {
      await this.closeFile();
      throw err;
    }
  }

  private moveTo(segment: number): void {
    this.segment = segment;
    this.offset = SEGMENT_HEADER_BYTES;
    this.skip = 0;
  }

  /** @internal Releases the open segment file; the next read reopens it. */
  async closeFile(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    this.fhSegment = -1;
    if (fh !== undefined) await fh.close().catch(() => undefined);
  }

  private async readExactly(fh: FileHandle, buf: Buffer, position: number): Promise<boolean> {
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
      if (bytesRead === 0) return false;
      got += bytesRead;
    }
    return true;
  }

  /** Reads the record at the cursor; undefined when it is corrupt (reported, cursor moved on). */
  private async read(seg: SegmentState, end: number): Promise<SpoolRecord | undefined> {
    if (this.fhSegment !== seg.number) {
      await this.closeFile();
      this.fh = await open(join(this.spool.dir, segmentFileName(seg.number)), 'r');
      this.fhSegment = seg.number;
    }
    const fh = this.fh as FileHandle;
    const start = this.offset;
    const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
    let problem: string | undefined;
    let payload: Buffer | undefined;
    const rh = start + RECORD_HEADER_BYTES <= end && (await this.readExactly(fh, header, start)) ? parseRecordHeader(header) : null;
    if (rh === null) problem = 'bad record header';
    else if (start + RECORD_HEADER_BYTES + rh.length > end) problem = `record of ${rh.length} bytes runs past the durable end`;
    else {
      payload = Buffer.allocUnsafe(rh.length);
      if (!(await this.readExactly(fh, payload, start + RECORD_HEADER_BYTES))) problem = 'short read';
      else if (recordCrc(header, payload) !== rh.crc) problem = 'record checksum mismatch';
    }
    if (problem !== undefined || rh === null || payload === undefined) {
      // Resynchronise on the next valid record within what is durable; none: skip to the durable end
      // (appends continue from there, so a damaged active segment does not stop delivery).
      const resume = (await findNextRecord(fh, start + 1, end)) ?? end;
      this.spool.reportCorrupt(seg, start, resume, problem ?? 'unreadable record');
      return undefined;
    }
    const next = start + RECORD_HEADER_BYTES + rh.length;
    const skip = Math.min(this.skip, rh.entryCount);
    this.offset = next;
    this.skip = 0;
    return {
      position: { segment: seg.number, offset: start },
      next: { segment: seg.number, offset: next },
      data: payload,
      entryCount: rh.entryCount,
      skipEntries: skip,
    };
  }
}
