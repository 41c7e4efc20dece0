import { afterEach, describe, expect, it } from 'vitest';
import { OK, retryable } from '../../src/emitters/emitter.js';
import type { EmitResult } from '../../src/emitters/emitter.js';
import { Spool } from '../../src/spool/spool.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import { batcherHarness, confirming, lines, range } from '../helpers/batcher-fixtures.js';
import type { BatcherHarnessOptions, Respond } from '../helpers/batcher-fixtures.js';
import { makeBatch, tempDir } from '../helpers/spool-fixtures.js';

// The batcher on the real disk spool: what lands on disk (dead-letter files, delivered positions that a
// restart reads back). The pure cases are in test/unit/batcher.test.ts.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** Polls with room for a busy 2-core machine (files are real; the clock of the batcher is not). */
function poll<T>(fn: () => T) {
  return expect.poll(fn, { timeout: 15_000, interval: 5 });
}

async function setup(respond?: Respond, opts: BatcherHarnessOptions & { dir?: string } = {}) {
  let dir = opts.dir;
  if (dir === undefined) {
    const t = await tempDir('batcher-');
    cleanups.push(t.cleanup);
    dir = t.dir;
  }
  const spool = await Spool.open({ dir, maxBytes: 1 << 30 });
  const h = batcherHarness(spool, respond, opts);
  cleanups.push(async () => {
    if (!h.stopped()) await h.batcher.stop(0);
    await spool.close();
  });
  return { ...h, dir, spool };
}

/** Stops a batcher (within `deadlineMs`), closes its spool, and sets up a new one on the same directory. */
async function restart(before: Awaited<ReturnType<typeof setup>>, deadlineMs: number, maxBatchSize: number) {
  await before.stop(deadlineMs);
  await before.spool.close();
  return setup(undefined, { maxBatchSize, dir: before.dir });
}

describe('Batcher on the disk spool (what lands on disk: dead letters, delivered positions, restarts)', () => {
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
    const second = await restart(first, 50, 4);
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
      const t2 = await restart(t, 1000, 5);
      expect(t2.spool.stats().pendingEntries).toBe(10);
      t2.batcher.start();
      await poll(() => t2.emitter.entries.length).toBe(10);
      expect(lines(t2.emitter.entries)).toEqual(range(5, 10));
    });

  });
});
