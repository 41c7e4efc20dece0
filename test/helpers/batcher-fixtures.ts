import fc from 'fast-check';
import { Batcher } from '../../src/batcher/batcher.js';
import type { BatchEvent } from '../../src/batcher/batcher.js';
import { OK, retryable } from '../../src/emitters/emitter.js';
import type { Batch, EmitResult } from '../../src/emitters/emitter.js';
import { MemoryEmitter } from '../../src/emitters/memory-emitter.js';
import type { SpoolPort } from '../../src/spool/spool-port.js';
import type { Clock } from '../../src/util/clock.js';
import { sleep } from '../../src/util/clock.js';
import { ManualClock } from '../../src/util/manual-clock.js';

/** How a test's emitter answers one batch (the signal is the batcher's, for emits that hang until aborted). */
export type Respond = (batch: Batch, signal: AbortSignal) => EmitResult | Promise<EmitResult>;

export interface BatcherHarnessOptions {
  readonly maxBatchSize?: number;
  readonly maxBatchBytes?: number;
  readonly maxDelayMs?: number;
  readonly maxUnconfirmed?: number;
  /** The emitter says it joins batches (Emitter.joinsBatches), as the file, text and blackhole ones do. */
  readonly joinsBatches?: boolean;
}

/**
 * A Batcher on virtual time over `spool` (in memory or on disk), emitting to a MemoryEmitter that
 * records every call (retries included), every event and the most emits ever in flight at once.
 * `stop(deadlineMs)` stops it, moving virtual time past the deadline.
 */
export function batcherHarness(spool: SpoolPort, respond?: Respond, opts: BatcherHarnessOptions = {}) {
  const clock = new ManualClock();
  const calls: Batch[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let currentSignal: AbortSignal | undefined;
  const emitter = new MemoryEmitter(async (batch) => {
    calls.push(batch);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      return respond === undefined ? OK : await respond(batch, currentSignal as AbortSignal);
    } finally {
      inFlight--;
    }
  });
  if (opts.joinsBatches === true) Object.assign(emitter, { joinsBatches: true });
  const emit = emitter.emit.bind(emitter);
  emitter.emit = (batch: Batch, signal?: AbortSignal) => {
    currentSignal = signal;
    return emit(batch);
  };
  const events: BatchEvent[] = [];
  const batcher = new Batcher({
    spool,
    emitter,
    maxBatchSize: opts.maxBatchSize ?? 10,
    maxDelayMs: opts.maxDelayMs ?? 1000,
    clock,
    onBatch: (e) => events.push(e),
    ...(opts.maxUnconfirmed === undefined ? {} : { maxUnconfirmed: opts.maxUnconfirmed }),
    ...(opts.maxBatchBytes === undefined ? {} : { maxBatchBytes: opts.maxBatchBytes }),
  });
  let stopped = false;
  const stop = async (deadlineMs: number): Promise<void> => {
    stopped = true;
    const p = batcher.stop(deadlineMs);
    await settle();
    await clock.advanceAsync(deadlineMs + 1);
    await p;
  };
  return { clock, emitter, calls, events, batcher, stop, stopped: () => stopped, maxInFlight: () => maxInFlight };
}

/** Lets every pending continuation run: a few turns of the event loop, no timer. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
}

/** The line texts of entries. */
export function lines(entries: readonly { line: Buffer }[]): string[] {
  return entries.map((e) => e.line.toString());
}

/** `line-<first>` ... as makeBatch writes them. */
export function range(first: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `line-${first + i}`);
}

/** An emitter answer that takes every batch at once and confirms it when the test says so. */
export function confirming() {
  const confirms = new Map<number, (ok: boolean) => void>();
  const respond = (b: Batch): EmitResult => ({ kind: 'ok', confirmed: new Promise<boolean>((r) => confirms.set(b.id, r)) });
  return { confirms, respond };
}

// ---- the batcher property (in memory and on disk) ----

export type BatcherOp = { kind: 'append'; entries: number } | { kind: 'advance'; ms: number };
export type BatcherAnswer = 'ok' | 'slow' | 'retry' | 'fatal';

export const batcherOp: fc.Arbitrary<BatcherOp> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), entries: fc.integer({ min: 0, max: 25 }) }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 700 }) }),
);

export const batcherAnswers = fc.array(fc.constantFrom<BatcherAnswer>('ok', 'slow', 'slow', 'retry', 'fatal'), { maxLength: 30 });

/**
 * An emitter answering batch after batch as scripted: slow stays in flight 300 ms of virtual time (so
 * appends land meanwhile), fatal rejects the batch's last entry; then ok.
 */
export function scriptedEmitter(answers: readonly BatcherAnswer[], clock: Clock): MemoryEmitter {
  let answer = 0;
  return new MemoryEmitter(async (batch): Promise<EmitResult> => {
    const a = answers[answer++] ?? 'ok';
    if (a === 'slow') {
      await sleep(clock, 300);
      return OK;
    }
    if (a === 'retry') return retryable(new Error('try later'));
    if (a === 'fatal') return { kind: 'fatal', error: new Error('never'), rejected: [batch.count - 1] };
    return OK;
  });
}

/** A Batcher over `spool` whose emitter answers as scripted, publishing every 500 ms of virtual time. */
export function scriptedBatcher(spool: SpoolPort, answers: readonly BatcherAnswer[], maxBatchSize: number) {
  const clock = new ManualClock();
  const emitter = scriptedEmitter(answers, clock);
  const events: BatchEvent[] = [];
  const batcher = new Batcher({ spool, emitter, maxBatchSize, maxDelayMs: 500, clock, onBatch: (e) => events.push(e) });
  const stop = async (): Promise<void> => {
    const stopping = batcher.stop(0);
    await clock.advanceAsync(1);
    await stopping;
  };
  return { clock, emitter, events, batcher, stop };
}

/** What confirmed batches say: their lines in order, and the lines their fatal results rejected. */
export function confirmedLines(events: readonly BatchEvent[]): { all: string[]; rejected: string[]; ids: number[] } {
  const confirmed = events.filter((e) => e.result.kind !== 'retryable');
  return {
    all: confirmed.flatMap((e) => lines(e.batch.entries())),
    rejected: confirmed.filter((e) => e.result.kind === 'fatal').map((e) => e.batch.entries().at(-1)!.line.toString()),
    ids: confirmed.map((e) => e.batch.id),
  };
}
