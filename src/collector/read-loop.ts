import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import type { CollectorMetrics } from '../telemetry/collector-metrics.js';
import type { Clock } from '../util/clock.js';
import { HASH_WINDOW } from './file-identity.js';
import { IdleSchedule } from './idle-schedule.js';
import type { FileTailer, TailSink } from './tail-file.js';

/** The read buffer: large reads, and always room for one longest line plus the truncation check. */
const READ_BUFFER_BYTES = 1024 * 1024;
/**
 * The smallest read while the in-flight budget is nearly used up: reads stay efficient, and the
 * overshoot stays far below one read (min(1 MiB, COLLECTOR_MAX_INFLIGHT_BYTES), at least 64 KiB).
 */
const MIN_READ_BYTES = 16 * 1024;

export interface ReadLoopDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: CollectorMetrics;
  /** COLLECTOR_POLL_INTERVAL: how long an idle file is not read again (unless a change event names it). */
  readonly pollIntervalMs: number;
  /** COLLECTOR_POLL_MAX_INTERVAL: the longest wait a file idle for a while backs off to. */
  readonly pollMaxIntervalMs: number;
  /** COLLECTOR_MAX_INFLIGHT_BYTES. */
  readonly maxInflightBytes: number;
  /** COLLECTOR_MAX_LINE_BYTES (sizes the read buffer). */
  readonly maxLineBytes: number;
  /** Open tailers by `dev:ino` (the opener adds them, `finish` removes them). */
  readonly tailers: Map<string, FileTailer>;
  /** Bytes read and not acknowledged yet (open chunk, queued and unacknowledged chunks). */
  inflightBytes(): number;
  /** Reading waits (the in-flight budget or the chunk queue is full). */
  paused(): boolean;
  /** The tailer's file was truncated: start a new generation. */
  truncated(tailer: FileTailer): void;
  /** The tailer is done (read to its end after a rotation, or unreadable): close it. */
  finish(key: string, tailer: FileTailer): Promise<void>;
}

/**
 * The read loop (the pump): reads one buffer from each file in turn (fair across files) while
 * reading is not paused; a file found idle is read again after COLLECTOR_POLL_INTERVAL, backing off to
 * COLLECTOR_POLL_MAX_INTERVAL while it stays idle, or at once when a change event names it (`touch`).
 * When a pass finds nothing to read, the open chunk is sealed at once. While paused, the truncation
 * checks still run, at most once per poll interval and per file on the same backoff.
 */
export class ReadLoop {
  private readonly readBuf: Buffer;
  /** Most bytes one read may take: one read buffer, never more than the in-flight bound. */
  private readonly readCap: number;
  private running = false;
  private done: Promise<void> = Promise.resolve();
  private wakeUp: (() => void) | undefined;
  /** wake() came while no sleep was under way: the next sleep returns at once. */
  private wakePending = false;
  private inflightPeak = 0;
  /** When each idle file is read again (unless a change event names its path). */
  private readonly reads: IdleSchedule<FileTailer>;
  /** When each file's truncation checks run again while reading is paused. */
  private readonly pausedChecks: IdleSchedule<FileTailer>;
  private lastPausedPass = Number.NEGATIVE_INFINITY;
  /** Paths named by change events since the last pass. */
  private touched = new Set<string>();

  constructor(private readonly deps: ReadLoopDeps) {
    this.readBuf = Buffer.allocUnsafe(Math.max(READ_BUFFER_BYTES, deps.maxLineBytes + HASH_WINDOW + 2));
    this.readCap = Math.min(READ_BUFFER_BYTES, deps.maxInflightBytes);
    this.reads = new IdleSchedule(deps.pollIntervalMs, deps.pollMaxIntervalMs);
    this.pausedChecks = new IdleSchedule(deps.pollIntervalMs, deps.pollMaxIntervalMs);
  }

  /** Starts reading into `sink` (the open chunk; sealed when every file is read to its end). */
  start(sink: TailSink): void {
    this.running = true;
    this.done = this.pump(sink).catch((err: unknown) => this.deps.log.error({ err: errorMessage(err) }, 'tailing loop failed'));
  }

  /** Ends the loop after the step under way. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.done;
  }

  /** A change event named `path` (or none): look now. */
  touch(path: string | undefined): void {
    if (path !== undefined) this.touched.add(path);
    this.wake();
  }

