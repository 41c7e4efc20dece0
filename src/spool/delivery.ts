import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { DeliveredSlots, comparePositions } from './delivered-file.js';
import type { FreeSpace } from './free-space.js';
import { reclaimActive } from './reclaim-active.js';
import { SEGMENT_HEADER_BYTES, segmentFileName } from './segment-format.js';
import { fullyDelivered } from './segment-index.js';
import type { SegmentIndex, SegmentState } from './segment-index.js';
import { evictionCount, expiredCount, nextExpiryMs } from './retention.js';
import type { RetainedSegment, RetentionPolicy } from './retention.js';
import type { DeliveredPosition, SpoolLog } from './spool-types.js';

const PERSIST_INTERVAL_MS = 200;

/** What delivery needs of the write side to release a fully delivered active segment (reclaim-active.ts). */
export interface ActiveSegmentControl {
  roll(): Promise<void>;
  retireActive(): void;
  truncateActive(): Promise<void>;
  /** Runs `Delivery.reclaim` between group writes. */
  requestReclaim(): void;
}

export interface DeliveryOptions {
  readonly dir: string;
  readonly index: SegmentIndex;
  readonly initial: DeliveredPosition;
  readonly freeSpace: FreeSpace | undefined;
  readonly clock: Clock;
  readonly log: SpoolLog;
  readonly active: ActiveSegmentControl;
  /** AGGREGATOR_SPOOL_RETENTION; undefined: delivered segments are deleted at once. */
  readonly retention: RetentionPolicy | undefined;
  /** The spool is closing: no new persist timer, no reclaim. */
  readonly isClosed: () => boolean;
}

function asRetained(seg: SegmentState): RetainedSegment {
  return { number: seg.number, size: seg.size, sealedAtMs: seg.sealedAtMs ?? 0 };
}

/**
 * The delivered position: moved forward by `mark` (never back, never past what is durable), persisted
 * (delivered-file.ts: pwrite of a checksummed slot, fdatasync) at most every ~200 ms and on close, and the housekeeping that follows it: sealed segments
 * fully delivered are deleted, or kept under a retention policy (retention.ts) until they expire, are
 * evicted for room, or purged; a fully delivered active segment is released when space runs short.
 */
export class Delivery {
  private delivered: DeliveredPosition;
  private persisted: DeliveredPosition;
  private persistTimer: TimerHandle | undefined;
  private persisting: Promise<void> = Promise.resolve();
  /** Opened by the first persist (delivered-file.ts); let go after a failure, so the next one reopens. */
  private slots: DeliveredSlots | undefined;
  private housekeeping: Promise<void> = Promise.resolve();
  private expiryTimer: TimerHandle | undefined;

  constructor(private readonly o: DeliveryOptions) {
    this.delivered = o.initial;
    this.persisted = o.initial;
  }

  get position(): DeliveredPosition {
    return this.delivered;
  }

  /** See Spool.markDelivered. */
  mark(position: DeliveredPosition): void {
    if (comparePositions(position, this.delivered) <= 0) return;
    const active = this.o.index.active;
    const durable = { segment: active.number, offset: active.durableEnd, entry: 0 };
    if (comparePositions({ ...position, entry: 0 }, durable) > 0) {
      // Past what was ever durable: a caller bug. Accepting it could delete undelivered segments.
      this.o.log.error({ dir: this.o.dir, position, durable }, 'spool: ignoring a delivered position beyond the durable end');
      return;
    }
    this.delivered = { segment: position.segment, offset: position.offset, entry: position.entry };
    if (this.persistTimer === undefined && !this.o.isClosed()) {
      this.persistTimer = this.o.clock.setTimeout(() => {
        this.persistTimer = undefined;
        void this.persist();
      }, PERSIST_INTERVAL_MS);
      this.persistTimer.unref();
    }
    this.housekeep();
  }

  /** Persists the position now (after any persist in flight). Never rejects: a failure is logged. */
  persist(): Promise<void> {
    this.persisting = this.persisting.then(async () => {
      const p = this.delivered;
      if (comparePositions(p, this.persisted) === 0) return;
      try {
        this.slots ??= await DeliveredSlots.open(this.o.dir, this.persisted);
        await this.slots.write(p);
        this.persisted = p;
      } catch (err) {
        this.o.log.error({ dir: this.o.dir, err: errorMessage(err) }, 'spool: cannot persist the delivered position; will retry');
        const slots = this.slots;
        this.slots = undefined;
        await slots?.close().catch(() => undefined);
      }
    });
    return this.persisting;
  }

  /** Sealed, fully delivered segments still on disk, oldest first: what retention keeps. */
  private retainedSegments(): SegmentState[] {
    const out: SegmentState[] = [];
    for (const seg of this.o.index.all()) {
      if (!seg.sealed || !fullyDelivered(seg, this.delivered)) break;
      out.push(seg);
    }
    return out;
  }

