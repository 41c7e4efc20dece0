import { afterEach, describe, expect, it } from 'vitest';
import { OK, retryable } from '../../src/emitters/emitter.js';
import type { Batch, EmitResult } from '../../src/emitters/emitter.js';
import { MemorySpool } from '../../src/spool/memory-spool.js';
import type { DeliveredPosition } from '../../src/spool/spool.js';
import type { SpoolPort } from '../../src/spool/spool-port.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import { batcherHarness, confirming, lines, range, settle } from '../helpers/batcher-fixtures.js';
import type { BatcherHarnessOptions, Respond } from '../helpers/batcher-fixtures.js';
import { makeBatch } from '../helpers/spool-fixtures.js';

// Pure: MemorySpool and MemoryEmitter, virtual time, no files and no sleeps. What lands on the disk
// spool (dead-letter files, delivered positions across restarts) is in test/integration/batcher-spool*.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

interface SetupOptions extends BatcherHarnessOptions {
  /** Where a restarted batcher starts (the delivered position of the one before). */
  from?: DeliveredPosition;
  /** Wraps the spool, to make its reads fail. */
  port?: (spool: MemorySpool) => SpoolPort;
}

function setup(respond?: Respond, opts: SetupOptions = {}) {
  const spool = new MemorySpool(opts.from);
  const h = batcherHarness(opts.port?.(spool) ?? spool, respond, opts);
  cleanups.push(async () => {
    if (!h.stopped()) await h.stop(0);
    spool.close();
  });
  /** Appends `count` lines `line-<first+i>` as one record. */
  const append = async (first: number, count: number): Promise<void> => {
    spool.append(makeBatch(first, count), count);
    await settle();
  };
  const advance = async (ms: number): Promise<void> => {
    await h.clock.advanceAsync(ms);
    await settle();
  };
  return { ...h, spool, append, advance };
}