  /**
   * Ends the current sleep (new files, acknowledgements, change events). Called while a pass is under
   * way, the next sleep is skipped instead: the pass took its list of files and its events when it
   * began, so a file opened or named meanwhile waited a whole COLLECTOR_POLL_INTERVAL (with a long
   * interval, a new file after a rename + create was not read for a minute).
   */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    if (w === undefined) this.wakePending = true;
    else w();
  }

  /** Records a new high of the in-flight bytes (the mega_collector_inflight_peak_bytes gauge). */
  notePeak(): void {
    const now = this.deps.inflightBytes();
    if (now <= this.inflightPeak) return;
    this.inflightPeak = now;
    this.deps.metrics.inflightPeakBytes.set(now);
  }

  private sleep(ms: number): Promise<void> {
    if (this.wakePending) {
      this.wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = this.deps.clock.setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      this.wakeUp = () => {
        this.deps.clock.clearTimeout(timer);
        resolve();
      };
    });
  }

  private async pump(sink: TailSink): Promise<void> {
    const { clock, log, metrics, tailers, pollIntervalMs } = this.deps;
    while (this.running) {
      let progressed = false;
      // While one busy file always has data the loop does not sleep: without the idle times, every
      // idle file (hundreds of deleted ones draining, with files churning) was read and stat'ed on
      // every pass, which starved the event loop that discovery needs.
      const now = clock.now();
      const touched = this.touched;
      this.touched = new Set();
      let stoppedEarly = false;
      for (const [key, tailer] of [...tailers]) {
        if (!this.running || this.deps.paused()) {
          stoppedEarly = true;
          break;
        }
        if (touched.has(tailer.path)) this.reads.active(tailer);
        else if (!this.reads.due(tailer, now)) continue;
        let result;
        try {
          result = await tailer.step(sink, this.readBuf, this.readLimit());
        } catch (err) {
          log.error({ path: tailer.path, err: errorMessage(err) }, 'read failed; closing the file (its checkpoint is kept)');
          await this.deps.finish(key, tailer);
          continue;
        }
        if (log.isLevelEnabled('trace')) log.trace({ path: tailer.path, fileId: tailer.cursor.fileId, result, readOffset: tailer.cursor.readOffset, state: tailer.state }, 'step');
        if (result.lines > 0) {
          metrics.linesRead.inc({ path: tailer.cursor.path }, result.lines);
          metrics.bytesRead.inc({ path: tailer.cursor.path }, result.bytes);
        }
        if (result.splitPieces > 0) metrics.linesSplit.inc(result.splitPieces);
        this.notePeak();
        if (result.status === 'idle') this.reads.idle(tailer, now, tailer.nextDeadlineMs(clock.now()));
        else this.reads.active(tailer);
        if (result.status === 'data') progressed = true;
        else if (result.status === 'truncated') {
          this.deps.truncated(tailer);
          progressed = true;
        } else if (result.status === 'finished') await this.deps.finish(key, tailer);
      }
      if (!progressed && !this.deps.paused()) {
        // Every file is read to its end: waiting for COLLECTOR_BUFFER_TIMEOUT would only add latency,
        // since nothing more is there to fill the chunk. Under load, chunks still fill to
        // COLLECTOR_BUFFER_MAX_BYTES because a pass always finds more to read.
        sink.seal();
      }
      // Events for files the pass did not reach (reading paused) are kept for the next one.
      if (stoppedEarly) for (const path of touched) this.touched.add(path);
      if (this.deps.paused() && clock.now() - this.lastPausedPass >= pollIntervalMs) {
        this.lastPausedPass = clock.now();
        await this.checkPaused(touched);
      }
      if (!progressed || this.deps.paused()) await this.sleep(pollIntervalMs);
    }
  }

  /**
   * How much the next read may take: what is left of the in-flight budget (at least MIN_READ_BYTES,
   * at most one read buffer). The budget is checked before each read, so it holds to within one
   * read; a line longer than the limit is still read whole (the tailer widens the read for it).
   */
  private readLimit(): number {
    return Math.min(this.readCap, Math.max(MIN_READ_BYTES, this.deps.maxInflightBytes - this.deps.inflightBytes()));
  }

  /**
   * While reading is paused, the truncation checks still run (size, first bytes, bytes before the
   * offset), so a truncation is seen, and its rotated copy found, while it happens: at most once per
   * poll interval, and for each file on its own backoff unless a change event named it (a truncation
   * is a change). On every acknowledgement (each wakes the loop) they checked every file: with 1,000
   * files, three reads and stats each, several thousand a second while the collector was busiest.
   */
  private async checkPaused(touched: ReadonlySet<string>): Promise<void> {
    const now = this.deps.clock.now();
    for (const tailer of [...this.deps.tailers.values()]) {
      if (!this.running) return;
      if (touched.has(tailer.path)) this.pausedChecks.active(tailer);
      else if (!this.pausedChecks.due(tailer, now)) continue;
      const result = await tailer.check().catch(() => 'ok' as const);
      if (result === 'truncated') {
        this.pausedChecks.active(tailer);
        this.deps.truncated(tailer);
      } else this.pausedChecks.idle(tailer, now);
    }
  }
}