  /** Bytes of retained segments (0 without retention: they are deleted at once). */
  get retainedBytes(): number {
    return this.o.retention === undefined ? 0 : this.retainedSegments().reduce((n, s) => n + s.size, 0);
  }

  /** When the oldest retained segment was sealed (ms since the epoch); undefined when none is retained. */
  get oldestRetainedMs(): number | undefined {
    if (this.o.retention === undefined) return undefined;
    return this.retainedSegments()[0]?.sealedAtMs;
  }

  /** Deletes `segs` (retained, oldest first) in order; stops at the first that cannot be deleted. */
  private async drop(segs: readonly SegmentState[]): Promise<{ segments: number; bytes: number }> {
    let segments = 0;
    let bytes = 0;
    for (const seg of segs) {
      this.o.index.detach(seg);
      try {
        await rm(join(this.o.dir, segmentFileName(seg.number)), { force: true });
        this.o.index.deleted(seg);
        segments++;
        bytes += seg.size;
      } catch (err) {
        this.o.index.reattach(seg);
        this.o.log.error({ dir: this.o.dir, segment: seg.number, err: errorMessage(err) }, 'spool: cannot delete a delivered segment');
        break;
      }
    }
    if (segments > 0) await this.o.freeSpace?.refresh();
    return { segments, bytes };
  }

  /**
   * Deletes sealed segments that are fully delivered, or, under retention, those expired (queued after
   * earlier housekeeping); then sets a timer for the next expiry by age.
   */
  housekeep(): void {
    this.housekeeping = this.housekeeping.then(async () => {
      const now = this.o.clock.now();
      const retained = this.retainedSegments();
      await this.drop(retained.slice(0, expiredCount(retained.map(asRetained), this.o.retention, now)));
      this.scheduleExpiry();
    });
  }

  private scheduleExpiry(): void {
    if (this.expiryTimer !== undefined) this.o.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    const at = nextExpiryMs(this.retainedSegments().map(asRetained), this.o.retention);
    if (at === undefined || this.o.isClosed()) return;
    this.expiryTimer = this.o.clock.setTimeout(
      () => {
        this.expiryTimer = undefined;
        this.housekeep();
      },
      Math.max(1, at - this.o.clock.now() + 1),
    );
    this.expiryTimer.unref();
  }

  /** Evicts retained segments, oldest first, until `bytes` are freed (room for undelivered data). Never rejects. */
  evict(bytes: number): Promise<void> {
    const run = this.housekeeping.then(async () => {
      const retained = this.retainedSegments();
      const victims = retained.slice(0, evictionCount(retained.map(asRetained), bytes));
      const freed = await this.drop(victims);
      if (freed.segments > 0) {
        this.o.log.info({ dir: this.o.dir, segments: freed.segments, bytes: freed.bytes, needed: bytes }, 'spool: evicted retained segments to make room for new data');
      }
      this.scheduleExpiry();
    });
    this.housekeeping = run;
    return run;
  }

  /** Deletes the retained segments `which` picks (never a pending one). */
  purge(which: (segment: number) => boolean): Promise<{ segments: number; bytes: number }> {
    const run = this.housekeeping.then(async () => {
      const freed = await this.drop(this.retainedSegments().filter((s) => which(s.number)));
      this.scheduleExpiry();
      return freed;
    });
    this.housekeeping = run.then(() => undefined);
    return run;
  }

  /** Resolves when the housekeeping queued so far is done. */
  settled(): Promise<void> {
    return this.housekeeping;
  }

  /** Whether the active segment has records, all durable and all delivered. */
  activeFullyDelivered(): boolean {
    const a = this.o.index.active;
    return a.size > SEGMENT_HEADER_BYTES && a.durableEnd === a.size && this.delivered.segment === a.number && this.delivered.offset >= a.size;
  }

  /** Space is short: when everything in the active segment is delivered, release it (between group writes). */
  reclaimSoon(): void {
    if (this.o.isClosed() || !this.activeFullyDelivered()) return;
    this.o.active.requestReclaim();
  }

  /** Releases a fully delivered active segment (reclaim-active.ts). Never rejects. */
  reclaim(): Promise<void> {
    const { active, dir, log, freeSpace } = this.o;
    return reclaimActive({
      activeFullyDelivered: () => this.activeFullyDelivered(),
      roll: () => active.roll(),
      persistDelivered: () => this.persist(),
      retireActive: () => active.retireActive(),
      truncateActive: () => active.truncateActive(),
      refreshFreeSpace: async () => {
        await freeSpace?.refresh();
      },
      log,
      dir,
    });
  }

  /** On close: no more timer; housekeeping and the position settled on disk. */
  async close(): Promise<void> {
    if (this.expiryTimer !== undefined) this.o.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    if (this.persistTimer !== undefined) {
      this.o.clock.clearTimeout(this.persistTimer);
      this.persistTimer = undefined;
    }
    this.housekeep();
    await this.housekeeping;
    await this.persist();
    const slots = this.slots;
    this.slots = undefined;
    await slots?.close().catch(() => undefined);
  }
}
