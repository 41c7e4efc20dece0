// About 500 lines: the batcher is three loops (read and cut, emit, take confirmations) over one shared
// state (the open, ready, in-flight and unconfirmed batches and the delivered position they end at);
// split apart, each would need that state passed around and the invariants would no longer read in one
// place. Retrying is src/retry's, batches are views (src/emitters/record-batch.ts).
import { emitVerdict } from '../emitters/emit-verdict.js';
import type { Batch, Confirmation, EmitResult, Emitter } from '../emitters/emitter.js';
import { RecordBatch } from '../emitters/record-batch.js';
import type { RecordView } from '../emitters/record-batch.js';
import { ErrorCode, McError, errorMessage } from '../errors.js';
import type { BackoffPolicy } from '../retry/backoff.js';
import { KEEP, retry } from '../retry/retry.js';
import type { Outcome, Verdict } from '../retry/retry.js';
import type { SpoolPort } from '../spool/spool-port.js';
import type { Logger } from '../telemetry/logger.js';
import { systemClock } from '../util/clock.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { encodeEntries, lineSpans } from '../wire/entry-batch.js';
import type { Entry } from '../wire/entry-batch.js';

// The spool as the batcher sees it: SpoolPort and the types it speaks, nothing else.
type SpoolReader = ReturnType<SpoolPort['reader']>;
type SpoolRecord = Awaited<ReturnType<SpoolReader['next']>>;
type DeliveredPosition = Parameters<SpoolPort['markDelivered']>[0];

export type BatchCause = 'size' | 'time' | 'drain';

/** One emit attempt, for metrics. */
export interface BatchEvent {
  readonly batch: Batch;
  readonly result: EmitResult;
  readonly durationMs: number;
  readonly cause: BatchCause;
}

export interface BatcherOptions {
  readonly spool: SpoolPort;
  /** Usually the retrying decorator; may still return retryable (e.g. when aborted). */
  readonly emitter: Emitter;
  /** AGGREGATOR_MAX_BATCH_SIZE (entries). */
  readonly maxBatchSize: number;
  /**
   * AGGREGATOR_MAX_BATCH_BYTES: most line bytes in one batch (cut at maxBatchSize entries or at this,
   * whichever comes first; a longer line goes alone). Default: no bound.
   */
  readonly maxBatchBytes?: number;
  /** AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: longest a non-empty batch waits for more entries. */
  readonly maxDelayMs: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Called after every emit attempt (for metrics). */
  readonly onBatch?: (event: BatchEvent) => void;
  /**
   * Most batches emitted and awaiting their emitter's confirmation (see EmitResult.confirmed) before
   * the next emit waits; default 1024. Each holds only its end position, not its entries.
   */
  readonly maxUnconfirmed?: number;
}

export interface BatcherStats {
  /** Batches confirmed by the emitter (ok or fatal with the rejected part dead-lettered). */
  readonly batches: number;
  /** Entries confirmed (including dead-lettered ones). */
  readonly entries: number;
  /** Entries moved to the dead-letter file. */
  readonly deadLettered: number;
  /** Entries read from the spool and not yet confirmed (open, cut, in-flight and unconfirmed batches). */
  readonly pending: number;
  /** Entries emitted and awaiting the emitter's confirmation. */
  readonly unconfirmed: number;
}

/** Wait before offering a batch again after a retryable result without retryAfterMs. */
const DEFAULT_RETRY_MS = 100;
/** Wait before reading the spool or writing a dead letter again after an I/O error. */
const IO_RETRY_MS = 1000;

/**
 * The batcher's waits are fixed, not backed off (the retrying emitter it usually wraps does the
 * backing off): a policy whose every delay is `ms`, whatever the random draw.
 */
const fixedDelay = (ms: number): BackoffPolicy => ({ initialDelayMs: ms, maxDelayMs: ms });
const NO_JITTER = (): number => 0;

