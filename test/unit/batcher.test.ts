import { afterEach, describe, expect, it } from 'vitest';
import { Batcher } from '../../src/batcher/batcher.js';
import type { BatchEvent } from '../../src/batcher/batcher.js';
import { OK, retryable } from '../../src/emitters/emitter.js';
import type { Batch, EmitResult } from '../../src/emitters/emitter.js';
import { MemoryEmitter } from '../../src/emitters/memory-emitter.js';
import { Spool } from '../../src/spool/spool.js';
import { ManualClock } from '../../src/util/manual-clock.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import { makeBatch, tempDir } from '../helpers/spool-fixtures.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** Polls with room for a busy 2-core machine (files are real; the clock of the batcher is not). */
function poll<T>(fn: () => T) {
  return expect.poll(fn, { timeout: 15_000, interval: 5 });
}

async function setup(
  respond?: (batch: Batch, signal: AbortSignal) => EmitResult | Promise<EmitResult>,
  opts: { maxBatchSize?: number; maxDelayMs?: number; dir?: string; maxUnconfirmed?: number } = {},
) {
  let dir = opts.dir;
  if (dir === undefined) {
    const t = await tempDir('batcher-');
    cleanups.push(t.cleanup);
    dir = t.dir;
  }
  const spool = await Spool.open({ dir, maxBytes: 1 << 30 });
  const clock = new ManualClock();
  const calls: Batch[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
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
  let currentSignal: AbortSignal | undefined;
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
  });
  let stopped = false;
  cleanups.push(async () => {
    if (!stopped) await batcher.stop(0);
    await spool.close();
  });
  const stop = async (deadlineMs: number, advance = true): Promise<void> => {
    stopped = true;
    const p = batcher.stop(deadlineMs);
    if (advance) await clock.advanceAsync(deadlineMs + 1);
    await p;
  };
  return { dir, spool, clock, emitter, calls, events, batcher, stop, maxInFlight: () => maxInFlight };
}

function lines(entries: readonly { line: Buffer }[]): string[] {
  return entries.map((e) => e.line.toString());
}

function range(first: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `line-${first + i}`);
}

