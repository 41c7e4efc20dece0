import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCode, McError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import { systemClock } from '../util/clock.js';
import type { Clock } from '../util/clock.js';
import { DeadLetterSink } from './dead-letter-sink.js';
import { deadLetterEntries, readDeadLetterFile, removeFirstDeadLetters } from './dead-letters.js';
import type { DeadLetter } from './dead-letters.js';
import { Delivery } from './delivery.js';
import { setUpVolume, statVolume } from './free-space.js';
import type { FreeSpace, StatVolume } from './free-space.js';
import { GroupCommit } from './group-commit.js';
import { recover } from './recovery.js';
import type { Recovered } from './recovery.js';
import { planRecovery } from './recovery-plan.js';
import { segmentFileName } from './segment-format.js';
import { addBadRange, pendingEntries } from './segment-index.js';
import type { SegmentIndex } from './segment-index.js';
import { segmentDelivered } from './segment-list.js';
import { readSpoolLayout } from './spool-layout.js';
import type { RetentionPolicy } from './retention.js';
import { SpoolLock } from './spool-lock.js';
import type { SpoolPort } from './spool-port.js';
import { RecentRecords } from './recent-records.js';
import { Progress, SegmentReader } from './spool-reader.js';
import type { ReaderView } from './spool-reader.js';
import { NO_LOG } from './spool-types.js';
import type { DeliveredPosition, RecordPosition, SpoolLog, SpoolReader, SpoolStats } from './spool-types.js';

export type { DeadLetter } from './dead-letters.js';
export type { DeliveredPosition, RecordPosition, SpoolReader, SpoolRecord, SpoolStats } from './spool-types.js';

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
  /**
   * AGGREGATOR_SPOOL_RETENTION: delivered segments are kept (for replay) until older or larger than
   * this (retention.ts); evicted, oldest first, whenever undelivered data needs their room. Default: none.
   */
  readonly retention?: RetentionPolicy;
  /** How the volume's size and free space are read (statfs; tests inject their own). */
  readonly statVolume?: StatVolume;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/**
 * Payload bytes of recent appends held for the reader (recent-records.ts). With 256 KiB HTTP/2
 * windows ingest runs ahead of the emitter by more than 4 MiB at full speed, and each record past the
 * window was read back from the file (a read into a new buffer, a checksum, a walk for its lines):
 * perf showed lineSpans and crc32 again, and major GCs driven by the read buffers. 16 MiB: e2e 1M lines
 * 2.12-2.23 s against 2.09-2.70 s, aggregator CPU after ready 1.64-1.76 s against 1.64-2.38 s, peak RSS
 * 122-124 MiB against 125-128 (three interleaved pairs, idle machine); 32 MiB was no better. While the
 * emitter is stuck, this much stays held.
 */
const RECENT_RECORD_BYTES = 16 * 1024 * 1024;
const MIN_SEGMENT_BYTES = 4096;

/**
 * The aggregator's durable spool: an append-only, segmented, checksummed log on disk (format in
 * segment-format.ts). A thin facade over its parts: recovery (recovery.ts) builds the segment index
 * (segment-index.ts); appends are group-committed (group-commit.ts); one reader (spool-reader.ts)
 * reads durable records in order from the delivered position over a read-only view of the index;
 * delivery (delivery.ts) moves and persists that position and frees delivered segments; dead letters
 * go to their own file (dead-letter-sink.ts).
 */
