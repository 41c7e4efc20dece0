import type { Entry } from '../wire/entry-batch.js';

/**
 * What an emitter is handed: entries read through methods, so a batch can be views over spool records
 * (RecordBatch, as the batcher cuts them) or entries already decoded (arrayBatch: tests, replay).
 */
export interface Batch {
  /** Monotonic batch number within this aggregator process (for logs and metrics). */
  readonly id: number;
  /** How many entries the batch holds. */
  readonly count: number;
  /**
   * The entries as objects, built on the first call and kept. Indexes in a fatal result's `rejected`
   * refer to this order. Emitters that need only the bytes use `lines()`, which builds nothing.
   */
  entries(): readonly Entry[];
  /** Each entry's line bytes, in order; views into the batch's records where it can, no copies. */
  lines(): Iterable<Buffer>;
}

/**
 * For an emitter whose delivery is confirmed after emit returns (Aeron: a receiver's status message
 * shows its subscribers consumed the batch). Resolves true once every entry the result says was
 * delivered is where the emitter promises it is; false when that will never be known (the emitter
 * closed first): those entries stay in the spool and are emitted again after a restart. Never rejects.
 * Confirmations resolve in emit order.
 */
export type Confirmation = Promise<boolean>;

export type EmitResult =
  /**
   * Every entry is delivered and durable where the emitter promises it is; with `confirmed`, only
   * once that resolves true (the batcher then keeps several batches in flight).
   */
  | { readonly kind: 'ok'; readonly confirmed?: Confirmation }
  /** Nothing (or not everything) is confirmed; the same batch should be offered again later. */
  | { readonly kind: 'retryable'; readonly error: Error; readonly retryAfterMs?: number }
  /**
   * Some entries can never be accepted (e.g. larger than the emitter's maximum message size). Every
   * entry NOT listed in `rejected` is delivered; the listed ones go to the dead-letter file.
   */
  | { readonly kind: 'fatal'; readonly error: Error; readonly rejected: readonly number[]; readonly confirmed?: Confirmation };

/**
 * The emitter plugin interface: the last stage of the aggregator. An emitter receives a batch, does
 * its best, and says what happened as a value, never by throwing (OpenTelemetry's ExportResult).
 */
export interface Emitter {
  /** Short name for logs and metrics labels: "blackhole", "file", "text", "aeron". */
  readonly name: string;
  /**
   * Its output is a stream of lines in which a batch leaves no mark (a file, stdout, nothing): the
   * batcher may hand it the batches that are ready together as one (in order, within
   * AGGREGATOR_MAX_BATCH_BYTES of line bytes and at most JOINED_BYTES; src/batcher/batcher.ts), so a
   * backlog drains in fewer, larger writes. Not for an emitter whose batch is a unit its receiver
   * sees (an Aeron message). Default false.
   */
  readonly joinsBatches?: boolean;
  /** Optional start-up work (open files, connect); failures here stop the aggregator from starting. */
  start?(): Promise<void>;
  emit(batch: Batch, signal: AbortSignal): Promise<EmitResult>;
  /**
   * Optional: let go of the output and open it again (SIGHUP after logrotate moved the file away).
   * Never throws; a failure to open is logged and retried by the next emit.
   */
  reopen?(): Promise<void>;
  /** Flushes and releases resources. Idempotent: a second call resolves at once. */
  close(): Promise<void>;
}

export const OK: EmitResult = Object.freeze({ kind: 'ok' });

export function retryable(error: Error, retryAfterMs?: number): EmitResult {
  return retryAfterMs === undefined ? { kind: 'retryable', error } : { kind: 'retryable', error, retryAfterMs };
}
