import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import type { CollectorMetrics } from '../telemetry/collector-metrics.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { CheckpointStore } from './checkpoint-store.js';
import type { FileCursor } from './file-cursor.js';
import { FileRegistry } from './file-registry.js';

export interface CheckpointWriterDeps {
  readonly store: CheckpointStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: CollectorMetrics;
  /** COLLECTOR_CHECKPOINT_INTERVAL. */
  readonly intervalMs: number;
  /** The cursors tailed now. */
  active(): Iterable<FileCursor>;
  /** The retired cursors still remembered. */
  retired(): Iterable<FileCursor>;
}

/**
 * Writes the per-file checkpoints: every COLLECTOR_CHECKPOINT_INTERVAL when something changed
 * (`markDirty()`), at once when asked (`save()`), and once more at shutdown. One write at a time; a
 * failed write is counted, logged and retried at the next one, never thrown. The timer runs only while
 * something waits to be written: an idle collector is not woken ten times a second for nothing.
 */
export class CheckpointWriter {
  private dirty = false;
  private saving: Promise<void> | undefined;
  private timer: TimerHandle | undefined;
  private running = false;

  constructor(private readonly deps: CheckpointWriterDeps) {}

  /** Something a checkpoint records changed: the next periodic write writes it. */
  markDirty(): void {
    this.dirty = true;
    if (this.running && this.timer === undefined) this.schedule();
  }

  /** Starts the periodic writes. */
  start(): void {
    this.running = true;
    if (this.dirty) this.schedule();
  }

  /** Stops the periodic writes (a write under way finishes; `save()` still works). */
  stop(): void {
    this.running = false;
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = this.deps.clock.setTimeout(() => {
      void this.save().finally(() => {
        // Changed again meanwhile, or the write failed (dirty again): the next write, an interval on.
        this.timer = undefined;
        if (this.running && this.dirty) this.schedule();
      });
    }, this.deps.intervalMs);
    this.timer.unref();
  }

  /**
   * Writes the checkpoints if anything changed, with `extra` cursors (not tailed yet) too; never throws
   * (a failed write is retried next time).
   */
  async save(extra: readonly FileCursor[] = []): Promise<void> {
    // Another caller may have started a write while this one waited: wait for that one too. A caller
    // with `extra` cursors always writes (a write it waited for did not include them).
    while (this.saving !== undefined) await this.saving;
    if (!this.dirty && extra.length === 0) return;
    this.dirty = false;
    const { store, metrics, log } = this.deps;
    const records = [...this.deps.active(), ...extra, ...this.deps.retired()].map((c) => FileRegistry.toRecord(c));
    this.saving = store
      .save(records)
      .then(() => metrics.checkpointWrites.inc())
      .catch((err: unknown) => {
        this.dirty = true;
        metrics.checkpointErrors.inc();
        log.error({ err: errorMessage(err) }, 'checkpoint write failed; will retry');
      })
      .finally(() => {
        this.saving = undefined;
      });
    await this.saving;
  }
}