describe('Batcher', () => {
  it('cuts by size at once and by time after maxDelayMs, never empty, and delivers past the last record', async () => {
    const t = setup(undefined, { maxBatchSize: 10, maxDelayMs: 1000 });
    t.batcher.start();
    await t.advance(5000); // nothing appended: no batch
    expect(t.calls).toHaveLength(0);
    await t.append(0, 25);
    expect(t.emitter.batches).toHaveLength(2);
    expect(t.batcher.stats().pending).toBe(5);
    await t.advance(999);
    expect(t.emitter.batches).toHaveLength(2);
    await t.advance(1);
    expect(t.emitter.batches.map((b) => b.count)).toEqual([10, 10, 5]);
    expect(t.events.map((e) => e.cause)).toEqual(['size', 'size', 'time']);
    expect(t.emitter.batches.map((b) => b.id)).toEqual([1, 2, 3]);
    expect(lines(t.emitter.entries)).toEqual(range(0, 25));
    expect(t.spool.deliveredHistory).toEqual([
      { segment: 0, offset: 0, entry: 10 },
      { segment: 0, offset: 0, entry: 20 },
      { segment: 0, offset: 1, entry: 0 },
    ]);
    await t.advance(10_000);
    expect(t.calls).toHaveLength(3);
  });

  it('cuts by line bytes too (AGGREGATOR_MAX_BATCH_BYTES), within and across records; a longer line goes alone', async () => {
    // makeBatch lines of 20 bytes; at most 50 bytes: two lines a batch.
    const t = setup(undefined, { maxBatchSize: 100, maxBatchBytes: 50, maxDelayMs: 1000 });
    t.batcher.start();
    t.spool.append(makeBatch(0, 5, 'c-1', 20), 5);
    t.spool.append(makeBatch(5, 1, 'c-1', 60), 1);
    t.spool.append(makeBatch(6, 1, 'c-1', 20), 1);
    await settle();
    await t.advance(1000);
    expect(t.emitter.batches.map((b) => b.count)).toEqual([2, 2, 1, 1, 1]);
    expect(t.events.map((e) => e.cause)).toEqual(['size', 'size', 'size', 'size', 'time']);
    expect(lines(t.emitter.entries).map((l) => l.replace(/\.+$/, ''))).toEqual(range(0, 7));
    expect(t.spool.deliveredHistory[t.spool.deliveredHistory.length - 1]).toEqual({ segment: 0, offset: 3, entry: 0 });
  });

  it('measures the delay from the first entry of a batch, across records', async () => {
    const t = setup(undefined, { maxBatchSize: 100, maxDelayMs: 1000 });
    t.batcher.start();
    await t.append(0, 3);
    expect(t.batcher.stats().pending).toBe(3);
    await t.advance(600);
    await t.append(3, 3);
    expect(t.batcher.stats().pending).toBe(6);
    await t.advance(399);
    expect(t.calls).toHaveLength(0);
    await t.advance(1);
    expect(t.emitter.batches).toHaveLength(1);
    expect(lines(t.emitter.batches[0]!.entries())).toEqual(range(0, 6));
  });

  it('keeps one emit in flight and accumulates the next batch meanwhile', async () => {
    const gates: Array<() => void> = [];
    const t = setup(() => new Promise<EmitResult>((r) => gates.push(() => r(OK))), { maxBatchSize: 5, maxDelayMs: 1000 });
    t.batcher.start();
    await t.append(0, 5);
    expect(t.calls).toHaveLength(1);
    await t.append(5, 3);
    await t.append(8, 4);
    expect(t.batcher.stats().pending).toBe(12);
    expect(t.calls).toHaveLength(1);
    gates.shift()!();
    await settle();
    expect(t.calls).toHaveLength(2);
    expect(lines(t.calls[1]!.entries())).toEqual(range(5, 5));
    gates.shift()!();
    await t.advance(1000);
    expect(t.calls).toHaveLength(3);
    gates.shift()!();
    await settle();
    expect(t.spool.delivered).toEqual({ segment: 0, offset: 3, entry: 0 });
    expect(lines(t.emitter.entries)).toEqual(range(0, 12));
    expect(t.maxInFlight()).toBe(1);
  });

  it('hands an emitter that joins batches the ones ready together as one, in order, within AGGREGATOR_MAX_BATCH_BYTES', async () => {
    // makeBatch lines of 20 bytes; batches of 2 lines (40 bytes) are cut from each record at once.
    for (const [maxBatchBytes, expected] of [
      [undefined, [8, 1]],
      [100, [4, 4, 1]],
      [50, [2, 2, 2, 2, 1]],
    ] as const) {
      const t = setup(undefined, { maxBatchSize: 2, maxDelayMs: 1000, joinsBatches: true, ...(maxBatchBytes === undefined ? {} : { maxBatchBytes }) });
      t.batcher.start();
      t.spool.append(makeBatch(0, 9, 'c-1', 20), 9);
      await settle();
      await t.advance(1000);
      expect(t.calls.map((b) => b.count)).toEqual(expected);
      expect(t.events.map((e) => e.cause)).toEqual([...expected.slice(0, -1).map(() => 'size'), 'time']);
      const bare = (ls: string[]): string[] => ls.map((l) => l.replace(/\.+$/, ''));
      expect(bare(lines(t.emitter.entries))).toEqual(range(0, 9));
      expect(t.calls.map((b) => bare(lines(b.entries())))).toEqual(expected.map((n, i) => range(expected.slice(0, i).reduce((a, c) => a + c, 0), n)));
      expect(t.spool.deliveredHistory[t.spool.deliveredHistory.length - 1]).toEqual({ segment: 0, offset: 1, entry: 0 });
      await t.stop(0);
    }
  });

  it('hands an emitter that does not join batches one batch per emit, however many are ready', async () => {
    const t = setup(undefined, { maxBatchSize: 2, maxDelayMs: 1000 });
    t.batcher.start();
    await t.append(0, 9);
    await t.advance(1000);
    expect(t.calls.map((b) => b.count)).toEqual([2, 2, 2, 2, 1]);
  });

  it('offers the same batch again after a retryable result, waiting retryAfterMs or 100 ms', async () => {
    let failures = 2;
    const t = setup(() => (failures-- > 0 ? retryable(new Error('down'), failures === 1 ? 500 : undefined) : OK), {
      maxBatchSize: 4,
    });
    t.batcher.start();
    await t.append(0, 8);
    expect(t.calls).toHaveLength(1);
    await t.advance(499);
    expect(t.calls).toHaveLength(1);
    await t.advance(1);
    expect(t.calls).toHaveLength(2);
    await t.advance(99);
    expect(t.calls).toHaveLength(2);
    await t.advance(1);
    expect(t.calls).toHaveLength(4);
    expect(t.calls.map((b) => b.id)).toEqual([1, 1, 1, 2]);
    expect(t.calls[0]).toBe(t.calls[2]);
    expect(t.calls[0]!.entries()).toBe(t.calls[2]!.entries()); // decoded once, kept across offers
    expect(t.events.map((e) => e.result.kind)).toEqual(['retryable', 'retryable', 'ok', 'ok']);
    expect(t.batcher.stats()).toMatchObject({ batches: 2, entries: 8, pending: 0 });
  });

  it('an emitter that throws is offered the batch again (the contract says it returns results)', async () => {
    let throws = 1;
    const t = setup(() => {
      if (throws-- > 0) throw new Error('bug');
      return OK;
    });
    t.batcher.start();
    await t.append(0, 10);
    expect(t.events.map((e) => e.result.kind)).toEqual(['retryable']);
    await t.advance(100);
    expect(t.events.map((e) => e.result.kind)).toEqual(['retryable', 'ok']);
    expect(lines(t.emitter.entries)).toEqual(range(0, 10));
  });

  it('dead-letters only the rejected entries of a fatal result, re-encoded, and moves on', async () => {
    const t = setup((b) => (b.id === 1 ? { kind: 'fatal', error: new Error('too large'), rejected: [3, 1, 3, 99, -1] } : OK), {
      maxBatchSize: 5,
    });
    t.batcher.start();
    await t.append(0, 10);
    expect(t.batcher.stats().batches).toBe(2);
    expect(t.spool.deadLetters.map((d) => d.reason)).toEqual(['too large']);
    expect(lines(decodeEntries(t.spool.deadLetters[0]!.data))).toEqual(['line-1', 'line-3']);
    expect(t.batcher.stats().deadLettered).toBe(2);
    expect(lines(t.emitter.entries)).toEqual(['line-0', 'line-2', 'line-4', ...range(5, 5)]);
    expect(t.spool.delivered).toEqual({ segment: 0, offset: 1, entry: 0 });
  });

  it('dead-letters a rejected subset of a batch that spans records, with each entry its own source', async () => {
    const t = setup((b) => (b.id === 1 ? { kind: 'fatal', error: new Error('refused'), rejected: [0, 2, 3] } : OK), {
      maxBatchSize: 4,
      from: { segment: 0, offset: 0, entry: 1 },
    });
    t.batcher.start();
    t.spool.append(makeBatch(0, 3, 'c-a'), 3);
    t.spool.append(makeBatch(3, 2, 'c-b'), 2);
    await settle();
    const letters = t.spool.deadLetters.flatMap((d) => decodeEntries(d.data));
    expect(letters.map((e) => [e.line.toString(), e.source.collectorId])).toEqual([
      ['line-1', 'c-a'],
      ['line-3', 'c-b'],
      ['line-4', 'c-b'],
    ]);
    expect(lines(t.emitter.entries)).toEqual(['line-2']);
  });

  it('retries a dead-letter write that fails, every second, until it is kept', async () => {
    const t = setup((b) => (b.id === 1 ? { kind: 'fatal', error: new Error('too large'), rejected: [0] } : OK), { maxBatchSize: 2 });
    t.spool.deadLetterFailures.push(new Error('ENOSPC'), new Error('ENOSPC'));
    t.batcher.start();
    await t.append(0, 4);
    expect(t.spool.deadLetterFailures).toHaveLength(1); // one attempt failed
    expect(t.spool.deliveredHistory).toHaveLength(0);
    await t.advance(999);
    expect(t.spool.deadLetterFailures).toHaveLength(1);
    await t.advance(1);
    expect(t.spool.deadLetterFailures).toHaveLength(0); // the second attempt failed too
    expect(t.spool.deadLetters).toHaveLength(0);
    await t.advance(999);
    expect(t.spool.deadLetters).toHaveLength(0);
    await t.advance(1);
    expect(lines(decodeEntries(t.spool.deadLetters[0]!.data))).toEqual(['line-0']);
    expect(t.batcher.stats()).toMatchObject({ batches: 2, entries: 4, deadLettered: 1 });
  });

  it('after a restart emits the undelivered entries again, from the middle of a record', async () => {
    let okLeft = 1;
    const first = setup(() => (okLeft-- > 0 ? OK : retryable(new Error('down'))), { maxBatchSize: 4 });
    first.batcher.start();
    await first.append(0, 10);
    await first.append(10, 2);
    expect(first.calls.length).toBeGreaterThanOrEqual(2);
    await first.stop(50);
    expect(first.spool.delivered).toEqual({ segment: 0, offset: 0, entry: 4 });

    const second = setup(undefined, { maxBatchSize: 4, from: first.spool.delivered });
    second.spool.append(makeBatch(0, 10), 10);
    second.spool.append(makeBatch(10, 2), 2);
    second.batcher.start();
    await settle();
    expect(second.emitter.batches.map((b) => b.count)).toEqual([4, 4]);
    expect(lines(second.emitter.entries)).toEqual(range(4, 8));
    expect(second.events.map((e) => e.cause)).toEqual(['size', 'size']);
    expect(second.spool.delivered).toEqual({ segment: 0, offset: 2, entry: 0 });
  });

  it('stop() drains the open batch, aborts an emit that outlasts the deadline, and leaves it undelivered', async () => {
    const hang = (_b: Batch, signal: AbortSignal) =>
      new Promise<EmitResult>((r) => signal.addEventListener('abort', () => r(retryable(new Error('aborted')))));
    const t = setup((b, signal) => (b.id === 1 ? OK : hang(b, signal)), { maxBatchSize: 100, maxDelayMs: 60_000 });
    t.batcher.start();
    await t.append(0, 3);
    expect(t.batcher.stats().pending).toBe(3);
    await t.stop(1000);
    expect(t.events.map((e) => e.cause)).toEqual(['drain']);
    expect(t.spool.delivered).toEqual({ segment: 0, offset: 1, entry: 0 });

    const t2 = setup(hang, { maxBatchSize: 2 });
    t2.batcher.start();
    await t2.append(0, 2);
    expect(t2.calls).toHaveLength(1);
    const p = t2.batcher.stop(1000);
    await t2.advance(999);
    expect(t2.events).toHaveLength(0);
    await t2.advance(1);
    await p;
    expect(t2.events.map((e) => e.result.kind)).toEqual(['retryable']);
    expect(t2.spool.deliveredHistory).toHaveLength(0);
  });

  it('moves a record that does not decode to the dead letters and goes on', async () => {
    const t = setup(undefined, { maxBatchSize: 3 });
    t.batcher.start();
    await t.append(0, 3);
    t.spool.append(Buffer.from([0xff, 0xff, 0xff]), 1);
    await t.append(3, 3);
    expect(t.emitter.batches).toHaveLength(2);
    expect(lines(t.emitter.entries)).toEqual(range(0, 6));
    expect(t.spool.deadLetters.map((l) => l.data.toString('hex'))).toEqual(['ffffff']);
    expect(t.spool.deadLetters[0]!.reason).toMatch(/undecodable spool record at segment 0 offset 1/);
    expect(t.spool.delivered).toEqual({ segment: 0, offset: 3, entry: 0 });
  });

  it('reads the same record again a second after a read error', async () => {
    let reads = 0;
    const t = setup(undefined, {
      maxBatchSize: 5,
      port: (spool) => ({
        reader: () => {
          const inner = spool.reader();
          return { next: (signal) => (++reads <= 2 ? Promise.reject(new Error('EIO')) : inner.next(signal)) };
        },
        markDelivered: (p) => spool.markDelivered(p),
        deadLetter: (records, reason) => spool.deadLetter(records, reason),
      }),
    });
    t.spool.append(makeBatch(0, 5), 5);
    t.batcher.start();
    await settle();
    expect(reads).toBe(1);
    await t.advance(999);
    expect(reads).toBe(1);
    await t.advance(1);
    expect(reads).toBe(2);
    expect(t.calls).toHaveLength(0);
    await t.advance(999);
    expect(t.calls).toHaveLength(0);
    await t.advance(1);
    expect(reads).toBe(4); // the third read got the record; the fourth waits for the next one
    expect(lines(t.emitter.entries)).toEqual(range(0, 5));
  });

  it('stops reading when the spool is closed under it, and still stops cleanly', async () => {
    const t = setup();
    t.batcher.start();
    await t.append(0, 2);
    t.spool.close();
    await settle();
    await t.stop(100);
    expect(lines(t.emitter.entries)).toEqual(range(0, 2));
  });

  it('an empty record after the last batch moves the delivered position past it', async () => {
    const t = setup(undefined, { maxBatchSize: 3 });
    t.batcher.start();
    await t.append(0, 3);
    await t.append(3, 0);
    expect(t.spool.delivered).toEqual({ segment: 0, offset: 2, entry: 0 });
  });

  describe('confirmations after emit (EmitResult.confirmed)', () => {
    it('emits the next batches while earlier ones await confirmation, and moves the delivered position in emit order only', async () => {
      const c = confirming();
      const t = setup(c.respond, { maxBatchSize: 5, maxDelayMs: 1000 });
      t.batcher.start();
      await t.append(0, 25);
      expect(t.calls).toHaveLength(5);
      expect(t.batcher.stats().unconfirmed).toBe(25);
      expect(t.spool.deliveredHistory).toHaveLength(0);
      c.confirms.get(2)!(true);
      await t.advance(10);
      expect(t.spool.deliveredHistory).toHaveLength(0);
      c.confirms.get(1)!(true);
      await settle();
      expect(t.spool.delivered).toEqual({ segment: 0, offset: 0, entry: 10 });
      for (const id of [3, 4, 5]) c.confirms.get(id)!(true);
      await settle();
      expect(t.spool.delivered).toEqual({ segment: 0, offset: 1, entry: 0 });
      expect(t.batcher.stats()).toMatchObject({ batches: 5, entries: 25, unconfirmed: 0, pending: 0 });
      expect(lines(t.emitter.entries)).toEqual(range(0, 25));
    });

    it('holds at most maxUnconfirmed batches awaiting confirmation', async () => {
      const c = confirming();
      const t = setup(c.respond, { maxBatchSize: 5, maxDelayMs: 1000, maxUnconfirmed: 2 });
      t.batcher.start();
      await t.append(0, 20);
      expect(t.calls).toHaveLength(2);
      await t.advance(2000);
      expect(t.calls).toHaveLength(2);
      c.confirms.get(1)!(true);
      await settle();
      expect(t.calls).toHaveLength(3);
      expect(t.spool.delivered).toEqual({ segment: 0, offset: 0, entry: 5 });
      await t.stop(100);
    });

    it('a confirmation that resolves false leaves its batch and every later one undelivered', async () => {
      const c = confirming();
      const t = setup(c.respond, { maxBatchSize: 5, maxDelayMs: 1000 });
      t.batcher.start();
      await t.append(0, 15);
      expect(t.calls).toHaveLength(3);
      c.confirms.get(1)!(true);
      c.confirms.get(2)!(false);
      c.confirms.get(3)!(true);
      await t.advance(100);
      expect(t.spool.deliveredHistory).toEqual([{ segment: 0, offset: 0, entry: 5 }]);
      await t.stop(1000);
      expect(t.spool.delivered).toEqual({ segment: 0, offset: 0, entry: 5 });
    });

    it('stop() waits for confirmations until its deadline, then leaves what is unconfirmed', async () => {
      const c = confirming();
      const t = setup(c.respond, { maxBatchSize: 5, maxDelayMs: 1000 });
      t.batcher.start();
      await t.append(0, 10);
      expect(t.calls).toHaveLength(2);
      const stopping = t.batcher.stop(1000);
      c.confirms.get(1)!(true);
      await settle();
      expect(t.spool.delivered).toEqual({ segment: 0, offset: 0, entry: 5 });
      let done = false;
      void stopping.then(() => (done = true));
      await t.advance(999);
      expect(done).toBe(false);
      await t.advance(1);
      await stopping;
      expect(t.spool.delivered).toEqual({ segment: 0, offset: 0, entry: 5 });
      expect(t.batcher.stats()).toMatchObject({ entries: 5, unconfirmed: 5 });
    });

    it('a batch the emitter confirms at once waits behind earlier unconfirmed ones', async () => {
      let id = 0;
      const c = confirming();
      const t = setup((b) => (++id === 1 ? c.respond(b) : OK), { maxBatchSize: 5, maxDelayMs: 1000 });
      t.batcher.start();
      await t.append(0, 10);
      expect(t.calls).toHaveLength(2);
      await t.advance(10);
      expect(t.spool.deliveredHistory).toHaveLength(0);
      c.confirms.get(1)!(true);
      await settle();
      expect(t.spool.delivered).toEqual({ segment: 0, offset: 1, entry: 0 });
    });
  });
});