export class Spool implements SpoolPort {
  private readonly progress = new Progress();
  private readonly recent = new RecentRecords(RECENT_RECORD_BYTES);
  private readonly writer: GroupCommit;
  private readonly delivery: Delivery;
  private readonly deadLetters: DeadLetterSink;
  private readonly index: SegmentIndex;
  private readonly log: SpoolLog;
  private corruptRanges: number;
  private currentReader: SegmentReader | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly dir: string,
    private readonly maxBytes: number,
    private readonly lock: SpoolLock,
    recovered: Recovered,
    init: {
      segmentBytes: number;
      freeSpace: FreeSpace | undefined;
      deadLetters: number;
      retention: RetentionPolicy | undefined;
      clock: Clock;
      log: SpoolLog;
    },
  ) {
    const { segmentBytes, freeSpace, clock, log } = init;
    this.index = recovered.index;
    this.corruptRanges = recovered.corruptRanges;
    this.log = log;
    this.writer = new GroupCommit({
      dir,
      index: this.index,
      activeFh: recovered.activeFh,
      maxBytes,
      segmentBytes,
      freeSpace,
      log,
      clock,
      evictableBytes: () => this.delivery.retainedBytes,
      evict: (bytes) => this.delivery.evict(bytes),
      onProgress: () => this.progress.wake(),
      onSealed: () => this.delivery.housekeep(),
      onShortOfSpace: () => this.delivery.reclaimSoon(),
      reclaim: () => this.delivery.reclaim(),
    });
    this.delivery = new Delivery({
      dir,
      index: this.index,
      initial: recovered.delivered,
      freeSpace,
      clock,
      log,
      active: this.writer,
      retention: init.retention,
      isClosed: () => this.closed,
    });
    this.deadLetters = new DeadLetterSink(dir, init.deadLetters, clock, log);
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
      return await Spool.start(dir, options, lock);
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  private static async start(dir: string, options: SpoolOptions, lock: SpoolLock): Promise<Spool> {
    const log: SpoolLog = options.logger ?? NO_LOG;
    const clock = options.clock ?? systemClock;
    const { segmentBytes, freeSpace } = await setUpVolume(dir, {
      maxBytes: options.maxBytes,
      segmentBytes: options.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
      minSegmentBytes: MIN_SEGMENT_BYTES,
      minFreeBytes: options.minFreeBytes,
      statVolume: options.statVolume ?? statVolume,
      clock,
      log,
    });
    const retention = options.retention;
    const recovered = await recover(dir, log, retention !== undefined);
    const deadLetters = await deadLetterEntries(dir);
    const spool = new Spool(dir, options.maxBytes, lock, recovered, { segmentBytes, freeSpace, deadLetters, retention, clock, log });
    log.info({ ...spool.stats(), segmentBytes, minFreeBytes: freeSpace?.minFreeBytes }, 'spool: opened');
    spool.delivery.housekeep();
    // A fully delivered last segment (a stop after a full disk may have left one) is released before
    // the spool is handed out, so that its state is settled for the caller.
    spool.delivery.reclaimSoon();
    await spool.writer.idle();
    await spool.delivery.settled();
    return spool;
  }

  /** Current bytes of segment files on disk. */
  get bytes(): number {
    return this.index.diskBytes;
  }

  /**
   * Appends one record (an EntryBatch of `entryCount` entries). Resolves with its position once it is
   * durable (written and fdatasync'ed, group-committed with every append queued meanwhile). Rejects at
   * once, without writing, with McError(SpoolFull) when the record does not fit in `maxBytes` (also
   * when it never could), and with McError(SpoolClosed) after close(). The spool keeps `data` for its
   * reader until it is read (recent-records.ts): it must not be changed after the call.
   */
  append(data: Buffer, entryCount: number, spans?: Uint32Array): Promise<RecordPosition> {
    if (this.closed) return Promise.reject(new McError(ErrorCode.SpoolClosed, 'spool is closed'));
    return this.writer.append(data, entryCount).then((position) => {
      this.recent.add(position, data, entryCount, spans);
      return position;
    });
  }

  /**
   * Why an append of `dataBytes` would be refused now (McError SpoolClosed, SpoolFull, SpoolCorrupt),
   * or undefined when it would be taken: the same decision append() makes, synchronously.
   */
  refusal(dataBytes: number): McError | undefined {
    if (this.closed) return new McError(ErrorCode.SpoolClosed, 'spool is closed');
    return this.writer.refusal(dataBytes);
  }

  /**
   * A reader from the delivered position. Each `next()` resolves with the following durable record,
   * waiting (abortably) for appends. One reader at a time: a new reader replaces the old one's role.
   */
  reader(): SpoolReader {
    // One reader at a time: the previous one's open file is released (it may still be used, and
    // reopens what it needs).
    if (this.currentReader !== undefined) void this.currentReader.closeFile();
    this.currentReader = new SegmentReader(this.readerView(), this.delivery.position);
    return this.currentReader;
  }

  private readerView(): ReaderView {
    const index = this.index;
    return {
      dir: this.dir,
      isClosed: () => this.closed,
      segment: (n) => index.get(n),
      segmentAfter: (n) => index.after(n),
      waitForProgress: (signal) => this.progress.wait(signal),
      reportCorrupt: (n, start, end, reason) => this.reportCorrupt(n, start, end, reason),
      takeRecent: (n, offset) => this.recent.take(n, offset),
    };
  }

  /** A durable record failed its checksum: count it, log it; readers skip [start, end). */
  private reportCorrupt(n: number, start: number, end: number, reason: string): void {
    const seg = this.index.get(n);
    if (seg === undefined) return;
    this.corruptRanges++;
    addBadRange(seg, start, end);
    this.log.error(
      { dir: this.dir, segment: n, file: join(this.dir, segmentFileName(n)), start, end, reason },
      'spool: CORRUPT record; readers skip this byte range',
    );
  }

  /**
   * Moves the delivered position forward (never back). In memory at once; persisted atomically
   * (tmp + fsync + rename) at most every ~200 ms and on close(); fully delivered segments are deleted
   * (and `bytes` decreases).
   */
  markDelivered(position: DeliveredPosition): void {
    this.delivery.mark(position);
  }

  /**
   * Appends entries that an emitter can never accept to `dead-letters.log` in the spool dir, durably,
   * with the reason. `records` are EntryBatch buffers (see encodeEntries in src/wire/entry-batch.ts).
   */
  async deadLetter(records: readonly Buffer[], reason: string): Promise<void> {
    if (this.closed) throw new McError(ErrorCode.SpoolClosed, 'spool is closed');
    await this.deadLetters.write(records, reason);
  }

  /**
   * Deletes retained segments (sealed and fully delivered) that `which` picks, before retention would;
   * never a pending one. Resolves with what was deleted.
   */
  purgeRetained(which: (segment: number) => boolean): Promise<{ segments: number; bytes: number }> {
    if (this.closed) return Promise.reject(new McError(ErrorCode.SpoolClosed, 'spool is closed'));
    return this.delivery.purge(which);
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
    const active = this.index.active;
    return {
      dir: this.dir,
      segments: this.index.count,
      bytes: this.index.diskBytes,
      maxBytes: this.maxBytes,
      appendPosition: { segment: active.number, offset: active.size },
      delivered: this.delivery.position,
      appendedRecords: this.writer.appendedRecords,
      appendedEntries: this.writer.appendedEntries,
      pendingEntries: pendingEntries(this.index.all(), this.delivery.position),
      deadLetters: this.deadLetters.entries,
      corruptRanges: this.corruptRanges,
      groupCommits: this.writer.groupCommits,
      retainedBytes: this.delivery.retainedBytes,
      oldestRetainedMs: this.delivery.oldestRetainedMs,
    };
  }

  /**
   * Reads the state of a spool directory without changing it (for `mega-aggregator spool status`);
   * works whether or not an aggregator runs on it: the layout recovery would find (spool-layout.ts),
   * and what recovery would make of it (recovery-plan.ts), without carrying it out.
   * appendedRecords/appendedEntries/groupCommits are 0 (they count since open); `maxBytes` is echoed
   * in the result (the bound is configuration, not on disk).
   */
  static async inspect(dir: string, maxBytes = 0): Promise<SpoolStats> {
    const layout = await readSpoolLayout(dir);
    const plan = planRecovery(layout);
    const last = plan.segments[plan.segments.length - 1];
    // Nothing live (no segment yet, or all delivered): recovery would start a new segment; report
    // the persisted position as it is.
    const delivered = last === undefined ? layout.delivered : plan.delivered;
    // On disk, sealed and delivered: what retention keeps (or housekeeping is about to delete).
    const retained = layout.segments.filter((s, i) => i < layout.segments.length - 1 && segmentDelivered(s.number, s.scan?.validEnd ?? s.size, delivered));
    return {
      dir: layout.dir,
      segments: layout.segments.length,
      bytes: layout.segments.reduce((n, s) => n + s.size, 0),
      maxBytes,
      appendPosition: last === undefined ? { segment: delivered.segment, offset: delivered.offset } : { segment: last.number, offset: last.size },
      delivered,
      appendedRecords: 0,
      appendedEntries: 0,
      pendingEntries: pendingEntries(plan.segments, delivered),
      deadLetters: (await readDeadLetterFile(layout.dir)).letters.reduce((n, l) => n + l.entryCount, 0),
      corruptRanges: plan.corruptRanges,
      groupCommits: 0,
      retainedBytes: retained.reduce((n, s) => n + s.size, 0),
      oldestRetainedMs: retained[0]?.mtimeMs,
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
    await this.writer.idle();
    await this.deadLetters.settled();
    await this.delivery.close();
    this.progress.wake();
    await this.currentReader?.closeFile();
    try {
      await this.writer.close();
    } finally {
      await this.lock.release();
    }
  }
}