describe('Batcher', () => {
  it('cuts by size at once and by time after maxDelayMs, never empty', async () => {
    const t = await setup(undefined, { maxBatchSize: 10, maxDelayMs: 1000 });
    t.batcher.start();
    await t.clock.advanceAsync(5000); // nothing appended: no batch
    expect(t.calls).toHaveLength(0);
    await t.spool.append(makeBatch(0, 25), 25);
    await poll(() => t.emitter.batches.length).toBe(2);
    await poll(() => t.batcher.stats().pending).toBe(5);
    await t.clock.advanceAsync(999);
    expect(t.emitter.batches).toHaveLength(2);
    await t.clock.advanceAsync(1);
    await poll(() => t.emitter.batches.length).toBe(3);
    expect(t.emitter.batches.map((b) => b.count)).toEqual([10, 10, 5]);
    expect(t.events.map((e) => e.cause)).toEqual(['size', 'size', 'time']);
    expect(t.emitter.batches.map((b) => b.id)).toEqual([1, 2, 3]);
    expect(lines(t.emitter.entries)).toEqual(range(0, 25));
    await poll(() => t.spool.stats().pendingEntries).toBe(0);
    await t.clock.advanceAsync(10_000);
    expect(t.calls).toHaveLength(3);
  });

  it('measures the delay from the first entry of a batch, across records', async () => {
    const t = await setup(undefined, { maxBatchSize: 100, maxDelayMs: 1000 });
    t.batcher.start();
    await t.spool.append(makeBatch(0, 3), 3);
    await poll(() => t.batcher.stats().pending).toBe(3);
    await t.clock.advanceAsync(600);
    await t.spool.append(makeBatch(3, 3), 3);
    await poll(() => t.batcher.stats().pending).toBe(6);
    await t.clock.advanceAsync(399);
    expect(t.calls).toHaveLength(0);
    await t.clock.advanceAsync(1);
    await poll(() => t.emitter.batches.length).toBe(1);
    expect(lines(t.emitter.batches[0]!.entries())).toEqual(range(0, 6));
  });

  it('keeps one emit in flight and accumulates the next batch meanwhile', async () => {
    const gates: Array<() => void> = [];
    const t = await setup(() => new Promise<EmitResult>((r) => gates.push(() => r(OK))), { maxBatchSize: 5, maxDelayMs: 1000 });
    t.batcher.start();
    await t.spool.append(makeBatch(0, 5), 5);
    await poll(() => t.calls.length).toBe(1);
    await t.spool.append(makeBatch(5, 3), 3);
    await t.spool.append(makeBatch(8, 4), 4);
    await poll(() => t.batcher.stats().pending).toBe(12);
    expect(t.calls).toHaveLength(1);
    gates.shift()!();
    await poll(() => t.calls.length).toBe(2);
    expect(lines(t.calls[1]!.entries())).toEqual(range(5, 5));
    gates.shift()!();
    await t.clock.advanceAsync(1000);
    await poll(() => t.calls.length).toBe(3);
    gates.shift()!();
    await poll(() => t.spool.stats().pendingEntries).toBe(0);
    expect(lines(t.emitter.entries)).toEqual(range(0, 12));
    expect(t.maxInFlight()).toBe(1);
  });

  it('offers the same batch again after a retryable result, waiting retryAfterMs or 100 ms', async () => {
    let failures = 2;
    const t = await setup(() => (failures-- > 0 ? retryable(new Error('down'), failures === 1 ? 500 : undefined) : OK), {
      maxBatchSize: 4,
    });
    t.batcher.start();
    await t.spool.append(makeBatch(0, 8), 8);
    await poll(() => t.calls.length).toBe(1);
    await t.clock.advanceAsync(499);
    expect(t.calls).toHaveLength(1);
    await t.clock.advanceAsync(1);
    await poll(() => t.calls.length).toBe(2);
    await t.clock.advanceAsync(99);
    expect(t.calls).toHaveLength(2);
    await t.clock.advanceAsync(1);
    await poll(() => t.calls.length).toBe(4);
    expect(t.calls.map((b) => b.id)).toEqual([1, 1, 1, 2]);
    expect(t.calls[0]!.entries()).toBe(t.calls[2]!.entries());
    expect(t.events.map((e) => e.result.kind)).toEqual(['retryable', 'retryable', 'ok', 'ok']);
    expect(t.batcher.stats()).toMatchObject({ batches: 2, entries: 8, pending: 0 });
  });

  it('dead-letters the entries of a fatal result and moves on', async () => {
    const t = await setup((b) => (b.id === 1 ? { kind: 'fatal', error: new Error('too large'), rejected: [1, 3] } : OK), {
      maxBatchSize: 5,
    });
    t.batcher.start();
    await t.spool.append(makeBatch(0, 10), 10);
    await poll(() => t.batcher.stats().batches).toBe(2);
    const letters = await Spool.readDeadLetters(t.dir);
    expect(letters).toHaveLength(1);
    expect(letters[0]!.reason).toBe('too large');
    expect(lines(decodeEntries(letters[0]!.data))).toEqual(['line-1', 'line-3']);
    expect(t.batcher.stats().deadLettered).toBe(2);
    expect(lines(t.emitter.entries)).toEqual(['line-0', 'line-2', 'line-4', ...range(5, 5)]);
    await poll(() => t.spool.stats().pendingEntries).toBe(0);
  });

  it('after a restart emits the undelivered entries again, from the middle of a record', async () => {
    let okLeft = 1;
    const first = await setup(() => (okLeft-- > 0 ? OK : retryable(new Error('down'))), { maxBatchSize: 4 });
    first.batcher.start();
    await first.spool.append(makeBatch(0, 10), 10);
    await first.spool.append(makeBatch(10, 2), 2);
    await poll(() => first.calls.length).toBeGreaterThanOrEqual(2);
    await first.stop(50);
    await first.spool.close();
    const second = await setup(undefined, { maxBatchSize: 4, dir: first.dir });
    expect(second.spool.stats().pendingEntries).toBe(8);
    second.batcher.start();
    await poll(() => second.emitter.batches.length).toBe(2);
    expect(lines(second.emitter.entries)).toEqual(range(4, 8));
    expect(second.events.map((e) => e.cause)).toEqual(['size', 'size']);
  });

  it('stop() drains the open batch, aborts an emit that outlasts the deadline, and leaves it in the spool', async () => {
    const t = await setup(
      (b, signal) =>
        b.id === 1
          ? OK
          : new Promise<EmitResult>((r) => signal.addEventListener('abort', () => r(retryable(new Error('aborted'))))),
      { maxBatchSize: 100, maxDelayMs: 60_000 },
    );
    t.batcher.start();
    await t.spool.append(makeBatch(0, 3), 3);
    await poll(() => t.batcher.stats().pending).toBe(3);
    const stopping = t.batcher.stop(1000);
    await poll(() => t.calls.length).toBe(1);
    expect(t.events[0]!.cause).toBe('drain');
    await stopping;
    expect(t.spool.stats().pendingEntries).toBe(0);

    // A second batcher on the same spool whose emitter hangs until aborted.
    const t2 = await setup(
      (_b, signal) => new Promise<EmitResult>((r) => signal.addEventListener('abort', () => r(retryable(new Error('aborted'))))),
      { maxBatchSize: 2 },
    );
    t2.batcher.start();
    await t2.spool.append(makeBatch(0, 2), 2);
    await poll(() => t2.calls.length).toBe(1);
    const p = t2.batcher.stop(1000);
    await t2.clock.advanceAsync(999);
    expect(t2.events).toHaveLength(0);
    await t2.clock.advanceAsync(1);
    await p;
    expect(t2.events.map((e) => e.result.kind)).toEqual(['retryable']);
    expect(t2.spool.stats().pendingEntries).toBe(2);
  });

  it('moves a record that does not decode to the dead-letter file and goes on', async () => {
    const t = await setup(undefined, { maxBatchSize: 3 });
    t.batcher.start();
    await t.spool.append(makeBatch(0, 3), 3);
    await t.spool.append(Buffer.from([0xff, 0xff, 0xff]), 1);
    await t.spool.append(makeBatch(3, 3), 3);
    await poll(() => t.emitter.batches.length).toBe(2);
    expect(lines(t.emitter.entries)).toEqual(range(0, 6));
    const letters = await Spool.readDeadLetters(t.dir);
    expect(letters.map((l) => l.data.toString('hex'))).toEqual(['ffffff']);
    expect(letters[0]!.reason).toMatch(/undecodable/);
    await poll(() => t.spool.stats().pendingEntries).toBe(0);
  });

  describe('confirmations after emit (EmitResult.confirmed)', () => {
    /** An emitter that takes every batch at once and confirms when the test says so. */
    function confirming() {
      const confirms = new Map<number, (ok: boolean) => void>();
      const respond = (b: Batch): EmitResult => ({ kind: 'ok', confirmed: new Promise<boolean>((r) => confirms.set(b.id, r)) });
      return { confirms, respond };
    }

    it('emits the next batches while earlier ones await confirmation, and moves the delivered position in emit order only', async () => {
      const c = confirming();
      const t = await setup(c.respond, { maxBatchSize: 5, maxDelayMs: 1000 });
      t.batcher.start();
      await t.spool.append(makeBatch(0, 25), 25);
      await poll(() => t.calls.length).toBe(5);
      expect(t.batcher.stats().unconfirmed).toBe(25);
      expect(t.spool.stats().pendingEntries).toBe(25);
      c.confirms.get(2)!(true);
      await t.clock.advanceAsync(10);
      expect(t.spool.stats().pendingEntries).toBe(25);
      c.confirms.get(1)!(true);
      await poll(() => t.spool.stats().pendingEntries).toBe(15);
      for (const id of [3, 4, 5]) c.confirms.get(id)!(true);
      await poll(() => t.spool.stats().pendingEntries).toBe(0);
      expect(t.batcher.stats()).toMatchObject({ batches: 5, entries: 25, unconfirmed: 0, pending: 0 });
      expect(lines(t.emitter.entries)).toEqual(range(0, 25));
    });

    it('holds at most maxUnconfirmed batches awaiting confirmation', async () => {
      const c = confirming();
      const t = await setup(c.respond, { maxBatchSize: 5, maxDelayMs: 1000, maxUnconfirmed: 2 });
      t.batcher.start();
      await t.spool.append(makeBatch(0, 20), 20);
      await poll(() => t.calls.length).toBe(2);
      await t.clock.advanceAsync(2000);
      expect(t.calls).toHaveLength(2);
      c.confirms.get(1)!(true);
      await poll(() => t.calls.length).toBe(3);
      expect(t.spool.stats().pendingEntries).toBe(15);
      await t.stop(100);
    });

    it('a confirmation that resolves false leaves its batch and every later one in the spool; a restart emits them again', async () => {
      const c = confirming();
      const t = await setup(c.respond, { maxBatchSize: 5, maxDelayMs: 1000 });
      t.batcher.start();
      await t.spool.append(makeBatch(0, 15), 15);
      await poll(() => t.calls.length).toBe(3);
      c.confirms.get(1)!(true);
      c.confirms.get(2)!(false);
      c.confirms.get(3)!(true);
      await poll(() => t.spool.stats().pendingEntries).toBe(10);
      await t.clock.advanceAsync(100);
      expect(t.spool.stats().pendingEntries).toBe(10);
      await t.stop(1000);
      await t.spool.close();

      const t2 = await setup(undefined, { maxBatchSize: 5, dir: t.dir });
      expect(t2.spool.stats().pendingEntries).toBe(10);
      t2.batcher.start();
      await poll(() => t2.emitter.entries.length).toBe(10);
      expect(lines(t2.emitter.entries)).toEqual(range(5, 10));
    });

    it('stop() waits for confirmations until its deadline, then leaves what is unconfirmed in the spool', async () => {
      const c = confirming();
      const t = await setup(c.respond, { maxBatchSize: 5, maxDelayMs: 1000 });
      t.batcher.start();
      await t.spool.append(makeBatch(0, 10), 10);
      await poll(() => t.calls.length).toBe(2);
      const stopping = t.batcher.stop(1000);
      c.confirms.get(1)!(true);
      await poll(() => t.spool.stats().pendingEntries).toBe(5);
      let done = false;
      void stopping.then(() => (done = true));
      await t.clock.advanceAsync(999);
      expect(done).toBe(false);
      await t.clock.advanceAsync(1);
      await stopping;
      expect(t.spool.stats().pendingEntries).toBe(5);
      expect(t.batcher.stats()).toMatchObject({ entries: 5, unconfirmed: 5 });
    });

    it('a batch the emitter confirms at once waits behind earlier unconfirmed ones', async () => {
      let id = 0;
      const c = confirming();
      const t = await setup((b) => (++id === 1 ? c.respond(b) : OK), { maxBatchSize: 5, maxDelayMs: 1000 });
      t.batcher.start();
      await t.spool.append(makeBatch(0, 10), 10);
      await poll(() => t.calls.length).toBe(2);
      await t.clock.advanceAsync(10);
      expect(t.spool.stats().pendingEntries).toBe(10);
      c.confirms.get(1)!(true);
      await poll(() => t.spool.stats().pendingEntries).toBe(0);
    });
  });
});
