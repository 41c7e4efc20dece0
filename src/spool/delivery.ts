import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { comparePositions, writeDelivered } from './delivered-file.js';
import type { FreeSpace } from './free-space.js';
import { reclaimActive } from './reclaim-active.js';
import { SEGMENT_HEADER_BYTES, segmentFileName } from './segment-format.js';
import { fullyDelivered } from './segment-index.js';
import type { SegmentIndex } from './segment-index.js';
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
  /** The spool is closing: no new persist timer, no reclaim. */
  readonly isClosed: () => boolean;
}

/**
 * The delivered position: moved forward by `mark` (never back, never past what is durable), persisted
 * atomically at most every ~200 ms and on close, and the housekeeping that follows it: sealed segments
 * fully delivered are deleted, and a fully delivered active segment is released when space runs short.
 */
export class Delivery {
  private delivered: DeliveredPosition;
  private persisted: DeliveredPosition;
  private persistTimer: TimerHandle | undefined;
  private persisting: Promise<void> = Promise.resolve();
  private housekeeping: Promise<void> = Promise.resolve();

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
        await writeDelivered(this.o.dir, p);
        this.persisted = p;
      } catch (err) {
        this.o.log.error({ dir: this.o.dir, err: errorMessage(err) }, 'spool: cannot persist the delivered position; will retry');
      }
    });
    return this.persisting;
  }

  /** Deletes sealed segments that are fully delivered (queued after earlier housekeeping). */
  housekeep(): void {
    this.housekeeping = this.housekeeping.then(async () => {
      let freed = false;
      for (const seg of this.o.index.all()) {
        if (!seg.sealed || !fullyDelivered(seg, this.delivered)) break;
        this.o.index.detach(seg);
        try {
          await rm(join(this.o.dir, segmentFileName(seg.number)), { force: true });
          this.o.index.deleted(seg);
          freed = true;
        } catch (err) {
          this.o.index.reattach(seg);
          this.o.log.error({ dir: this.o.dir, segment: seg.number, err: errorMessage(err) }, 'spool: cannot delete a delivered segment');
          break;
        }
      }
      if (freed) await this.o.freeSpace?.refresh();
    });
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
    if (this.persistTimer !== undefined) {
      this.o.clock.clearTimeout(this.persistTimer);
      this.persistTimer = undefined;
    }
    this.housekeep();
    await this.housekeeping;
    await this.persist();
  }
}
