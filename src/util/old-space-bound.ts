import { getHeapSpaceStatistics } from 'node:v8';
import type { Clock, TimerHandle } from './clock.js';

/**
 * Keeps V8's old space within `slackBytes` of what the last full collection left live, by running a
 * full (mark-compact) collection when it grows past that.
 *
 * Why: the collector's data path allocates little that lives, but what lives across two scavenges
 * (chunks awaiting their ack, HTTP/2 frames, GC performance entries) is promoted, and V8 collects the
 * old space only when it reaches a limit set at least ~8 MiB above the live size. A 10M-line run never
 * reaches it: the old space filled with dead objects the whole run, so the peak RSS grew with the input
 * (75 MiB at 1M lines, 83 at 10M). With the bound, a full collection of the ~10 MiB heap (~10 ms)
 * runs about every 3M lines at full speed and never while idle (bench/README.md, "Collector: a bounded
 * old space").
 *
 * A collection that frees little moves the baseline up (live data that grew, e.g. more files tailed),
 * so live growth never makes it collect over and over; at most one collection per `minIntervalMs`.
 */
export interface OldSpaceBoundOptions {
  readonly clock: Clock;
  /** A full collection runs when the old space's used bytes exceed the baseline by more than this. */
  readonly slackBytes: number;
  /** How often the old space is looked at. */
  readonly checkEveryMs: number;
  /** Fewest milliseconds between two collections. */
  readonly minIntervalMs: number;
  /** Runs a full collection, synchronously. */
  readonly collect: () => void;
  /** Used bytes of the old space (default: V8's heap space statistics). */
  readonly oldSpaceUsed?: () => number;
  /** Told of each collection: used bytes before and after. */
  readonly onCollect?: (usedBefore: number, usedAfter: number) => void;
}

export class OldSpaceBound {
  private readonly used: () => number;
  private baseline: number | undefined;
  private lastCollectNs: bigint | undefined;
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly options: OldSpaceBoundOptions) {
    if (!(options.slackBytes > 0) || !(options.checkEveryMs > 0) || !(options.minIntervalMs >= 0)) {
      throw new RangeError('OldSpaceBound: slackBytes and checkEveryMs must be positive, minIntervalMs at least 0');
    }
    this.used = options.oldSpaceUsed ?? v8OldSpaceUsed;
  }

  /** Starts looking every `checkEveryMs` (the timer does not keep the process alive). */
  start(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.schedule();
  }

  /** Stops looking; idempotent. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One look: collects when the old space is past its bound. Returns whether it collected. */
  check(): boolean {
    const used = this.used();
    if (this.baseline === undefined || used < this.baseline) {
      // The first look, or V8 collected by itself since: what is used now is the floor to grow from.
      this.baseline = used;
      return false;
    }
    if (used - this.baseline <= this.options.slackBytes) return false;
    const now = this.options.clock.monotonicNs();
    if (this.lastCollectNs !== undefined && now - this.lastCollectNs < BigInt(Math.round(this.options.minIntervalMs * 1e6))) return false;
    this.options.collect();
    this.lastCollectNs = now;
    const after = this.used();
    this.baseline = after;
    this.options.onCollect?.(used, after);
    return true;
  }

  private schedule(): void {
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      this.check();
      this.schedule();
    }, this.options.checkEveryMs);
    this.timer.unref();
  }
}

/** Used bytes of V8's old space. */
export function v8OldSpaceUsed(): number {
  for (const space of getHeapSpaceStatistics()) if (space.space_name === 'old_space') return space.space_used_size;
  return 0;
}

/**
 * V8's full collection, when node was started with `--expose-gc` (the collector's first line), else
 * undefined. Called without arguments: on Node 20, `gc({ type: 'major' })` left promoted garbage in
 * place (12.5 MiB before and after), `gc()` freed it (12.5 → 3.1 MiB). Not set up at run time
 * (`v8.setFlagsFromString('--expose-gc')` and a new context's `gc`): the context stays alive with the
 * function, and the collector's peak was 2 MiB higher with it.
 */
export function exposedMajorGc(): (() => void) | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? () => (gc as () => void)() : undefined;
}