function isSpoolClosed(err: unknown): boolean {
  return err instanceof McError && err.code === ErrorCode.SpoolClosed;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const NO_LOG: Log = { info: () => undefined, warn: () => undefined, error: () => undefined };

interface PendingBatch {
  /** The entries, as views over the spool records they are in (not decoded). */
  readonly views: RecordView[];
  count: number;
  /** Line bytes of the entries (for maxBatchBytes). */
  bytes: number;
  /** Delivered position once every entry of this batch is confirmed. */
  end: DeliveredPosition;
  cause: BatchCause;
}

/** An emitted batch whose emitter confirms later; its entries are already released. */
interface Unconfirmed {
  readonly batch: PendingBatch;
  readonly entries: number;
  readonly deadLettered: number;
  readonly confirmed: Confirmation;
}

const DEFAULT_MAX_UNCONFIRMED = 1024;

/**
 * Most line bytes, and batches, handed over in one emit when the emitter joins the batches that are
 * ready together (Emitter.joinsBatches), whatever AGGREGATOR_MAX_BATCH_BYTES (1 MiB by default, the
 * usual bound) says: a record of 1 MiB cut into batches of 1000 120-byte lines goes out as one write
 * instead of nine, each with its own write, path check and confirmation.
 */
const JOINED_BYTES = 4 * 1024 * 1024;
const JOINED_BATCHES = 64;

/**
 * Reads the spool in order and hands batches to the emitter: a batch is cut when it holds
 * `maxBatchSize` entries or `maxBatchBytes` of line bytes, or `maxDelayMs` after its first entry
 * arrived, whichever comes first. One
 * emit is in flight at a time (order), while the next batch fills; an emitter whose output a batch
 * leaves no mark on (Emitter.joinsBatches: file, text, blackhole) gets the batches ready at that
 * moment joined into one (joinReady); the spool's delivered position
 * moves only after the emitter confirms. An emitter that confirms after emit returns (a result with
 * `confirmed`) gets the next batches meanwhile, up to maxUnconfirmed; confirmations are taken in emit
 * order, and the delivered position follows them. Reading pauses while a full batch waits for the
 * emitter, so memory stays bounded by about two batches (plus one spool record). A batch is views
 * over the spool records it spans (record bytes and an entry range): records are walked to count and
 * check their entries, never decoded here; emitters decode only what they need.
 */
export class Batcher {
  private readonly spool: SpoolPort;
  private readonly emitter: Emitter;
  private readonly maxBatchSize: number;
  private readonly maxBatchBytes: number;
  private readonly maxDelayMs: number;
  private readonly clock: Clock;
  private readonly log: Log;
  private readonly onBatch: ((event: BatchEvent) => void) | undefined;

  private open: PendingBatch | undefined;
  private openTimer: TimerHandle | undefined;
  private readonly ready: PendingBatch[] = [];
  private inFlight: PendingBatch | undefined;
  private readonly unconfirmed: Unconfirmed[] = [];
  private readonly maxUnconfirmed: number;
  private unconfirmedEntries = 0;
  /** The emit loop has ended: nothing more will be added to unconfirmed. */
  private emitDone = false;
  /** Wakes the confirm loop (a batch awaits confirmation, or emitting ended). */
  private wakeConfirmer: (() => void) | undefined;
  /** Wakes the emit loop waiting for room among the unconfirmed batches. */
  private wakeForRoom: (() => void) | undefined;
  private confirmLoopDone: Promise<void> = Promise.resolve();
  private nextId = 1;
  private started = false;
  private stopping = false;
  /** The read loop has ended: nothing more will be added to open or ready. */
  private readDone = false;
  private readonly readAbort = new AbortController();
  private readonly emitAbort = new AbortController();
  /** Wakes the emit loop (a batch became ready, or stopping). */
  private wakeEmitter: (() => void) | undefined;
  /** Wakes the read loop (the ready queue drained, or stopping). */
  private wakeReader: (() => void) | undefined;
  private readLoopDone: Promise<void> = Promise.resolve();
  private emitLoopDone: Promise<void> = Promise.resolve();
  private stopped: Promise<void> | undefined;
  private batches = 0;
  private entries = 0;
  private deadLettered = 0;

  constructor(options: BatcherOptions) {
    if (!Number.isSafeInteger(options.maxBatchSize) || options.maxBatchSize < 1) {
      throw new McError(ErrorCode.Config, `maxBatchSize must be a positive integer, got ${options.maxBatchSize}`);
    }
    if (options.maxBatchBytes !== undefined && !(options.maxBatchBytes >= 1)) {
      throw new McError(ErrorCode.Config, `maxBatchBytes must be at least 1, got ${options.maxBatchBytes}`);
    }
    if (!(options.maxDelayMs >= 0)) throw new McError(ErrorCode.Config, `maxDelayMs must be >= 0, got ${options.maxDelayMs}`);
    this.spool = options.spool;
    this.emitter = options.emitter;
    this.maxBatchSize = options.maxBatchSize;
    this.maxBatchBytes = options.maxBatchBytes ?? Number.POSITIVE_INFINITY;
    this.maxDelayMs = options.maxDelayMs;
    this.clock = options.clock ?? systemClock;
    this.log = options.logger ?? NO_LOG;
    this.onBatch = options.onBatch;
    this.maxUnconfirmed = Math.max(1, options.maxUnconfirmed ?? DEFAULT_MAX_UNCONFIRMED);
  }

  /** Starts reading the spool from its delivered position and emitting. Call once. */
  start(): void {
    if (this.started) throw new Error('Batcher already started');
    this.started = true;
    const reader = this.spool.reader();
    this.readLoopDone = this.readLoop(reader);
    this.emitLoopDone = this.emitLoop().finally(() => {
      this.emitDone = true;
      this.wakeConfirmer?.();
    });
    this.confirmLoopDone = this.confirmLoop();
  }

  /**
   * Stops reading new records; emits what is already buffered within `deadlineMs` (then aborts the
   * in-flight emit via its AbortSignal); leaves the rest in the spool (it is emitted again after a
   * restart); resolves when idle. Idempotent.
   */
  stop(deadlineMs: number): Promise<void> {
    this.stopped ??= this.doStop(deadlineMs);
    return this.stopped;
  }

  private async doStop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    // The deadline counts from the call, not from when reading has wound down.
    const deadline = this.clock.setTimeout(() => {
      this.emitAbort.abort(new McError(ErrorCode.ShuttingDown, `batcher stop deadline of ${deadlineMs} ms passed`));
      this.wakeEmitter?.();
      this.wakeForRoom?.();
      this.wakeConfirmer?.();
    }, deadlineMs);
    this.readAbort.abort(new McError(ErrorCode.ShuttingDown, 'batcher stopping'));
    this.wakeReader?.();
    await this.readLoopDone;
    this.cutOpen('drain');
    this.wakeEmitter?.();
    await this.emitLoopDone;
    // Confirmations still due are awaited within the same deadline; what is unconfirmed then stays
    // in the spool and is emitted again after a restart.
    await this.confirmLoopDone;
    this.clock.clearTimeout(deadline);
  }

  stats(): BatcherStats {
    let pending = (this.open?.count ?? 0) + (this.inFlight?.count ?? 0) + this.unconfirmedEntries;
    for (const b of this.ready) pending += b.count;
    return { batches: this.batches, entries: this.entries, deadLettered: this.deadLettered, pending, unconfirmed: this.unconfirmedEntries };
  }

  // ---- reading ----

  private async readLoop(reader: SpoolReader): Promise<void> {
    try {
      await this.readRecords(reader);
    } finally {
      this.readDone = true;
    }
  }

  private async readRecords(reader: SpoolReader): Promise<void> {
    while (!this.stopping) {
      // Back pressure: while a cut batch waits for the emitter, do not read further.
      while (this.ready.length > 0 && !this.stopping) {
        await new Promise<void>((r) => {
          this.wakeReader = r;
        });
        this.wakeReader = undefined;
      }
      if (this.stopping) break;
      let record: SpoolRecord;
      try {
        // An I/O error reading the spool: the reader's cursor has not moved, so try the same record
        // again later rather than give up on delivery (or spin).
        record = await this.retryIo(
          () => reader.next(this.readAbort.signal),
          this.readAbort.signal,
          'reading the spool failed; retrying in 1 s',
          (err) => this.stopping || isSpoolClosed(err),
        );
      } catch (err) {
        if (this.stopping) break;
        if (isSpoolClosed(err)) this.log.warn({}, 'batcher: spool closed under the reader; stopping reading');
        else this.log.error({ err: errorMessage(err) }, 'batcher: reading the spool failed; stopping reading');
        break;
      }
      try {
        await this.addRecord(record);
      } catch (err) {
        // Only a dead-letter write cut short by stop() ends here.
        if (!this.stopping) this.log.error({ err: errorMessage(err) }, 'batcher: read loop failed');
        break;
      }
    }
  }

  /**
   * Runs `io` until it succeeds, every IO_RETRY_MS after a failure (logged), unless the failure is
   * final (`final`) or `signal` aborts the wait: then the error is thrown.
   */
  private retryIo<T>(io: () => Promise<T>, signal: AbortSignal, failed: string, final: (err: unknown) => boolean = () => false): Promise<T> {
    return retry(io, {
      policy: fixedDelay(IO_RETRY_MS),
      clock: this.clock,
      random: NO_JITTER,
      signal,
      classify: (o: Outcome<T>): Verdict => (o.ok || final(o.error) ? KEEP : { retry: true, error: asError(o.error) }),
      onFailure: (f) => {
        this.log.error({ err: f.error.message }, `batcher: ${failed}`);
      },
    });
  }

  private async addRecord(record: SpoolRecord): Promise<void> {
    let spans: Uint32Array;
    try {
      // Walked, not decoded: emitters decode (or copy the line bytes, by these spans, of) the views
      // they get; the one walk here checks what decoding would and finds every line's bytes. A record
      // handed over from memory brings the spans its admission scan found (that scan checked it).
      spans = record.spans ?? lineSpans(record.data, record.entryCount);
    } catch (err) {
      // Passed its checksum but does not decode: no emitter can ever take it. Keep it, then move on.
      const reason = `undecodable spool record at segment ${record.position.segment} offset ${record.position.offset}: ${errorMessage(err)}`;
      this.log.error({ position: record.position }, `batcher: ${reason}`);
      // Kept before the reader moves past it; when stopping, it stays in the spool for the next start.
      await this.retryIo(() => this.spool.deadLetter([record.data], reason), this.readAbort.signal, 'cannot write the dead-letter file; retrying', () => this.stopping);
      this.attachEnd({ ...record.next, entry: 0 });
      return;
    }
    const count = spans.length / 2;
    if (count !== record.entryCount) {
      this.log.warn({ position: record.position, header: record.entryCount, decoded: count }, 'batcher: entry count mismatch');
    }
    let i = Math.min(record.skipEntries, count);
    if (i === count) {
      this.attachEnd({ ...record.next, entry: 0 });
      return;
    }
    while (i < count) {
      if (this.open === undefined) {
        this.open = { views: [], count: 0, bytes: 0, end: { ...record.position, entry: i }, cause: 'time' };
        const batch = this.open;
        this.openTimer = this.clock.setTimeout(() => {
          if (this.open === batch) this.cutOpen('time');
        }, this.maxDelayMs);
      }
      const open = this.open;
      const room = Math.min(this.maxBatchSize - open.count, count - i);
      // Entries while their line bytes fit (the first of a batch always does).
      let take = 0;
      let bytes = open.bytes;
      while (take < room) {
        const k = 2 * (i + take);
        const len = (spans[k + 1] as number) - (spans[k] as number);
        if (bytes + len > this.maxBatchBytes && open.count + take > 0) break;
        bytes += len;
        take++;
      }
      if (take > 0) {
        open.views.push({ data: record.data, from: i, to: i + take, spans });
        open.count += take;
        open.bytes = bytes;
        i += take;
        open.end = i === count ? { ...record.next, entry: 0 } : { ...record.position, entry: i };
      }
      if (open.count >= this.maxBatchSize || take < room) this.cutOpen('size');
    }
  }

  /** A record with nothing to emit: its end becomes the end of the latest pending batch, or is delivered now. */
  private attachEnd(end: DeliveredPosition): void {
    const latest = this.open ?? this.ready[this.ready.length - 1] ?? this.inFlight ?? this.unconfirmed[this.unconfirmed.length - 1]?.batch;
    if (latest !== undefined) latest.end = end;
    else this.spool.markDelivered(end);
  }

  private cutOpen(cause: BatchCause): void {
    const open = this.open;
    if (open === undefined) return;
    this.open = undefined;
    if (this.openTimer !== undefined) {
      this.clock.clearTimeout(this.openTimer);
      this.openTimer = undefined;
    }
    if (open.count === 0) {
      this.attachEnd(open.end);
      return;
    }
    open.cause = cause;
    this.ready.push(open);
    this.wakeEmitter?.();
  }

  // ---- emitting ----

  private async emitLoop(): Promise<void> {
    for (;;) {
      if (this.emitAbort.signal.aborted) return;
      const next = this.ready.shift();
      if (next === undefined) {
        if (this.stopping && this.readDone && this.open === undefined) return;
        await new Promise<void>((r) => {
          this.wakeEmitter = r;
        });
        this.wakeEmitter = undefined;
        continue;
      }
      if (this.emitter.joinsBatches === true) this.joinReady(next);
      this.wakeReader?.();
      this.inFlight = next;
      try {
        await this.waitForRoom();
        const { deadLettered, confirmed } = await this.deliver(next);
        this.settle(next, deadLettered, confirmed);
      } catch (err) {
        if (!this.emitAbort.signal.aborted) this.log.error({ err: errorMessage(err) }, 'batcher: emit loop failed');
        return;
      } finally {
        this.inFlight = undefined;
      }
    }
  }

  /**
   * Appends to `first` the batches ready behind it, in order, within JOINED_BYTES (and
   * AGGREGATOR_MAX_BATCH_BYTES when set lower) and JOINED_BATCHES: for an emitter that joins batches.
   * Views of one record that meet are merged into one.
   */
  private joinReady(first: PendingBatch): void {
    const maxBytes = Math.min(JOINED_BYTES, this.maxBatchBytes);
    for (let joined = 1; joined < JOINED_BATCHES; joined++) {
      const next = this.ready[0];
      if (next === undefined || first.bytes + next.bytes > maxBytes) return;
      this.ready.shift();
      for (const v of next.views) {
        const last = first.views[first.views.length - 1];
        if (last !== undefined && last.data === v.data && last.to === v.from) first.views[first.views.length - 1] = { ...last, to: v.to };
        else first.views.push(v);
      }
      first.count += next.count;
      first.bytes += next.bytes;
      first.end = next.end;
    }
  }

  /** Waits while maxUnconfirmed batches await confirmation; throws only when aborted. */
  private async waitForRoom(): Promise<void> {
    while (this.unconfirmed.length >= this.maxUnconfirmed) {
      this.emitAbort.signal.throwIfAborted();
      await new Promise<void>((r) => {
        this.wakeForRoom = r;
      });
      this.wakeForRoom = undefined;
    }
  }

  /**
   * A batch the emitter took: confirmed now when it needs no later confirmation and none is due
   * before it, else queued for the confirm loop (which keeps emit order).
   */
  private settle(pending: PendingBatch, deadLettered: number, confirmed: Confirmation | undefined): void {
    if (confirmed === undefined && this.unconfirmed.length === 0) {
      this.confirm(pending, pending.count, deadLettered);
      return;
    }
    const entries = pending.count;
    // The emitter has what it needs: only the end position is kept (attachEnd may still move it).
    const batch: PendingBatch = { views: [], count: 0, bytes: 0, end: pending.end, cause: pending.cause };
    this.unconfirmed.push({ batch, entries, deadLettered, confirmed: confirmed ?? Promise.resolve(true) });
    this.unconfirmedEntries += entries;
    this.wakeConfirmer?.();
  }

  /** Takes confirmations in emit order and moves the delivered position with them. */
  private async confirmLoop(): Promise<void> {
    const aborted = new Promise<false>((resolve) => {
      if (this.emitAbort.signal.aborted) resolve(false);
      else this.emitAbort.signal.addEventListener('abort', () => resolve(false), { once: true });
    });
    for (;;) {
      const head = this.unconfirmed[0];
      if (head === undefined) {
        if (this.emitDone || this.emitAbort.signal.aborted) return;
        await new Promise<void>((r) => {
          this.wakeConfirmer = r;
        });
        this.wakeConfirmer = undefined;
        continue;
      }
      const ok = await Promise.race([head.confirmed.catch(() => false), aborted]);
      if (!ok) {
        this.log.warn(
          { batches: this.unconfirmed.length, entries: this.unconfirmedEntries },
          'batcher: emitted batches were not confirmed; they stay in the spool and are emitted again after a restart',
        );
        return;
      }
      this.unconfirmed.shift();
      this.unconfirmedEntries -= head.entries;
      this.confirm(head.batch, head.entries, head.deadLettered);
      this.wakeForRoom?.();
    }
  }

  /**
   * Emits one batch until the emitter takes it (ok or fatal, with the rejected entries dead-lettered);
   * throws only when aborted. A retryable result is offered again after its retryAfterMs (the
   * emitter's own word, even below the default) or DEFAULT_RETRY_MS.
   */
  private async deliver(pending: PendingBatch): Promise<{ deadLettered: number; confirmed: Confirmation | undefined }> {
    const batch: Batch = new RecordBatch(this.nextId++, pending.views);
    const signal = this.emitAbort.signal;
    signal.throwIfAborted();
    let retryAfterMs: number | undefined;
    const result = await retry(
      async () => {
        const r = await this.emitOnce(batch, pending.cause);
        retryAfterMs = r.kind === 'retryable' ? r.retryAfterMs : undefined;
        return r;
      },
      {
        policy: fixedDelay(DEFAULT_RETRY_MS),
        clock: this.clock,
        random: NO_JITTER,
        signal,
        classify: emitVerdict,
        onFailure: (f) => {
          this.log.warn({ batch: batch.id, entries: batch.count, err: f.error.message }, 'batcher: emit failed; offering the batch again');
          return retryAfterMs ?? DEFAULT_RETRY_MS;
        },
      },
    );
    if (result.kind === 'ok') return { deadLettered: 0, confirmed: result.confirmed };
    if (result.kind === 'retryable') {
      // Given up only because the stop deadline aborted the retries.
      signal.throwIfAborted();
      throw result.error;
    }
    const rejected = [...new Set(result.rejected)].filter((i) => Number.isInteger(i) && i >= 0 && i < batch.count);
    rejected.sort((a, b) => a - b);
    if (rejected.length > 0) {
      // Only the rejected entries are re-encoded; the records they came from stay as they are.
      const all = batch.entries();
      const letters = encodeEntries(rejected.map((i) => all[i] as Entry));
      await this.retryIo(() => this.spool.deadLetter(letters, result.error.message), signal, 'cannot write the dead-letter file; retrying');
    }
    return { deadLettered: rejected.length, confirmed: result.confirmed };
  }

  /** One emit attempt, reported to onBatch; a throw (which the contract forbids) counts as retryable. */
  private async emitOnce(batch: Batch, cause: BatchCause): Promise<EmitResult> {
    const started = this.clock.monotonicNs();
    let result: EmitResult;
    try {
      result = await this.emitter.emit(batch, this.emitAbort.signal);
    } catch (err) {
      result = { kind: 'retryable', error: asError(err) };
    }
    const durationMs = Number(this.clock.monotonicNs() - started) / 1e6;
    try {
      this.onBatch?.({ batch, result, durationMs, cause });
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'batcher: onBatch hook threw');
    }
    return result;
  }

  private confirm(pending: PendingBatch, entries: number, deadLettered: number): void {
    this.batches++;
    this.entries += entries;
    this.deadLettered += deadLettered;
    this.spool.markDelivered(pending.end);
  }
}
